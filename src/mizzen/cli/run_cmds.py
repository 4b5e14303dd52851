"""run, exec, up, notebook."""

from __future__ import annotations

from pathlib import Path

import click

from mizzen.cli.common import load_plan, parse_sets, spec_options


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
@click.option(
    "--target", type=click.Choice(["local", "kubernetes"]), default="local", show_default=True
)
@click.option(
    "--image",
    default=None,
    metavar="REF",
    help="Kubernetes: the image to run (REPO:TAG or REPO@sha256:...); default: the pushed build of git HEAD.",
)
@click.option("--namespace", "-n", default=None, help="Kubernetes: the namespace to run in.")
@click.option("--context", default=None, help="Kubernetes: the kubeconfig context.")
@click.option(
    "--pending-timeout",
    type=click.FloatRange(min=1),
    default=None,
    metavar="SECONDS",
    help="Kubernetes: give up when the run's pods are still not running after this long (default 300).",
)
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
    from mizzen.errors import UsageError
    from mizzen.targets.base import get_target

    if target != "local" and parallel is not None:
        raise UsageError(
            "--parallel applies to the local target",
            hint="on Kubernetes a pipeline's `parallelism:` sets it",
        )
    cluster_only = {
        "--image": image,
        "--namespace": namespace,
        "--context": context,
        "--pending-timeout": pending_timeout,
    }
    given = [flag for flag, value in cluster_only.items() if value is not None]
    if target == "local" and given:
        raise UsageError(
            f"{', '.join(given)} appl{'y' if len(given) > 1 else 'ies'} to --target kubernetes",
            hint="a local run uses the project's own code and environment; add --target kubernetes",
        )
    plan = load_plan(spec_file, env, target, sets=sets)
    if target != "local":
        return get_target(target).run(
            plan,
            workload,
            image=image,
            namespace=namespace,
            context=context,
            sets=parse_sets(sets),
            pending_timeout=pending_timeout,
        )
    return get_target(target).run(plan, workload, parallel=parallel, sets=parse_sets(sets))


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
@click.argument("names", nargs=-1, metavar="[SERVICE]...")
def up(spec_file: Path | None, env: str | None, names: tuple[str, ...]) -> int:
    """Run services (restarted with backoff when they exit) and schedules until Ctrl-C."""
    from mizzen.targets.local.services import up as run_up

    return run_up(load_plan(spec_file, env, "local"), names)


@click.command()
@spec_options
def notebook(spec_file: Path | None, env: str | None) -> None:
    """Start Jupyter with the project's volumes, config and secrets."""
    from mizzen.errors import NotSupportedError

    raise NotSupportedError(
        "mizzen notebook", "local", hint="it comes with the workload-kinds issue"
    )
