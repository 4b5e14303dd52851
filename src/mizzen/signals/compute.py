"""One computation of a signal: which buckets to (re)compute, the dataset files that can hold
their rows, the generated SQL run by DuckDB or Spark, one commit into the values table
replacing exactly those buckets, lineage, and the alerts.

Incremental: a run recomputes from the last bucket the table holds (minus `lateData`) to the
newest row; nothing when the dataset has no new version since the last run. The files read
are chosen from the Delta log's statistics (min/max of the time column per file), so rows of
older buckets are not read at all (`rows_read` says how many were). A change of the
definition recomputes the whole history; `backfill` recomputes a range on demand.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from mizzen.errors import MizzenError, UsageError, first_line
from mizzen.signals import buckets
from mizzen.signals.definition import DATASET, Signal
from mizzen.signals.sql import OUTPUT, Window, query, source_view

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads

    from mizzen.datasets.lineage import Lineage
    from mizzen.datasets.table import DatasetTable
    from mizzen.storage.base import Store


NO_STORE_HINT = "declare `store:` in mizzen.yaml (on Kubernetes nothing is kept without one)"
TIDY_EVERY = 20  # commits to the values table between two vacuums of it


class SignalError(MizzenError):
    """A signal could not be computed (its SQL failed, its file returned the wrong shape)."""

    exit_code = 1


@dataclass
class Scan:
    """The dataset files a computation reads, and how much of the table that is."""

    fragments: list[Any]
    rows_read: int
    files_read: int
    rows_total: int
    files_total: int


@dataclass
class Outcome:
    signal: str
    status: str  # computed | up-to-date | no-data
    reason: str
    window: Window = field(default_factory=Window)
    source_version: int | None = None
    version: int | None = None  # of the values table
    buckets: int = 0
    rows_written: int = 0
    scan: Scan | None = None
    seconds: float = 0.0
    alerts: list[Any] = field(default_factory=list)

    def summary(self) -> str:
        if self.status != "computed":
            return f"signal {self.signal}: {self.reason}"
        scan = self.scan
        read = (
            f"{scan.rows_read:,} of {scan.rows_total:,} rows in {scan.files_read} of "
            f"{scan.files_total} files"
            if scan
            else "its rows"
        )
        return (
            f"signal {self.signal}: {self.buckets} bucket(s) from {self.window.describe()} "
            f"({self.reason}) from {read} of version {self.source_version}: "
            f"{self.rows_written} rows -> {DATASET}@{self.version} in {self.seconds:.2f}s"
        )


def plan_window(
    signal: Signal,
    state: Any,
    source_version: int,
    digest: str,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
) -> tuple[Window | None, str]:
    """The buckets to compute, and why (None: nothing to do)."""
    first = buckets.parse_bound(signal.start, signal.time_zone) if signal.start else None
    if start is not None or end is not None:
        return Window(start, end), "backfill"
    if state.last_bucket is None:
        return Window(first), "first run"
    if state.definition != digest:
        return Window(first), "the definition changed: the whole history"
    if state.source_version == source_version:
        return None, f"up to date (dataset {signal.dataset} is still at version {source_version})"
    back = state.last_bucket - timedelta(seconds=signal.late_seconds)
    since = buckets.floor(back, signal.grain, signal.time_zone)
    if first is not None and since < first:
        since = first
    late = f", {signal.late_seconds / 86400:g}d of late data" if signal.late_seconds else ""
    return Window(since), f"incremental: new version {source_version}{late}"


def select_files(source: DatasetTable, version: int, signal: Signal, window: Window) -> Scan:
    """The files of `version` that can hold rows of `window`: Delta's per-file min/max of the
    time column (and partition values) prune the others."""
    import urllib.parse

    import pyarrow as pa
    import pyarrow.dataset as pads

    delta = source.delta(version)
    dataset = delta.to_pyarrow_dataset()
    actions = pa.table(delta.get_add_actions(flatten=True)).to_pydict()
    sizes = {
        urllib.parse.unquote(p): int(n or 0)
        for p, n in zip(actions["path"], actions.get("num_records", []), strict=False)
    }
    kind = dataset.schema.field(signal.time).type
    expr = None
    for bound, op in ((window.start, ">="), (window.end, "<")):
        if bound is None:
            continue
        value = pa.scalar(_bound_value(bound, signal), type=kind)
        part = pads.field(signal.time) >= value if op == ">=" else pads.field(signal.time) < value
        expr = part if expr is None else expr & part
    every = list(dataset.get_fragments())
    chosen = every if expr is None else list(dataset.get_fragments(filter=expr))
    return Scan(
        fragments=chosen,
        rows_read=sum(sizes.get(f.path, 0) for f in chosen),
        files_read=len(chosen),
        rows_total=sum(sizes.values()),
        files_total=len(every),
    )


def _bound_value(bound: datetime, signal: Signal) -> Any:
    from zoneinfo import ZoneInfo

    local = bound.astimezone(ZoneInfo(signal.time_zone))
    if signal.time_type == "date":
        return local.date()
    if signal.time_type == "timestamp_ntz":
        return local.replace(tzinfo=None)
    return bound


def scan_dataset(source: DatasetTable, scan: Scan, version: int) -> pads.Dataset:
    import pyarrow.dataset as pads

    full = source.delta(version).to_pyarrow_dataset()
    return pads.FileSystemDataset(scan.fragments, full.schema, full.format, full.filesystem)


def local_files(source: DatasetTable, scan: Scan) -> list[str] | None:
    """Paths DuckDB can read itself (faster than through Arrow): a local table without
    partition columns (whose values live in folder names, which DuckDB would not unescape)."""
    import os

    if source.spec.partition_by or "://" in source.uri:
        return None
    return [os.path.join(source.uri, f.path) for f in scan.fragments]


# --- engines -------------------------------------------------------------------------------


def run_duckdb(
    signal: Signal,
    window: Window,
    source: DatasetTable,
    scan: Scan,
    version: int,
    sql_text: str = "",
) -> pa.Table:
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET TimeZone = '{signal.time_zone}'")
    paths = local_files(source, scan)
    if paths is not None:
        listed = ", ".join("'" + p.replace("'", "''") + "'" for p in paths)
        con.execute(f"CREATE VIEW mizzen_scan AS SELECT * FROM read_parquet([{listed}])")
    else:
        con.register("mizzen_scan", scan_dataset(source, scan, version))
    if signal.aggregate == "sql":
        con.execute(f"CREATE VIEW source AS {source_view(signal, window, 'duckdb')}")
    else:
        con.execute("CREATE VIEW source AS SELECT * FROM mizzen_scan")
    sql = query(signal, window, "duckdb", sql_text)
    try:
        return con.sql(sql).to_arrow_table()
    except duckdb.Error as exc:
        raise SignalError(
            f"signal {signal.name}: DuckDB refused its SQL: {first_line(exc)}",
            hint=f"`mizzen signals sql {signal.name}` prints it",
        ) from None


def run_spark(
    signal: Signal,
    window: Window,
    source: DatasetTable,
    scan: Scan,
    version: int,
    sql_text: str = "",
) -> pa.Table:
    """Spark reads the chosen files; the (small) result comes back to this process, which
    commits it (a Spark image needs mizzen[datasets] for that, not delta-spark)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyspark.sql import SparkSession

    spark = (
        SparkSession.builder.appName(f"mizzen-signal-{signal.name}")
        .config("spark.sql.session.timeZone", signal.time_zone)
        .getOrCreate()
    )
    try:
        root = _spark_uri(source.uri)
        files = [f"{root}/{f.path}" for f in scan.fragments]
        frame = spark.read.option("basePath", root).parquet(*files)
        frame.createOrReplaceTempView("mizzen_scan")
        if signal.aggregate == "sql":
            spark.sql(source_view(signal, window, "spark")).createOrReplaceTempView("source")
        else:
            frame.createOrReplaceTempView("source")
        result = spark.sql(query(signal, window, "spark", sql_text))
        # instants as epoch microseconds: collect() would turn them into this process's wall clock
        result = result.withColumn("bucket", (result["bucket"].cast("double") * 1e6).cast("long"))
        names = result.columns
        rows = result.collect()
    except Exception as exc:
        if type(exc).__module__.split(".")[0] not in ("pyspark", "py4j"):
            raise
        raise SignalError(
            f"signal {signal.name}: Spark SQL refused its SQL: {first_line(exc)}",
            hint=f"`mizzen signals sql {signal.name} --engine spark` prints it",
        ) from None
    finally:
        spark.stop()
    table = pa.table({n: [r[n] for r in rows] for n in names})
    micros = pc.cast(table["bucket"], pa.int64())
    stamps = pc.cast(micros, pa.timestamp("us", tz="UTC"))
    return table.set_column(names.index("bucket"), "bucket", stamps)


