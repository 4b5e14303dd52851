"""Signals over real Delta tables, on a local folder and on SeaweedFS (S3)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import pytest
from tests.storage.conftest import make_store

from mizzen.datasets.model import DatasetSpec
from mizzen.datasets.table import DatasetTable
from mizzen.signals.compute import Where
from mizzen.signals.definition import Signal
from mizzen.storage import Store, open_store

pytest.importorskip("deltalake")
pytest.importorskip("duckdb")

STORES = ["local", pytest.param("s3", marks=pytest.mark.s3)]
DAY0 = dt.datetime(2025, 3, 3, tzinfo=dt.UTC)  # a Monday
ROWS_PER_DAY = 400

DRIVES = {
    "location": "lake/tables/drives",
    "schema": {
        "drive_id": {"type": "long", "nullable": False},
        "started_at": "timestamp",
        "day": "date",
        "predicted": "string",
        "confidence": "double",
        "corrected": "string",
        "vehicle": "string",
        "variant": "string",
        "driver_id": "string",
    },
}

BUSINESS = Signal(
    name="business-share",
    dataset="drives",
    time="started_at",
    time_type="timestamp",
    grain="day",
    aggregate="ratio",
    x="predicted = 'business' AND confidence >= 0.9",
    y="1",
    dimensions=("vehicle",),
    arm="variant",
)
ACCURACY = Signal(
    name="accuracy",
    dataset="drives",
    time="started_at",
    time_type="timestamp",
    grain="day",
    aggregate="mean",
    x="coalesce(corrected, predicted) = predicted",
    y="1",
    dimensions=("vehicle",),
)


def day_rows(day: int, n: int = ROWS_PER_DAY, *, seed: int | None = None, start: int = 0) -> Any:
    """`n` synthetic drives of day `day` (days after DAY0): variant B is classified business
    with high confidence more often, vans are corrected more often."""
    import numpy as np
    import pyarrow as pa

    rng = np.random.default_rng(seed if seed is not None else day)
    variant = np.where(rng.random(n) < 0.5, "A", "B")
    vehicle = np.where(rng.random(n) < 0.25, "van", "car")
    predicted = np.where(rng.random(n) < 0.45, "business", "personal")
    confidence = np.where(variant == "B", rng.uniform(0.6, 1.0, n), rng.uniform(0.5, 1.0, n))
    wrong = rng.random(n) < np.where(vehicle == "van", 0.2, 0.08)
    corrected = np.where(wrong, np.where(predicted == "business", "personal", "business"), None)
    seconds = np.sort(rng.integers(0, 86400, n))
    started = [DAY0 + dt.timedelta(days=day, seconds=int(s)) for s in seconds]
    return pa.table(
        {
            "drive_id": np.arange(start + day * 100_000, start + day * 100_000 + n, dtype=np.int64),
            "started_at": pa.array(started, pa.timestamp("us", tz="UTC")),
            "day": pa.array([s.date() for s in started], pa.date32()),
            "predicted": predicted,
            "confidence": confidence,
            "corrected": pa.array(corrected.tolist(), pa.string()),
            "vehicle": vehicle,
            "variant": variant,
            "driver_id": [f"d{i % 37}" for i in range(n)],
        }
    )


@pytest.fixture(params=STORES)
def lake(request: pytest.FixtureRequest, tmp_path: Any) -> Store:
    url, options = make_store(request.param, request, tmp_path)
    return open_store(url, **options)


@pytest.fixture
def drives(lake: Store) -> DatasetTable:
    return DatasetTable.open("drives", DatasetSpec.model_validate(DRIVES), lake)


@pytest.fixture
def where(drives: DatasetTable, lake: Store) -> Where:
    return Where(drives, lake.child("project"), run_id=None, workload="test")


def ingest(table: DatasetTable, days: range, **kw: Any) -> None:
    """One version per day, as a daily ingestion job appends them."""
    for day in days:
        table.write(day_rows(day, **kw))


def with_(signal: Signal, **changes: Any) -> Signal:
    return replace(signal, **changes)
