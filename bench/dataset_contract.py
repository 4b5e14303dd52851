"""The cost of a dataset's schema contract next to the cost of writing the data.

    .venv/bin/python bench/dataset_contract.py [--size-mb 200] [--rounds 2] [--dir DIR]

Builds an Arrow table of about --size-mb (in memory, six columns of trip data), then, in the
same run on a local folder (best of --rounds):
  write       a plain delta-rs `write_deltalake` of it, no contract (the baseline)
  check       `check_table`: the contract on in-memory data (types + null counts)
  write+check `DatasetTable.write`: the checked write mizzen does (check, cast, commit)
  staged      the same data as Parquet files a job wrote: `check_staged` (footers only)
              next to the time pyarrow took to write those files
and prints each time and the ratios check/write, (write+check)/write, staged-check/parquet.
Use --size-mb 1024 for the 1 GB figure.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "src"))

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import write_deltalake

from mizzen.datasets.contract import check_table
from mizzen.datasets.model import DatasetSpec
from mizzen.datasets.table import DatasetTable
from mizzen.storage import open_store

SPEC = DatasetSpec.model_validate(
    {
        "location": "lake/tables/trips",
        "schema": {
            "driver_id": {"type": "string", "nullable": False},
            "day": {"type": "date", "nullable": False},
            "ts": "timestamp",
            "distance_km": {"type": "double", "nullable": False},
            "fare": "double",
            "email": "string",
        },
        "subject": "driver_id",
        "personal": ["email"],
    }
)


def make_table(size_mb: int) -> pa.Table:
    rows = max(1000, size_mb * 1024 * 1024 // 64)  # ~64 bytes a row in Arrow
    rng = np.random.default_rng(7)
    ids = rng.integers(0, 50_000, rows)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    days = [date(2026, 1, 1) + timedelta(days=int(d)) for d in range(365)]
    return pa.table(
        {
            "driver_id": pa.array([f"d-{i:06d}" for i in ids], pa.string()),
            "day": pa.array(days, pa.date32()).take(pa.array(rng.integers(0, 365, rows))),
            "ts": pa.array(
                start.timestamp() * 1e6 + rng.integers(0, 365 * 86400 * 10**6, rows),
                pa.int64(),
            ).cast(pa.timestamp("us", tz="UTC")),
            "distance_km": pa.array(rng.gamma(2.0, 4.0, rows)),
            "fare": pa.array(rng.gamma(2.0, 6.0, rows)),
            "email": pa.array([f"d-{i:06d}@example.com" for i in ids], pa.string()),
        }
    )


def timed(fn: object) -> float:
    start = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - start


def one_round(root: Path, data: pa.Table, keep: Any) -> None:
    keep("write", timed(lambda: write_deltalake(str(root / "plain"), data)))
    keep("check", timed(lambda: check_table("trips", SPEC, data).raise_for_violations()))
    table = DatasetTable.open("trips", SPEC, open_store(str(root / "lake")))
    keep("write+check", timed(lambda: table.write(data)))
    folder = root / "lake" / table.staging("run-1").key
    folder.mkdir(parents=True)
    parts = data.to_batches(max_chunksize=max(1, data.num_rows // 8))

    def stage() -> None:
        for i, batch in enumerate(parts):
            pq.write_table(pa.Table.from_batches([batch]), folder / f"part-{i}.parquet")

    keep("parquet", timed(stage))
    keep("staged-check", timed(lambda: table.check_staged("run-1").raise_for_violations()))
    keep("staged-commit", timed(lambda: table.commit_staged("run-1")))
    shutil.rmtree(root)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--dir", default=None, help="work folder (default: a temp dir)")
    args = parser.parse_args()
    data = make_table(args.size_mb)
    print(f"data: {data.num_rows:,} rows, {data.nbytes / 2**20:,.0f} MiB in Arrow")
    work = Path(args.dir or tempfile.mkdtemp(prefix="mizzen-bench-"))
    best: dict[str, float] = {}

    def keep(name: str, seconds: float) -> None:
        best[name] = min(best.get(name, seconds), seconds)

    try:
        for round_ in range(args.rounds):
            one_round(work / f"r{round_}", data, keep)
    finally:
        if args.dir is None:
            shutil.rmtree(work, ignore_errors=True)
    for name, seconds in best.items():
        print(f"{name:>14}: {seconds * 1000:10.1f} ms")
    print(f"check / write                 = {best['check'] / best['write']:.4f}")
    print(f"(write+check) / write         = {best['write+check'] / best['write']:.3f}")
    print(f"staged-check / parquet write  = {best['staged-check'] / best['parquet']:.4f}")
    print(f"staged-commit / write         = {best['staged-commit'] / best['write']:.3f}")


if __name__ == "__main__":
    main()
