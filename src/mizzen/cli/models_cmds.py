"""`mizzen models`: the model registry in the project store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from mizzen.cli.common import fmt_time, output_option, print_json, print_table, spec_options


def _registry(spec_file: Path | None, env: str | None) -> Any:
    from mizzen.storage.project import project_store
    from mizzen.storage.registry import ModelRegistry

    return ModelRegistry(project_store(spec_file, env))


def _split_ref(text: str) -> tuple[str, str | None]:
    name, _, ref = text.partition("@")
    return name, (ref or None)


@click.group(invoke_without_command=True)
@spec_options
@output_option
@click.pass_context
def models(ctx: click.Context, spec_file: Path | None, env: str | None, output: str) -> None:
    """Models in the project store: names, latest version, aliases."""
    ctx.obj = {"spec_file": spec_file, "env": env}
    if ctx.invoked_subcommand is not None:
        return
    reg = _registry(spec_file, env)
    rows = []
    for name in reg.names():
        versions = reg.versions(name)
        if not versions:
            continue
        aliases = reg.aliases(name)
        rows.append(
            {"name": name, "latest": versions[-1], "versions": len(versions), "aliases": aliases}
        )
    if output == "json":
        print_json(rows)
        return
    print_table(
        ["name", "latest", "versions", "aliases"],
        [
            [
                r["name"],
                r["latest"],
                r["versions"],
                ", ".join(f"{a}→{v}" for a, v in r["aliases"].items()),
            ]
            for r in rows
        ],
    )


def _ctx_opts(
    ctx: click.Context, spec_file: Path | None, env: str | None
) -> tuple[Path | None, str | None]:
    parent = ctx.obj or {}
    return spec_file or parent.get("spec_file"), env or parent.get("env")


@models.command()
@click.argument("ref", metavar="NAME[@VERSION]")
@spec_options
@output_option
@click.pass_context
def show(
    ctx: click.Context, ref: str, spec_file: Path | None, env: str | None, output: str
) -> None:
    """Metadata, signature and metrics of one version (default: latest)."""
    reg = _registry(*_ctx_opts(ctx, spec_file, env))
    name, version = _split_ref(ref)
    mv = reg.get(name, version or "latest")
    aliases = [a for a, v in reg.aliases(name).items() if v == mv.version]
    if output == "json":
        print_json({**mv.meta, "aliases": aliases})
        return
    meta = mv.meta
    click.echo(f"{name} version {mv.version}" + (f"  ({', '.join(aliases)})" if aliases else ""))
    for label, value in [
        ("format", meta.get("format")),
        ("created", fmt_time(meta.get("created"))),
        ("run", meta.get("run_id")),
        ("git sha", meta.get("git_sha")),
        ("files", ", ".join(mv.files)),
        ("tags", ", ".join(f"{k}={v}" for k, v in mv.tags.items())),
    ]:
        if value:
            click.echo(f"  {label:<9}{value}")
    sig = mv.signature
    for side in ("inputs", "outputs"):
        for item in sig.get(side, []):
            shape = (
                "[" + ", ".join("?" if d is None else str(d) for d in item.get("shape", [])) + "]"
            )
            click.echo(f"  {side[:-1]:<9}{item.get('name')}: {item.get('dtype')} {shape}")
    if mv.metrics:
        print_table(["metric", "value"], [[k, v] for k, v in mv.metrics.items()])


@models.command()
@click.argument("name")
@click.argument("version")
@click.argument("alias")
@spec_options
@output_option
@click.pass_context
def alias(
    ctx: click.Context,
    name: str,
    version: str,
    alias: str,
    spec_file: Path | None,
    env: str | None,
    output: str,
) -> None:
    """Point ALIAS (production, staging, any name) at VERSION of NAME."""
    reg = _registry(*_ctx_opts(ctx, spec_file, env))
    before = reg.aliases(name).get(alias)
    number = reg.set_alias(name, alias, version)
    if output == "json":
        print_json({"name": name, "alias": alias, "version": number, "previous": before})
        return
    moved = f" (was {before})" if before is not None and before != number else ""
    click.echo(f"{name}@{alias} -> {number}{moved}")


@models.command()
@click.argument("ref", metavar="NAME@VERSION")
@click.option(
    "--force", is_flag=True, help="Remove even if an alias points at it (the alias goes too)."
)
@spec_options
@output_option
@click.pass_context
def rm(
    ctx: click.Context, ref: str, force: bool, spec_file: Path | None, env: str | None, output: str
) -> None:
    """Remove one version of a model."""
    from mizzen.errors import UsageError

    name, version = _split_ref(ref)
    if not version:
        raise UsageError(f"{ref!r}: name a version", hint=f"mizzen models rm {name}@3")
    reg = _registry(*_ctx_opts(ctx, spec_file, env))
    number = reg.resolve(name, version)
    dropped = [a for a, v in reg.aliases(name).items() if v == number] if force else []
    reg.delete(name, number, force=force)
    if output == "json":
        print_json({"name": name, "version": number, "removed": True, "aliases_removed": dropped})
        return
    click.echo(
        f"removed {name}@{number}" + (f" and alias(es) {', '.join(dropped)}" if dropped else "")
    )
