"""Every aggregate form, column type, grain and time zone a signal can have, computed by
DuckDB on a real Delta table (and by Spark SQL: the same values)."""

from __future__ import annotations

import datetime as dt
import importlib.util
import shutil
from pathlib import Path
from typing import Any

import pytest
from tests.signals.conftest import ACCURACY, BUSINESS, DAY0, DRIVES, ROWS_PER_DAY, ingest, with_

from mizzen.datasets.model import DatasetSpec
from mizzen.datasets.table import DatasetTable
from mizzen.signals import buckets, values
from mizzen.signals.compute import Where, compute
from mizzen.signals.sql import Window, query
from mizzen.storage import open_store


@pytest.fixture
def local(tmp_path: Path) -> tuple[DatasetTable, Where]:
    lake = open_store(tmp_path.as_uri())
    table = DatasetTable.open("drives", DatasetSpec.model_validate(DRIVES), lake)
    return table, Where(table, lake.child("project"))


def rows(where: Where, name: str) -> list[dict[str, Any]]:
    return values.read(values.table(where.project), name).to_pylist()


def overall(where: Where, name: str) -> dict[dt.datetime, dict[str, Any]]:
    return {r["bucket"]: r for r in rows(where, name) if not r["dimension"] and not r["arm"]}


def test_buckets_start_at_midnight_of_the_signal_time_zone() -> None:
    paris = "Europe/Paris"
    when = dt.datetime(2025, 3, 30, 12, tzinfo=dt.UTC)  # the day summer time starts
    assert buckets.floor(when, "day", paris) == dt.datetime(2025, 3, 29, 23, tzinfo=dt.UTC)
    assert buckets.step(buckets.floor(when, "day", paris), "day", paris) == dt.datetime(
        2025, 3, 30, 22, tzinfo=dt.UTC
    )  # a 23-hour day
    assert buckets.floor(when, "week", "UTC") == dt.datetime(2025, 3, 24, tzinfo=dt.UTC)
    assert buckets.floor(when, "hour", paris) == dt.datetime(2025, 3, 30, 12, tzinfo=dt.UTC)
    assert buckets.parse_bound("2025-03-30", paris) == dt.datetime(2025, 3, 29, 23, tzinfo=dt.UTC)


def test_a_paris_day_holds_the_rows_of_that_local_day(local: Any) -> None:
    table, where = local
    ingest(table, range(3))
    signal = with_(ACCURACY, name="paris", time_zone="Europe/Paris", dimensions=())
    compute(signal, where)
    got = overall(where, "paris")
    first = DAY0 - dt.timedelta(hours=1)  # 3 March, 00:00 in Paris (UTC+1)
    assert sorted(got)[:2] == [first, first + dt.timedelta(days=1)]
    data = table.read().to_pylist()
    in_first = [r for r in data if first <= r["started_at"] < first + dt.timedelta(days=1)]
    assert got[first]["n"] == len(in_first)


@pytest.mark.parametrize(
    ("signal", "expected"),
    [
        (with_(ACCURACY, name="weekly", grain="week", dimensions=()), {DAY0: 7 * ROWS_PER_DAY}),
        (
            with_(ACCURACY, name="by-date", time="day", time_type="date", dimensions=()),
            {DAY0 + dt.timedelta(days=d): ROWS_PER_DAY for d in range(7)},
        ),
    ],
)
def test_week_grain_and_date_columns(local: Any, signal: Any, expected: dict[Any, int]) -> None:
    table, where = local
    ingest(table, range(7))
    compute(signal, where)
    assert {b: r["n"] for b, r in overall(where, signal.name).items()} == expected


def test_an_hourly_signal_over_a_wall_clock_column(tmp_path: Path) -> None:
    import pyarrow as pa

    spec = DatasetSpec.model_validate(
        {"location": "lake/t/clicks", "schema": {"at": "timestamp_ntz", "clicked": "boolean"}}
    )
    lake = open_store(tmp_path.as_uri())
    table = DatasetTable.open("clicks", spec, lake)
    base = dt.datetime(2025, 6, 1, 10)
    table.write(
        pa.table(
            {
                "at": pa.array(
                    [base + dt.timedelta(minutes=m) for m in range(0, 180, 10)], pa.timestamp("us")
                ),
                "clicked": [m % 3 == 0 for m in range(18)],
            }
        )
    )
    signal = with_(
        ACCURACY,
        name="ctr",
        dataset="clicks",
        time="at",
        time_type="timestamp_ntz",
        grain="hour",
        x="clicked",
        dimensions=(),
        time_zone="Europe/Paris",
    )
    where = Where(table, lake.child("project"))
    compute(signal, where)
    got = overall(where, "ctr")
    # wall-clock 10:00 in Paris (summer) is 08:00 UTC
    assert sorted(got) == [dt.datetime(2025, 6, 1, h, tzinfo=dt.UTC) for h in (8, 9, 10)]
    assert [got[b]["value"] for b in sorted(got)] == [pytest.approx(2 / 6)] * 3
    ingest_more = dt.datetime(2025, 6, 1, 13, 30)
    table.write(pa.table({"at": pa.array([ingest_more], pa.timestamp("us")), "clicked": [True]}))
    out = compute(signal, where)
    assert out.scan is not None and out.scan.files_read == 2  # the last hour's file, the new one
    assert len(overall(where, "ctr")) == 4


