"""Run a SQL file and write its last query's result as Parquet: the process of a `sql` job.

    python -m mizzen.kinds.sql_runner --file sql/daily.sql [--output PATH] \\
        [--engine duckdb|spark] [--param NAME=VALUE]...

Standalone on purpose (standard library at the top; DuckDB or pyspark imported when used):
with `engine: spark` the Spark operator runs this file in a Spark image that has no mizzen,
shipped to the driver in a ConfigMap.

`${volumes.NAME}` (from MIZZEN_VOLUME_NAME), `${config.KEY}` (from the env var KEY),
`${parameters.NAME}` (from --param) and `${run.id}` / `${run.date}` are replaced as text
before the SQL runs; `$${` writes a literal `${`. Every statement runs in order; the last
one must be a query: its rows go to `--output` (or, without one, the first rows are
printed). The run records `rows` (a metric) and `output` (a param) when mizzen is there.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

REF = re.compile(r"\$(\$?)\{([a-z]+)\.([A-Za-z0-9_.-]+)\}")
PREVIEW_ROWS = 20


class SqlFileError(Exception):
    """A problem in the SQL file, at a line and column."""

    def __init__(self, file: str, line: int, col: int, message: str) -> None:
        super().__init__(f"{file}:{line}:{col}: {message}")


def substitute(text: str, file: str, params: dict[str, str], environ: dict[str, str]) -> str:
    def value(m: re.Match[str]) -> str:
        if m.group(1):  # $${...}: the literal text
            return "${" + m.group(2) + "." + m.group(3) + "}"
        root, name = m.group(2), m.group(3)
        found: str | None = None
        if root == "volumes":
            found = environ.get("MIZZEN_VOLUME_" + name.upper().replace("-", "_"))
        elif root == "config":
            found = environ.get(name)
        elif root == "parameters":
            found = params.get(name)
        elif root == "run" and name in ("id", "date"):
            found = environ.get("MIZZEN_RUN_" + name.upper())
        if found is None:
            line = text.count("\n", 0, m.start()) + 1
            col = m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1
            what = {
                "volumes": "a volume this job mounts",
                "config": "a config key",
                "parameters": "one of the job's sql.parameters",
            }.get(root, "${volumes.X}, ${config.X}, ${parameters.X}, ${run.id} or ${run.date}")
            raise SqlFileError(file, line, col, f"${{{root}.{name}}} is not {what}")
        return found

    return REF.sub(value, text)


def split_statements(sql: str) -> list[str]:
    """Statements separated by `;` outside quotes and comments (for engines that run one
    statement at a time)."""
    out, current, i, quote = [], [], 0, ""
    while i < len(sql):
        ch = sql[i]
        if quote:
            current.append(ch)
            if ch == quote:
                quote = ""
        elif ch in ("'", '"'):
            quote = ch
            current.append(ch)
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = len(sql) if end < 0 else end
            continue
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = len(sql) if end < 0 else end + 2
            continue
        elif ch == ";":
            out.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
        i += 1
    out.append("".join(current).strip())
    return [s for s in out if s]


def run_duckdb(sql: str, output: str | None) -> int:
    import duckdb

    con = duckdb.connect()
    statements = con.extract_statements(sql)
    if not statements:
        raise SystemExit("the SQL file holds no statement")
    *before, last = statements
    for statement in before:
        con.execute(statement)
    query = last.query.strip().rstrip(";")
    if output is None:
        rel = con.execute(query)
        rows = rel.fetchall()
        names = [d[0] for d in rel.description or []]
        print("\t".join(names))
        for row in rows[:PREVIEW_ROWS]:
            print("\t".join("" if v is None else str(v) for v in row))
        return len(rows)
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    quoted = output.replace("'", "''")
    found = con.execute(f"COPY ({query}) TO '{quoted}' (FORMAT PARQUET)").fetchone()
    return int(found[0]) if found else 0


def run_spark(sql: str, output: str | None) -> int:
    from pyspark.sql import SparkSession

    spark = SparkSession.builder.appName("mizzen-sql").getOrCreate()
    try:
        statements = split_statements(sql)
        if not statements:
            raise SystemExit("the SQL file holds no statement")
        for statement in statements[:-1]:
            spark.sql(statement)
        frame = spark.sql(statements[-1])
        if output is None:
            frame.show(PREVIEW_ROWS, truncate=False)
            return int(frame.count())
        frame.write.mode("overwrite").parquet(output)
        return int(spark.read.parquet(output).count())
    finally:
        spark.stop()


def record(rows: int, output: str | None) -> None:
    """Into the run record when mizzen is there (not in a Spark image)."""
    try:
        from mizzen import runtime
    except ImportError:
        return
    runtime.log_metric("rows", rows)
    if output:
        runtime.log_param("output", output)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mizzen sql", description=__doc__.split("\n\n")[0])
    parser.add_argument("--file", required=True)
    parser.add_argument("--output", default=None)
    parser.add_argument("--engine", choices=["duckdb", "spark"], default="duckdb")
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE")
    args = parser.parse_args(argv)
    params = dict(p.split("=", 1) for p in args.param)
    try:
        text = Path(args.file).read_text(encoding="utf-8")
    except OSError as exc:
        print(f"error: cannot read the SQL file {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        sql = substitute(text, args.file, params, dict(os.environ))
    except SqlFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    run = run_spark if args.engine == "spark" else run_duckdb
    try:
        rows = run(sql, args.output)
    except Exception as exc:  # the engine's own error: the query failed, not mizzen
        if type(exc).__module__.lstrip("_").split(".")[0] not in ("duckdb", "pyspark", "py4j"):
            raise
        message = str(exc).strip().splitlines()
        print(
            f"error: {args.file}: {message[0] if message else type(exc).__name__}", file=sys.stderr
        )
        for line in message[1:6]:
            print(f"  {line}", file=sys.stderr)
        return 1
    where = f" -> {args.output}" if args.output else ""
    print(f"sql: {rows:,} rows with {args.engine}{where}", flush=True)
    record(rows, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
