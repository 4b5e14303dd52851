"""The `mizzen` program: its commands, imported only when one runs. A `mizzen validate`
whose result is cached and still fresh is answered before click is imported
(`mizzen.cli.validate_cache`); every other command line goes to the lazy click group
(`mizzen.cli.group`), so `mizzen --help` imports no command either."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn


# name -> ("module:attribute", one-line help). Modules are imported only when the command runs.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("mizzen.cli.init_cmd:init", "Scaffold a new project."),
    "validate": ("mizzen.cli.spec_cmds:validate", "Check mizzen.yaml and every environment."),
    "config": ("mizzen.cli.spec_cmds:config", "Print the effective spec for an environment."),
    "schema": ("mizzen.cli.spec_cmds:schema", "Print the JSON Schema of mizzen.yaml."),
    "plan": ("mizzen.cli.spec_cmds:plan", "Print the compiled plan (what would run)."),
    "run": ("mizzen.cli.run_cmds:run", "Run a job or pipeline (locally by default)."),
    "exec": (
        "mizzen.cli.run_cmds:exec_",
        "Run a command as a recorded run (used inside containers).",
    ),
    "up": ("mizzen.cli.run_cmds:up", "Run services and schedules in the foreground."),
    "runs": ("mizzen.cli.runs_cmds:runs", "List and inspect runs."),
    "logs": ("mizzen.cli.runs_cmds:logs", "Print the logs of a run, job or workload."),
    "notebook": (
        "mizzen.cli.notebook_cmd:notebook",
        "Start Jupyter with the project's volumes, config and secrets.",
    ),
    "models": ("mizzen.cli.models_cmds:models", "List, inspect, alias and remove models."),
    "data": (
        "mizzen.cli.data_cmds:data",
        "Datasets: versions, schema, lineage, retention and erasure.",
    ),
    "serve": ("mizzen.cli.serve_cmd:serve", "Serve a model from the registry over HTTP."),
    "build": ("mizzen.cli.build_cmds:build", "Build (and push) the project image."),
    "images": ("mizzen.cli.build_cmds:images", "List recorded image builds."),
    "render": ("mizzen.cli.k8s_cmds:render", "Render Kubernetes manifests."),
    "release": ("mizzen.cli.k8s_cmds:release", "Apply the project to a Kubernetes cluster."),
    "status": ("mizzen.cli.k8s_cmds:status", "Show workloads in the cluster, with reasons."),
    "history": ("mizzen.cli.k8s_cmds:history", "List release revisions."),
    "rollback": ("mizzen.cli.k8s_cmds:rollback", "Roll back to an earlier release revision."),
    "delete": ("mizzen.cli.k8s_cmds:delete", "Delete everything of the project from the cluster."),
    "ui": ("mizzen.cli.ui_cmd:ui", "Open the local dashboard."),
    "signals": (
        "mizzen.cli.signals_cmds:signals",
        "The project's signals: list, show, compute, backfill.",
    ),
}


def main(argv: list[str] | None = None) -> NoReturn:
    args = sys.argv[1:] if argv is None else list(argv)
    if args[:1] == ["validate"]:
        from mizzen.cli import validate_cache

        validate_cache.invocation = args
        text = validate_cache.lookup(args)
        if text is not None:
            _answer(text, quick=argv is None)
    from mizzen.cli.errors import run_cli
    from mizzen.cli.group import cli

    run_cli(cli, argv)


def _answer(text: str, *, quick: bool) -> NoReturn:
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:
        pass
    if quick:  # as the program: nothing to tear down (see `errors.exit_quickly`)
        os._exit(0)
    sys.exit(0)


def __getattr__(name: str) -> Any:
    # `from mizzen.cli.main import cli` (the group) keeps working
    if name in ("cli", "LazyGroup"):
        from mizzen.cli import group

        return getattr(group, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    main()