def test_a_sum_a_count_and_any_aggregate(local: Any) -> None:
    table, where = local
    ingest(table, range(2))
    forms = [
        with_(
            BUSINESS,
            name="vans",
            aggregate="count",
            x="CASE WHEN vehicle = 'van' THEN 1 ELSE 0 END",
            y=None,
            arm=None,
        ),
        with_(BUSINESS, name="confidence-sum", aggregate="sum", x="confidence", y=None, arm=None),
        with_(
            BUSINESS,
            name="drivers",
            aggregate="expression",
            x=None,
            y=None,
            expression="count(DISTINCT driver_id)",
            arm="variant",
        ),
    ]
    for signal in forms:
        compute(signal, where)
    data = table.read().to_pylist()
    day0 = [r for r in data if r["started_at"] < DAY0 + dt.timedelta(days=1)]
    assert overall(where, "vans")[DAY0]["value"] == sum(r["vehicle"] == "van" for r in day0)
    assert overall(where, "confidence-sum")[DAY0]["value"] == pytest.approx(
        sum(r["confidence"] for r in day0)
    )
    drivers = overall(where, "drivers")[DAY0]
    assert drivers["value"] == len({r["driver_id"] for r in day0}) and drivers["sum_x"] is None
    per_arm = {
        r["arm"]: r["value"]
        for r in rows(where, "drivers")
        if r["bucket"] == DAY0 and not r["dimension"]
    }
    assert per_arm["A"] == len({r["driver_id"] for r in day0 if r["variant"] == "A"})


def test_a_signal_from_its_own_sql_file(local: Any) -> None:
    table, where = local
    ingest(table, range(3))
    text = """
    SELECT bucket, 'vehicle' AS dimension, vehicle AS segment,
           max(confidence) - min(confidence) AS value, count(*) AS n
    FROM source GROUP BY ALL
    """
    signal = with_(
        ACCURACY,
        name="spread",
        aggregate="sql",
        x=None,
        y=None,
        sql_file="s.sql",
        filters=("predicted = 'business'",),
    )
    out = compute(signal, where, sql_text=text)
    assert out.buckets == 3
    got = {(r["segment"], r["bucket"]): r for r in rows(where, "spread")}
    data = [
        r
        for r in table.read().to_pylist()
        if r["predicted"] == "business"
        and r["vehicle"] == "van"
        and r["started_at"] < DAY0 + dt.timedelta(days=1)
    ]
    assert got[("van", DAY0)]["n"] == len(data)
    assert got[("van", DAY0)]["value"] == pytest.approx(
        max(r["confidence"] for r in data) - min(r["confidence"] for r in data)
    )
    ingest(table, range(3, 4))
    again = compute(signal, where, sql_text=text)
    assert again.scan is not None and again.scan.files_read == 2  # its `source` is the window too


def test_a_sql_file_that_returns_the_wrong_shape_fails_with_what_it_must_return(local: Any) -> None:
    from mizzen.signals.compute import SignalError

    table, where = local
    ingest(table, range(1))
    signal = with_(ACCURACY, name="bad", aggregate="sql", x=None, y=None, sql_file="s.sql")
    with pytest.raises(
        SignalError, match=r"s\.sql returned bucket, total; it must return `bucket`"
    ):
        compute(signal, where, sql_text="SELECT bucket, count(*) AS total FROM source GROUP BY 1")
    with pytest.raises(SignalError, match="DuckDB refused its SQL"):
        compute(with_(ACCURACY, name="bad2", x="no_such_column = 1"), where)
    assert values.table(where.project).version() is None  # nothing committed


def test_the_generated_sql_names_the_window_in_each_dialect() -> None:
    window = Window(dt.datetime(2025, 1, 3, tzinfo=dt.UTC), dt.datetime(2025, 1, 5, tzinfo=dt.UTC))
    duck = query(BUSINESS, window, "duckdb")
    spark = query(BUSINESS, window, "spark")
    assert "\"started_at\" >= CAST('2025-01-03 00:00:00+00' AS TIMESTAMPTZ)" in duck
    assert "`started_at` < CAST('2025-01-05 00:00:00Z' AS TIMESTAMP)" in spark
    assert "GROUPING SETS" in duck and "CAST(`vehicle` AS STRING)" in spark


def _spark_ready() -> bool:
    return importlib.util.find_spec("pyspark") is not None and shutil.which("java") is not None


@pytest.mark.spark
@pytest.mark.skipif(not _spark_ready(), reason="needs pyspark and Java")
def test_spark_sql_computes_the_same_values_as_duckdb(tmp_path: Path) -> None:
    lake = open_store(tmp_path.as_uri())
    table = DatasetTable.open("drives", DatasetSpec.model_validate(DRIVES), lake)
    ingest(table, range(3))
    duck = Where(table, lake.child("duck"))
    spark = Where(table, lake.child("spark"))
    signal = with_(BUSINESS, time_zone="Europe/Paris")
    compute(signal, duck, engine="duckdb")
    out = compute(signal, spark, engine="spark")
    assert out.status == "computed"

    def keyed(where: Where) -> dict[Any, tuple[Any, ...]]:
        return {
            (r["bucket"], r["dimension"], r["segment"], r["arm"]): (r["n"], r["value"], r["sum_xx"])
            for r in rows(where, signal.name)
        }

    a, b = keyed(duck), keyed(spark)
    assert a.keys() == b.keys()
    assert len({k[0] for k in a}) == 4  # 3 UTC days are 4 days in Paris time
    for key in a:
        assert a[key][0] == b[key][0]
        assert a[key][1] == pytest.approx(b[key][1], abs=1e-12)
