"""The SQL a signal is computed with, for DuckDB or Spark SQL, over a relation `source` (the
dataset's files that can hold rows of the window being computed).

One scan: rows are put in buckets, filtered, and aggregated with GROUPING SETS into the
whole signal, each dimension on its own, and (with an arm) each of those per arm. A mean, a
ratio, a sum or a count keeps per-row sums (n, Σx, Σy, Σx², Σy², Σxy) so values combine
across buckets and arms get confidence intervals; an `expression` keeps its value only.

    SELECT mizzen_bucket AS bucket, <dimension>, <segment>, <arm>, count(*) AS n, sum(x) ...
    FROM (SELECT date_trunc('day', CAST(started_at AS TIMESTAMPTZ)) AS mizzen_bucket, ...
          FROM source WHERE started_at >= <from> AND (<filter>)) AS rows
    GROUP BY GROUPING SETS ((mizzen_bucket), (mizzen_bucket, vehicle), ...)
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from mizzen.signals.buckets import literal
from mizzen.signals.definition import Signal

OUTPUT = (
    "bucket",
    "dimension",
    "segment",
    "arm",
    "n",
    "value",
    "sum_x",
    "sum_y",
    "sum_xx",
    "sum_yy",
    "sum_xy",
)
NULL_SEGMENT = "(null)"


@dataclass(frozen=True)
class Window:
    """The buckets computed: from `start` (included) to `end` (excluded); None: unbounded."""

    start: datetime | None = None
    end: datetime | None = None

    def describe(self) -> str:
        a = self.start.isoformat() if self.start else "the first row"
        b = self.end.isoformat() if self.end else "the last row"
        return f"{a} .. {b}"


def _string(engine: str) -> str:
    return "VARCHAR" if engine == "duckdb" else "STRING"


def _instant(engine: str) -> str:
    return "TIMESTAMPTZ" if engine == "duckdb" else "TIMESTAMP"


def ident(name: str, engine: str = "duckdb") -> str:
    return f'"{name}"' if engine == "duckdb" else f"`{name}`"


def bucket_expr(signal: Signal, engine: str) -> str:
    col = ident(signal.time, engine)
    return f"date_trunc('{signal.grain}', CAST({col} AS {_instant(engine)}))"


def where(signal: Signal, window: Window, engine: str) -> list[str]:
    """The window on the time column (so the scan skips the rest), then the signal's filters.
    Rows without a time are in no bucket."""
    col = ident(signal.time, engine)
    out = [f"{col} IS NOT NULL"]  # a row without a time is in no bucket
    if window.start is not None:
        out.append(f"{col} >= {literal(window.start, signal.time_type, signal.time_zone, engine)}")
    if window.end is not None:
        out.append(f"{col} < {literal(window.end, signal.time_type, signal.time_zone, engine)}")
    out += [f"({f})" for f in signal.filters]
    return out


def sets(signal: Signal) -> list[list[str]]:
    groups: list[list[str]] = [[], *([d] for d in signal.dimensions)]
    if signal.arm is not None:
        groups += [[*g, signal.arm] for g in groups]
    return [["mizzen_bucket", *g] for g in groups]


def query(signal: Signal, window: Window, engine: str = "duckdb", sql_text: str = "") -> str:
    """The query whose rows are the signal's values over `window` (columns: OUTPUT)."""
    if signal.aggregate == "sql":
        return _file_query(signal, window, engine, sql_text)
    string = _string(engine)
    keep = [*signal.dimensions, *([signal.arm] if signal.arm else [])]
    conditions = where(signal, window, engine)
    if signal.moments:
        inner = [f"{bucket_expr(signal, engine)} AS mizzen_bucket"]
        inner += [ident(c, engine) for c in keep]
        inner.append(f"CAST(({signal.x}) AS DOUBLE) AS mizzen_x")
        if signal.y is not None:
            inner.append(f"CAST(({signal.y}) AS DOUBLE) AS mizzen_y")
        rows = f"SELECT {', '.join(inner)}\n    FROM source"
        if conditions:
            rows += "\n    WHERE " + "\n      AND ".join(conditions)
        counted = ["mizzen_x IS NOT NULL"] + (["mizzen_y IS NOT NULL"] if signal.y else [])
        rows = f"SELECT * FROM (\n    {rows}\n  ) AS measured WHERE {' AND '.join(counted)}"
    else:
        rows = f"SELECT *, {bucket_expr(signal, engine)} AS mizzen_bucket\n    FROM source"
        if conditions:
            rows += "\n    WHERE " + "\n      AND ".join(conditions)

    def q(col: str) -> str:
        return ident(col, engine)

    def grouped(col: str) -> str:
        return f"grouping({q(col)}) = 0"

    dims = signal.dimensions
    dimension = "''" if not dims else _case([(grouped(d), f"'{d}'") for d in dims], "''")
    segment = (
        "''"
        if not dims
        else _case(
            [(grouped(d), f"coalesce(CAST({q(d)} AS {string}), '{NULL_SEGMENT}')") for d in dims],
            "''",
        )
    )
    arm = (
        f"CASE WHEN {grouped(signal.arm)} THEN CAST({q(signal.arm)} AS {string}) ELSE '' END"
        if signal.arm
        else "''"
    )
    if signal.moments:
        y = "mizzen_y" if signal.y is not None else "1.0"
        value = (
            "sum(mizzen_x) / nullif(sum(mizzen_y), 0)" if signal.y is not None else "sum(mizzen_x)"
        )
        measures = [
            "count(*) AS n",
            f"CAST({value} AS DOUBLE) AS value",
            "sum(mizzen_x) AS sum_x",
            f"sum({y}) AS sum_y",
            "sum(mizzen_x * mizzen_x) AS sum_xx",
            f"sum({y} * {y}) AS sum_yy",
            f"sum(mizzen_x * {y}) AS sum_xy",
        ]
    else:
        measures = ["count(*) AS n", f"CAST(({signal.expression}) AS DOUBLE) AS value"]
        measures += [f"CAST(NULL AS DOUBLE) AS {m}" for m in OUTPUT[6:]]
    groups = [", ".join(c if c == "mizzen_bucket" else q(c) for c in g) for g in sets(signal)]
    grouping = ",\n    ".join(f"({g})" for g in groups)
    select = [
        "mizzen_bucket AS bucket",
        f"{dimension} AS dimension",
        f"{segment} AS segment",
        f"{arm} AS arm",
        *measures,
    ]
    columns = ",\n  ".join(select)
    out = f"SELECT\n  {columns}\nFROM (\n  {rows}\n) AS rows\n"
    if len(sets(signal)) == 1:
        out += "GROUP BY mizzen_bucket"
    else:
        out += f"GROUP BY GROUPING SETS (\n    {grouping}\n)"
    if signal.arm:  # rows without an arm are in no arm (their `arm` is NULL): only in ''
        out = f"SELECT * FROM (\n{out}\n) AS grouped\nWHERE arm IS NOT NULL"
    return out


def _case(branches: list[tuple[str, str]], default: str) -> str:
    whens = " ".join(f"WHEN {cond} THEN {value}" for cond, value in branches)
    return f"CASE {whens} ELSE {default} END"


def source_view(signal: Signal, window: Window, engine: str) -> str:
    """What a signal's own SQL file reads as `source`: the rows of the window, filtered, with
    their `bucket`."""
    rows = f"SELECT *, {bucket_expr(signal, engine)} AS bucket FROM mizzen_scan"
    conditions = where(signal, window, engine)
    if conditions:
        rows += " WHERE " + " AND ".join(conditions)
    return rows


def _file_query(signal: Signal, window: Window, engine: str, sql_text: str) -> str:
    """A signal's own SQL file, its result shaped like the others'. It returns `bucket` and
    `value`, and may return `n`, `dimension`, `segment` and `arm` (long form)."""
    body = sql_text.strip().rstrip(";")
    return f"SELECT * FROM (\n{body}\n) AS mizzen_signal"
