"""The `mizzen` command group: lazy, so `mizzen --help` imports no command."""

from __future__ import annotations

import importlib
import sys

import click

from mizzen._version import __version__

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
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name, (target, _) in COMMANDS.items() if _available(target)]

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return None
        target, short = COMMANDS[cmd_name]
        if ctx.resilient_parsing or _help_only():
            if not _available(target):
                return None
            return click.Command(cmd_name, short_help=short, help=short)
        module, attr = target.split(":")
        try:
            cmd: click.Command = getattr(importlib.import_module(module), attr)
        except ModuleNotFoundError as exc:
            if exc.name and exc.name.startswith("mizzen"):
                return None
            raise
        return cmd


def _help_only() -> bool:
    # `mizzen --help` lists commands without importing them.
    args = sys.argv[1:]
    return bool(args) and args[0] in ("--help", "-h")


def _available(target: str) -> bool:
    module = target.split(":")[0]
    import importlib.util

    return importlib.util.find_spec(module) is not None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="mizzen")
def cli() -> None:
    """mizzen: code + Dockerfile + mizzen.yaml -> build -> release -> watch.

    Runs the same on a laptop (no cluster, no server, no database) and on Kubernetes.
    """