def _spark_uri(uri: str) -> str:
    if uri.startswith("s3://"):
        return "s3a://" + uri[5:]
    return uri if "://" in uri else "file://" + uri


def _empty_output() -> pa.Table:
    import pyarrow as pa

    return pa.table({n: pa.array([], _output_types()[n]) for n in OUTPUT})


def _output_types() -> dict[str, Any]:
    import pyarrow as pa

    types: dict[str, Any] = {n: pa.float64() for n in OUTPUT}
    types.update(
        bucket=pa.timestamp("us", tz="UTC"),
        dimension=pa.string(),
        segment=pa.string(),
        arm=pa.string(),
        n=pa.int64(),
    )
    return types


def shape(
    signal: Signal, result: pa.Table, source_version: int, digest: str, run_id: str | None
) -> pa.Table:
    """The engine's rows as the values table holds them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if "bucket" not in result.column_names or "value" not in result.column_names:
        raise SignalError(
            f"signal {signal.name}: {signal.sql_file or 'its SQL'} returned "
            f"{', '.join(result.column_names) or 'no columns'}; it must return `bucket` and "
            "`value` (and may return n, dimension, segment, arm)",
            hint="select from `source` (the rows of the window, with their bucket)",
        )
    types = _output_types()
    n = result.num_rows
    columns: dict[str, Any] = {}
    for name in OUTPUT:
        if name in result.column_names:
            col = result[name]
            if name == "bucket":
                if pa.types.is_date(col.type):
                    col = pc.cast(col, pa.timestamp("us"))
                if pa.types.is_timestamp(col.type) and col.type.tz is None:
                    col = pc.assume_timezone(col, signal.time_zone)
            columns[name] = pc.cast(col, types[name])
        elif name in ("dimension", "segment", "arm"):
            columns[name] = pa.array([""] * n, pa.string())
        elif name == "n":
            columns[name] = pa.array([0] * n, pa.int64())
        else:
            columns[name] = pa.nulls(n, types[name])
    for name in ("dimension", "segment", "arm"):
        columns[name] = pc.fill_null(columns[name], "")
    columns["n"] = pc.fill_null(columns["n"], 0)
    bad = pc.sum(pc.is_null(columns["bucket"])).as_py()
    if bad:
        raise SignalError(f"signal {signal.name}: {bad} row(s) without a bucket")
    now = datetime.now(UTC)
    out = {
        "signal": pa.array([signal.name] * n, pa.string()),
        "bucket": columns["bucket"],
        "grain": pa.array([signal.grain] * n, pa.string()),
        **{k: columns[k] for k in ("dimension", "segment", "arm", "value", "n")},
        **{k: columns[k] for k in ("sum_x", "sum_y", "sum_xx", "sum_yy", "sum_xy")},
        "source_version": pa.array([source_version] * n, pa.int64()),
        "definition": pa.array([digest] * n, pa.string()),
        "computed_at": pa.array([now] * n, pa.timestamp("us", tz="UTC")),
        "run_id": pa.array([run_id] * n, pa.string()),
    }
    return pa.table(out)


def replace_predicate(signal: Signal, window: Window) -> str:
    """The rows of the values table this computation replaces."""
    name = signal.name.replace("'", "''")
    out = f"signal = '{name}'"
    for bound, op in ((window.start, ">="), (window.end, "<")):
        if bound is not None:
            out += f" AND bucket {op} '{bound.astimezone(UTC).isoformat().replace('+00:00', 'Z')}'"
    return out


# --- one run -------------------------------------------------------------------------------


@dataclass
class Where:
    """What a computation reads and writes, from the run-time contract."""

    source: DatasetTable
    project: Store
    run_id: str | None = None
    workload: str | None = None

    @property
    def lineage(self) -> Lineage:
        from mizzen.datasets.lineage import Lineage

        return Lineage(self.project)

    @classmethod
    def from_contract(cls, signal: Signal, environ: Mapping[str, str]) -> Where:
        from mizzen import contract
        from mizzen.datasets.jobs import given

        job = given(environ)
        if job is None or signal.dataset not in job.names():
            raise UsageError(
                f"signal {signal.name}: dataset {signal.dataset!r} is not given to this process",
                hint=f"run it as mizzen's own job: mizzen signals compute {signal.name}",
            )
        from mizzen.storage.project import contract_store

        project = contract_store(environ)
        if project is None:
            raise UsageError(
                f"signal {signal.name}: no project store to keep its values in "
                f"({contract.STORE} is not set)",
                hint=NO_STORE_HINT,
            )
        told = contract.read(environ)
        return cls(job.table(signal.dataset), project, told.run_id, told.workload)


def compute(
    signal: Signal,
    where: Where,
    *,
    engine: str | None = None,
    sql_text: str = "",
    start: datetime | None = None,
    end: datetime | None = None,
    now: datetime | None = None,
) -> Outcome:
    """Compute what is due (or the range start..end) and commit it; alerts are not sent here."""
    from mizzen.signals import values as values_mod

    began = time.monotonic()
    engine = engine or signal.engine
    values = values_mod.table(where.project)
    state = values_mod.state(values, signal.name)
    version = where.source.version()
    if version is None:
        return Outcome(signal.name, "no-data", f"dataset {signal.dataset} has no version yet")
    digest = signal.digest(sql_text)
    window, reason = plan_window(signal, state, version, digest, start=start, end=end)
    if window is None:
        return Outcome(signal.name, "up-to-date", reason, source_version=version)
    scan = select_files(where.source, version, signal, window)
    run = run_spark if engine == "spark" else run_duckdb
    result = run(signal, window, where.source, scan, version, sql_text) if scan.fragments else None
    if result is None:
        result = _empty_output()
    rows = shape(signal, result, version, digest, where.run_id)
    written = values.write(
        rows,
        run_id=where.run_id,
        workload=where.workload,
        replace=replace_predicate(signal, window),
    )
    if written.version and written.version % TIDY_EVERY == 0:
        values.vacuum()  # files of versions past the time-travel window, a checkpoint of the log
    if where.run_id:
        lineage = where.lineage
        lineage.record_read(where.run_id, signal.dataset, version, where.workload)
        if written.version is not None:
            lineage.record_write(where.run_id, DATASET, written.version, where.workload)
    bucket_count = len(set(rows["bucket"].to_pylist()))
    return Outcome(
        signal.name,
        "computed",
        reason,
        window=window,
        source_version=version,
        version=written.version,
        buckets=bucket_count,
        rows_written=rows.num_rows,
        scan=scan,
        seconds=time.monotonic() - began,
    )


def log(outcome: Outcome) -> None:
    """Into the run record (when inside a run)."""
    import mizzen

    if outcome.status != "computed" or outcome.scan is None:
        return
    scan = outcome.scan
    for name, value in (
        ("rows_read", scan.rows_read),
        ("rows_total", scan.rows_total),
        ("files_read", scan.files_read),
        ("files_total", scan.files_total),
        ("buckets", outcome.buckets),
        ("rows_written", outcome.rows_written),
        ("seconds", round(outcome.seconds, 3)),
    ):
        mizzen.log_metric(name, value)
    mizzen.log_param("window", outcome.window.describe())
    mizzen.log_param("source_version", outcome.source_version)
    mizzen.log_param("reason", outcome.reason)
