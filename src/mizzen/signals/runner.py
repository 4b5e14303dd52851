"""The process of a signal's computation job (a `sql` kind job mizzen adds itself):

    python -m mizzen.signals.runner --engine duckdb|spark --param signal=<definition JSON> \\
        [--file SQL_FILE] [--param from=2025-01-01 --param to=2025-01-31]

The same on both targets: a process here, a CronJob's pod in a cluster (DuckDB), or a Spark
driver (`engine: spark`; then this file is the driver's main file, shipped in a ConfigMap,
and the Spark image needs `mizzen[datasets]`). Standard library at the top for that reason.
It reads the dataset and the project store from the run-time contract, computes what is due
(or the `from`..`to` range, both days included), commits it, records lineage and metrics,
then judges the alerts and sends those that fire.
"""

from __future__ import annotations

import argparse
import os
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mizzen-signal", description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", default=None, help="The signal's SQL file (aggregate: sql)")
    parser.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    params = dict(p.split("=", 1) for p in args.param)
    unknown = sorted(set(params) - {"signal", "from", "to"})
    if unknown or "signal" not in params:
        print(
            f"error: expected --param signal=... [from=... to=...], got {sorted(params)}",
            file=sys.stderr,
        )
        return 2
    from mizzen.errors import MizzenError
    from mizzen.signals.run import run

    try:
        return run(params["signal"], args.engine, args.file, params.get("from"), params.get("to"))
    except MizzenError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        if exc.hint:
            print(f"  hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # delta-rs' object-store threads can abort the interpreter's teardown (SIGABRT), which
    # would fail a run that succeeded: nothing is left to clean up here
    os._exit(code)
