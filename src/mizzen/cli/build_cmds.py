"""build, images."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from mizzen.cli.common import (
    fmt_time,
    load_spec,
    output_option,
    print_json,
    print_table,
    spec_options,
)


class _Progress:
    """Builder output: every line with -v; otherwise one updating line on a terminal, the steps
    only when piped."""

    def __init__(self, verbose: bool) -> None:
        self.verbose = verbose
        self.tty = sys.stderr.isatty()
        self._status: Any = None
        self._phase = "build"

    def __enter__(self) -> _Progress:
        if not self.verbose and self.tty:
            from rich.console import Console

            self._status = Console(stderr=True).status("starting", spinner="dots")
            self._status.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()

    def phase(self, name: str) -> None:
        self._phase = name

    def info(self, message: str) -> None:
        if self._status is not None:
            self._status.console.print(message, markup=False, highlight=False)
        else:
            click.echo(message, err=True)

    def line(self, text: str) -> None:
        from mizzen.build.builders import STEP_RE

        if self.verbose:
            click.echo(text, err=True)
        elif self._status is not None:
            self._status.update(f"{self._phase}: {text[:110]}")
        elif STEP_RE.match(text):
            click.echo(text, err=True)


@click.command()
@spec_options
@click.option("--push", is_flag=True, help="Push the image and record its registry digest.")
@click.option(
    "--builder",
    type=click.Choice(["docker", "podman", "buildah"]),
    envvar="MIZZEN_BUILDER",
    default=None,
    help="Image builder (default: the first of docker, podman, buildah that works; also $MIZZEN_BUILDER).",
)
@click.option(
    "-t",
    "--tag",
    "tags",
    multiple=True,
    help="Tag(s) to use instead of the git-derived ones (required without git). Repeatable.",
)
@click.option(
    "--platform", default=None, help="Target platform, e.g. linux/amd64 (overrides image.platform)."
)
@click.option(
    "--build-arg",
    "build_args",
    multiple=True,
    metavar="KEY=VALUE",
    help="Extra --build-arg, over image.buildArgs. Repeatable.",
)
@click.option(
    "--force", is_flag=True, help="Build (and push) even when the registry already has the tag."
)
@click.option(
    "--insecure",
    is_flag=True,
    help="Allow a plain-HTTP / self-signed registry (as image.insecure).",
)
@click.option("-v", "--verbose", is_flag=True, help="Stream the builder's full output.")
@output_option
def build(
    spec_file: Path | None,
    env: str | None,
    push: bool,
    builder: str | None,
    tags: tuple[str, ...],
    platform: str | None,
    build_args: tuple[str, ...],
    force: bool,
    insecure: bool,
    verbose: bool,
    output: str,
) -> None:
    """Build the project image from its Dockerfile, tagged from git; --push sends it to the registry.

    Tags: the short git sha; `<sha>-dirty.<hash>` for uncommitted changes; the git tag(s) at
    HEAD and the branch name on a clean tree. Never `latest`.
    """
    from mizzen.build.project import BuildOptions, Reporter, build_project

    spec = load_spec(spec_file, env)
    opts = BuildOptions(
        push=push,
        builder=builder,
        tags=tags,
        platform=platform,
        force=force,
        insecure=insecure,
        build_args=_pairs(build_args),
    )
    with _Progress(verbose) as progress:
        outcome = build_project(
            spec, opts, Reporter(info=progress.info, line=progress.line, phase=progress.phase)
        )
    record = outcome.record
    if output == "json":
        print_json(
            {
                **record.to_dict(),
                "refs": outcome.refs,
                "image": record.pinned,
                "record": str(outcome.record_path),
            }
        )
        return
    if record.skipped:
        click.echo(f"reused {record.pinned}")
        return
    click.echo(
        f"built {', '.join(outcome.refs)}" + (f" with {record.builder}" if record.builder else "")
    )
    if record.pushed:
        click.echo(f"pushed {record.pinned}")
    else:
        click.echo("not pushed (add --push to send it to the registry and pin it for releases)")


@click.command()
@spec_options
@click.option(
    "--all",
    "all_repos",
    is_flag=True,
    help="Also builds of other repositories recorded in this project.",
)
@output_option
def images(spec_file: Path | None, env: str | None, all_repos: bool, output: str) -> None:
    """List the recorded image builds of this project, newest first."""
    from mizzen.build.records import list_records

    spec = load_spec(spec_file, env)
    repository = None if all_repos or spec.project.image is None else spec.project.image.repository
    records = list_records(spec.root, repository)
    if output == "json":
        print_json([r.to_dict() for r in records])
        return
    rows = [
        (
            r.tag if len(r.tags) == 1 else f"{r.tag} (+{', '.join(r.tags[1:])})",
            _short_digest(r.digest),
            (r.git_sha or "")[:12] + ("+dirty" if r.dirty and r.git_sha else ""),
            fmt_time(r.created),
            "yes" if r.pushed else "no",
            "reused" if r.skipped else r.builder,
        )
        for r in records
    ]
    if not rows:
        click.echo("no recorded builds (run `mizzen build`)", err=True)
        return
    print_table(["tag", "digest", "git sha", "when", "pushed", "builder"], rows)


def _pairs(values: tuple[str, ...]) -> dict[str, str]:
    from mizzen.errors import UsageError

    out: dict[str, str] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--build-arg {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def _short_digest(digest: str | None) -> str:
    return digest[:19] if digest else ""
