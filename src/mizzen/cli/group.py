"""The `mizzen` command group: lazy, so `mizzen --help` imports no command."""

from __future__ import annotations

import importlib
import sys

import click

from mizzen._version import __version__
from mizzen.cli.main import COMMANDS


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
