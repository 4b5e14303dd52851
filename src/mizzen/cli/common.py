"""Options and helpers every command shares: the spec file, the environment, output format."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])


def spec_options(func: F | None = None, *, short_file: bool = True) -> Any:
    """--file and --env. `short_file=False` leaves `-f` free (for `logs -f`, follow)."""

    def add(func: F) -> F:
        names = ["-f", "--file"] if short_file else ["--file"]
        func = click.option(
            *names,
            "spec_file",
            type=click.Path(dir_okay=False, path_type=Path),
            default=None,
            help="Path to mizzen.yaml (default: nearest in this or a parent folder).",
        )(func)
        func = click.option(
            "-e",
            "--env",
            "env",
            default=None,
            envvar="MIZZEN_ENV",
            help="Environment overlay to apply (also $MIZZEN_ENV).",
        )(func)
        return func

    return add(func) if func is not None else add


def target_option(default: str, help: str = "") -> Callable[[F], F]:
    """--target, its choices the registered targets."""
    from mizzen.targets.base import TARGETS

    def add(func: F) -> F:
        return click.option(
            "--target",
            type=click.Choice(list(TARGETS)),
            default=default,
            show_default=True,
            help=help or None,
        )(func)

    return add


def pod_options(func: F) -> F:
    """--image, -n/--namespace, --context, --pending-timeout: where a one-off run's pod runs
    (`--target kubernetes`); the local target refuses them."""
    for option in reversed(
        [
            click.option(
                "--image",
                default=None,
                metavar="REF",
                help="Kubernetes: the image to run (REPO:TAG or REPO@sha256:...); default: the "
                "pushed build of git HEAD.",
            ),
            click.option(
                "--namespace", "-n", default=None, help="Kubernetes: the namespace to run in."
            ),
            click.option("--context", default=None, help="Kubernetes: the kubeconfig context."),
            click.option(
                "--pending-timeout",
                type=click.FloatRange(min=1),
                default=None,
                metavar="SECONDS",
                help="Kubernetes: give up when the run's pods are still not running after this "
                "long (default 300).",
            ),
        ]
    ):
        func = option(func)
    return func


def output_option(func: F) -> F:
    return click.option(
        "-o",
        "--output",
        "output",
        type=click.Choice(["table", "json"]),
        default="table",
        show_default=True,
        help="Output format.",
    )(func)


def load_spec(spec_file: Path | None, env: str | None) -> Any:
    from mizzen import spec

    return spec.load(spec_file, env)


def load_plan(
    spec_file: Path | None,
    env: str | None,
    target: str = "local",
    *,
    image: str | None = None,
    sets: Sequence[str] = (),
) -> Any:
    """The compiled plan; reused from `.mizzen/cache/plans/` when nothing it depends on changed."""
    from mizzen.plan.cache import cached_plan

    return cached_plan(spec_file, env, target, image=image, sets=parse_sets(sets))


def parse_sets(values: Sequence[str]) -> dict[str, str]:
    from mizzen.errors import UsageError

    out: dict[str, str] = {}
    for item in values:
        if "=" not in item:
            raise UsageError(f"--set {item!r}: expected KEY=VALUE")
        key, value = item.split("=", 1)
        out[key.strip()] = value
    return out


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=False, default=str))


def print_table(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    title: str | None = None,
    upper: bool = True,
) -> None:
    """A rich table on a terminal; tab-separated plain text when piped. `upper=False` keeps
    headers as written (when they are values, such as run ids)."""
    heads = [c.upper() if upper else c for c in columns]
    if not sys.stdout.isatty():
        click.echo("\t".join(heads))
        for row in rows:
            click.echo("\t".join("" if v is None else str(v) for v in row))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, header_style="bold", box=None, pad_edge=False)
    for col in heads:
        table.add_column(col)
    for row in rows:
        table.add_row(*("" if v is None else str(v) for v in row))
    Console().print(table)


def fmt_time(ts: float | None) -> str:
    if ts is None:
        return ""
    from datetime import datetime

    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"
