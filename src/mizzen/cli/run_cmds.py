"""run, exec, up, notebook."""

from __future__ import annotations

from pathlib import Path

import click

from mizzen.cli.common import load_plan, parse_sets, pod_options, spec_options, target_option


@click.command()
@spec_options
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config value for this run (recorded as a param).",
)
@click.option(
    "--parallel",
    type=click.IntRange(min=1),
    default=None,
    help="Steps of a pipeline to run at once (default: the pipeline's parallelism, else the CPU count).",
)
@target_option("local")
@pod_options
@click.argument("workload")
def run(
    spec_file: Path | None,
    env: str | None,
    sets: tuple[str, ...],
    parallel: int | None,
    target: str,
    image: str | None,
    namespace: str | None,
    context: str | None,
    pending_timeout: float | None,
    workload: str,
) -> int:
    """Run a job or pipeline to completion (exit code 1 if anything failed)."""
    from mizzen.targets.base import Options, get_target

    options = Options(
        image=image,
        namespace=namespace,
        context=context,
        sets=parse_sets(sets),
        parallel=parallel,
        pending_timeout=pending_timeout,
    )
    chosen = get_target(target)
    chosen.check("run", options)  # before the spec is compiled: a wrong flag is usage
    return chosen.run(load_plan(spec_file, env, target, sets=sets), workload, options)


@click.command(
    name="exec", context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False}
)
@click.option(
    "--workload", default=None, help="The workload this run belongs to (default: $MIZZEN_WORKLOAD)."
)
@click.argument("argv", nargs=-1, type=click.UNPROCESSED, required=True)
def exec_(workload: str | None, argv: tuple[str, ...]) -> int:
    """Run ARGV as one recorded run, in the store named by $MIZZEN_STORE.

    The container entry point of jobs on Kubernetes: mizzen exec --workload train -- python train.py
    """
    from mizzen.targets.local.exec import exec_run

    return exec_run(list(argv), workload=workload)


@click.command()
@spec_options
@target_option("local")
@click.argument("names", nargs=-1, metavar="[SERVICE]...")
def up(spec_file: Path | None, env: str | None, target: str, names: tuple[str, ...]) -> int:
    """Run services (restarted with backoff when they exit) and schedules until Ctrl-C."""
    from mizzen.targets.base import Options, get_target

    chosen = get_target(target)
    chosen.check("up", Options())
    return chosen.up(load_plan(spec_file, env, target), list(names), Options())


@click.command()
@spec_options
def notebook(spec_file: Path | None, env: str | None) -> None:
    """Start Jupyter with the project's volumes, config and secrets."""
    from mizzen.errors import NotSupportedError

    raise NotSupportedError(
        "mizzen notebook", "local", hint="it comes with the workload-kinds issue"
    )
