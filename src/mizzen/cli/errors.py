"""Turn exceptions into messages and exit codes (0 ok, 1 workload failed, 2 bad input)."""

from __future__ import annotations

import json
import os
import sys
from typing import NoReturn

import click

from mizzen.errors import EXIT_FAILED, EXIT_USAGE, MizzenError, SpecError

_quick_exit = False


def exit_quickly() -> None:
    """Called by a command that holds nothing to clean up (no open files, threads, temporary
    folders or atexit work): run as the `mizzen` program, it then ends with `os._exit` once its
    output is flushed, skipping the interpreter's teardown (about a tenth of `mizzen validate`
    once pydantic is loaded). Called in-process (tests, `main([...])`), it changes nothing."""
    global _quick_exit
    _quick_exit = True


def run_cli(group: click.Group, argv: list[str] | None) -> NoReturn:
    try:
        rv = group.main(args=argv, prog_name="mizzen", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        leave(exc.exit_code, argv)
    except click.ClickException as exc:
        exc.show()
        sys.exit(EXIT_USAGE)
    except MizzenError as exc:
        report(exc)
        leave(exc.exit_code, argv)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(0)
    leave(rv if isinstance(rv, int) else 0, argv)


def leave(code: int, argv: list[str] | None) -> NoReturn:
    if _quick_exit and argv is None:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except OSError:  # a closed pipe: nothing more can be said
            pass
        os._exit(code)
    sys.exit(code)


def wants_json(argv: list[str]) -> bool:
    """`--output json`, `-o json`, `--output=json` or `-ojson` anywhere on the command line."""
    for i, arg in enumerate(argv):
        if arg in ("--output=json", "-ojson"):
            return True
        if arg in ("-o", "--output") and i + 1 < len(argv) and argv[i + 1] == "json":
            return True
    return False


def report(exc: MizzenError) -> None:
    if wants_json(sys.argv[1:]):
        problems = exc.problems if isinstance(exc, SpecError) else []
        body = {
            "ok": False,
            "error": exc.message,
            "hint": exc.hint,
            "problems": [p.to_dict() for p in problems],
        }
        click.echo(json.dumps(body, indent=2))
        return
    color = sys.stderr.isatty()
    label = click.style("error:", fg="red", bold=True) if color else "error:"
    click.echo(f"{label} {exc}", err=True)


def fail(message: str, hint: str = "", code: int = EXIT_FAILED) -> NoReturn:
    err = MizzenError(message, hint=hint)
    err.exit_code = code
    raise err
