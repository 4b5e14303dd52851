"""`python -m mizzen.targets.local.notebook_run ARGS`: papermill's CLI, with a failing cell
reported as the cell's own error (not papermill's Python traceback) and exit code 1."""

from __future__ import annotations

import logging
import re
import sys

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


_CHATTER = ("Executing Cell ", "Ending Cell ")


def _quiet(record: logging.LogRecord) -> bool:
    return not str(record.msg).startswith(_CHATTER)


def main(argv: list[str]) -> int:
    from papermill.cli import papermill
    from papermill.exceptions import PapermillExecutionError

    logging.getLogger("papermill").addFilter(_quiet)  # cell outputs stay, the cell markers go

    try:
        papermill.main(args=argv, prog_name="papermill", standalone_mode=False)
    except PapermillExecutionError as exc:
        print(f"notebook cell {exc.exec_count} failed: {exc.ename}: {exc.evalue}", file=sys.stderr)
        trace = "".join(str(line) + "\n" for line in exc.traceback)
        print(trace if sys.stderr.isatty() else _ANSI.sub("", trace), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
