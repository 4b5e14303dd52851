"""The `mizzen` program. A `mizzen validate` whose result is cached and still fresh is
answered before click is imported (`mizzen.cli.validate_cache`); every other command line
goes to the click group (`mizzen.cli.group`)."""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, NoReturn


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
    if name in ("cli", "COMMANDS", "LazyGroup"):
        from mizzen.cli import group

        return getattr(group, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if __name__ == "__main__":
    main()
