"""validate, config, schema, plan."""

from __future__ import annotations

import json
import sys
import types
from dataclasses import asdict
from pathlib import Path

import click

from mizzen.cli.common import load_plan, load_spec, output_option, print_json, spec_options
from mizzen.errors import EXIT_USAGE


def _no_pydantic_plugins() -> None:
    """These commands read mizzen.yaml and run no user code, so pydantic's plugins have
    nothing to observe. Pydantic looks for them when it builds its first validator, by
    importing `importlib.metadata` and reading every installed distribution's entry points
    (a fifth of `mizzen validate`); tell it, in this process only, that there are none.
    Should pydantic move its loader, this does nothing and the lookup simply happens."""
    loader = types.ModuleType("pydantic.plugin._loader")
    loader.get_plugins = tuple  # type: ignore[attr-defined]
    sys.modules.setdefault(loader.__name__, loader)


@click.command()
@spec_options
@output_option
def validate(spec_file: Path | None, env: str | None, output: str) -> None:
    """Check mizzen.yaml: every field, every reference, every environment overlay.

    Exit code 0 when valid, 2 when not (every problem is listed, `-o json` for tools).
    """
    from mizzen.cli.errors import exit_quickly
    from mizzen.errors import SpecError

    _no_pydantic_plugins()
    exit_quickly()
    try:
        spec = load_spec(spec_file, env)
    except SpecError as exc:
        if output != "json":
            raise
        print_json({"ok": False, "env": env, "problems": [p.to_dict() for p in exc.problems]})
        raise click.exceptions.Exit(EXIT_USAGE) from None
    p = spec.project
    if output == "json":
        body = {"ok": True, "file": str(spec.file), "env": env, "digest": spec.digest}
        text = json.dumps({**body, "problems": []}, indent=2)
    else:
        what = f"{len(p.jobs)} jobs, {len(p.pipelines)} pipelines, {len(p.services)} services"
        envs = (
            f", environments: {', '.join(p.environments)}" if p.environments and env is None else ""
        )
        text = f"{spec.file}: valid ({what}{envs})" + (f" [env {env}]" if env else "")
    click.echo(text)
    from mizzen.cli import validate_cache

    validate_cache.store(spec_file, env, output, spec, text + "\n")


@click.command()
@spec_options
@click.option(
    "-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True
)
@click.pass_context
def config(ctx: click.Context, spec_file: Path | None, env: str | None, output: str) -> None:
    """Print the effective spec after the environment overlay, defaults filled in.

    Only what mizzen.yaml says: secrets are key names (values live outside the spec and are
    never read here), `${env.X}` references are shown as written.
    """
    import yaml

    _no_pydantic_plugins()
    spec = load_spec(spec_file, env)
    data = spec.project.model_dump(by_alias=True, exclude_none=True, mode="json")
    data.pop("environments", None)
    if env is None:
        applied = "none (base spec)"
    else:
        source = ctx.get_parameter_source("env")
        origin = " from $MIZZEN_ENV" if source == click.core.ParameterSource.ENVIRONMENT else ""
        applied = f"{env} (overlay environments.{env} applied{origin})"
    if output == "json":
        print_json({"file": str(spec.file), "env": env, "applied": applied, "spec": data})
        return
    click.echo(f"# {spec.file}\n# environment: {applied}")
    click.echo(yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip())


@click.command()
def schema() -> None:
    """Print the JSON Schema of mizzen.yaml (point your editor's YAML plugin at it)."""
    from mizzen.spec.schema import json_schema

    _no_pydantic_plugins()
    click.echo(json.dumps(json_schema(), indent=2))


@click.command()
@spec_options
@click.option(
    "--target", type=click.Choice(["local", "kubernetes"]), default="local", show_default=True
)
@click.argument("workload", required=False)
def plan(spec_file: Path | None, env: str | None, target: str, workload: str | None) -> None:
    """Print the compiled plan as JSON: what each workload would run, with what."""
    _no_pydantic_plugins()
    compiled = load_plan(spec_file, env, target)
    data = asdict(compiled)
    if workload:
        for section in ("jobs", "pipelines", "services"):
            if workload in data[section]:
                data = data[section][workload]
                break
        else:
            from mizzen.errors import UsageError

            raise UsageError(f"no workload {workload!r}", hint="see `mizzen validate`")
    print_json(data)
