"""A daily signal over a 10-million-row Delta table, computed by mizzen, next to the same SQL
run directly in DuckDB, in the same run.

    .venv/bin/python bench/signals.py [--rows 10000000] [--days 60] [--rounds 3] [--dir DIR]

Builds a local Delta table of --rows drives over --days days (one append per day, as a
daily ingestion writes them) and a project around it, then measures (best of --rounds):
  duckdb      the SQL `mizzen signals sql` prints, run by DuckDB over the table's Parquet
              files, listed beforehand (the baseline: what a user would run by hand)
  compute     mizzen's computation in this process (`mizzen.signals.compute`): the values
              table's state, the Delta log's file statistics, the same SQL in DuckDB, the
              checked commit of the values (rows of every bucket, segment and arm)
  cli         `mizzen signals compute NAME`: the same as a recorded run of mizzen's own job,
              from a cold process (spec, plan, run record, lineage, then the computation)
  daily       the next day's run after one more day was appended: what the schedule does
and prints each wall and CPU time (CPU: every thread, and the child process of `cli`;
steadier than wall time on a shared machine), the ratios to the baseline, and the rows read by the daily run. The
three are measured in turns, each round once, so the machine's load falls on all of them.
The signal is the example's business-share: a ratio, sliced by vehicle, split by arm.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import duckdb
import numpy as np
import pyarrow as pa

from mizzen import spec as spec_mod
from mizzen.datasets.model import DatasetSpec
from mizzen.datasets.table import DatasetTable
from mizzen.plan import compile_plan
from mizzen.signals import report, values
from mizzen.signals.compute import Where, compute
from mizzen.signals.sql import Window, query
from mizzen.storage import open_store

START = datetime(2025, 1, 6, tzinfo=UTC)
SPEC = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: bench
stores: {lake: lake}
store: lake
datasets:
  drives:
    location: lake/tables/drives
    schema:
      started_at: timestamp
      vehicle: string
      variant: string
      predicted: string
      confidence: double
signals:
  business-share:
    dataset: drives
    time: started_at
    ratio: {numerator: "predicted = 'business' AND confidence >= 0.9", denominator: 1}
    dimensions: [vehicle]
    arm: variant
"""


def day(rows: int, index: int) -> pa.Table:
    rng = np.random.default_rng(index)
    base = int((START + timedelta(days=index)).timestamp() * 1_000_000)
    micros = np.sort(rng.integers(0, 86_400_000_000, rows)) + base
    return pa.table(
        {
            "started_at": pa.array(micros, pa.timestamp("us", tz="UTC")),
            "vehicle": np.where(rng.random(rows) < 0.2, "van", "car"),
            "variant": np.where(rng.random(rows) < 0.5, "A", "B"),
            "predicted": np.where(rng.random(rows) < 0.45, "business", "personal"),
            "confidence": rng.random(rows),
        }
    )


def timed(fn: Any) -> tuple[float, float, Any]:
    """Wall seconds, CPU seconds (this process and its children, every thread), result."""
    import resource

    def cpu() -> float:
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    c0, w0 = cpu(), time.perf_counter()
    out = fn()
    return time.perf_counter() - w0, cpu() - c0, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mizzen-bench-signals-", dir=args.dir))
    try:
        run(root, args)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def run(root: Path, args: argparse.Namespace) -> None:
    (root / "mizzen.yaml").write_text(SPEC)
    lake = open_store((root / "lake").as_uri())
    plan = compile_plan(spec_mod.load(root / "mizzen.yaml"), "local")
    spec = DatasetSpec.model_validate(
        {"location": "lake/tables/drives", "schema": plan.datasets["drives"].spec["schema"]}
    )
    table = DatasetTable.open("drives", spec, lake)
    per_day = args.rows // args.days
    began = time.perf_counter()
    for i in range(args.days):
        table.write(day(per_day, i))
    print(
        f"table: {per_day * args.days:,} rows over {args.days} days, {len(table.delta().file_uris())} files ({time.perf_counter() - began:.1f}s to write)"
    )
    signal = report.definitions(plan)["business-share"]
    sql = query(signal, Window(), "duckdb")

    files = ", ".join(f"'{f}'" for f in table.delta().file_uris())

    def by_hand() -> int:
        con = duckdb.connect()
        con.execute("SET TimeZone = 'UTC'")
        con.execute(f"CREATE VIEW source AS SELECT * FROM read_parquet([{files}])")
        return int(con.sql(sql).to_arrow_table().num_rows)

    project = lake.child("mizzen/bench")

    def in_process() -> int:
        shutil.rmtree(root / "lake" / "mizzen" / "bench" / "signals", ignore_errors=True)
        out = compute(signal, Where(table, project))
        return out.rows_written

    def cli() -> int:
        shutil.rmtree(root / "lake" / "mizzen" / "bench" / "signals", ignore_errors=True)
        done = subprocess.run(
            [str(Path(sys.executable).parent / "mizzen"), "signals", "compute", "business-share"],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode:
            raise SystemExit(done.stdout + done.stderr)
        return values.read(values.table(project), "business-share").num_rows

    walls: dict[str, list[float]] = {"duckdb": [], "compute": [], "cli": []}
    cpus: dict[str, list[float]] = {"duckdb": [], "compute": [], "cli": []}
    counts: dict[str, int] = {}
    for _ in range(args.rounds):  # interleaved, so a busy moment of the machine hits all three
        for name, fn in (("duckdb", by_hand), ("compute", in_process), ("cli", cli)):
            wall, cpu, counts[name] = timed(fn)
            walls[name].append(wall)
            cpus[name].append(cpu)
    assert counts["duckdb"] == counts["compute"] == counts["cli"], counts
    table.write(day(per_day, args.days))
    wall, cpu, daily = timed(lambda: compute(signal, Where(table, project)))
    walls["daily"], cpus["daily"] = [wall], [cpu]
    assert daily.scan is not None
    print(
        f"rows out: {counts['duckdb']:,} (buckets x segments x arms); best of {args.rounds}, 2 cores"
    )
    print(f"{'step':<10} {'wall s':>8} {'vs duckdb':>10} {'cpu s':>8} {'vs duckdb':>10}")
    base_wall, base_cpu = min(walls["duckdb"]), min(cpus["duckdb"])
    for name in ("duckdb", "compute", "cli", "daily"):
        w, c = min(walls[name]), min(cpus[name])
        print(f"{name:<10} {w:>8.2f} {w / base_wall:>9.2f}x {c:>8.2f} {c / base_cpu:>9.2f}x")
    print(
        f"daily run: {daily.buckets} buckets from {daily.scan.rows_read:,} of {daily.scan.rows_total:,} rows "
        f"({daily.scan.files_read} of {daily.scan.files_total} files), {daily.rows_written} rows written"
    )
    summary = {n: {"wall": min(walls[n]), "cpu": min(cpus[n])} for n in walls}
    summary["rows_read_daily"] = daily.scan.rows_read  # type: ignore[assignment]
    summary["rows_total"] = daily.scan.rows_total  # type: ignore[assignment]
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
