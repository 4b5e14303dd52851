"""A signal's computation on real Delta tables (local folder and SeaweedFS): the values equal
the same aggregate written by hand, a rerun reads only the files of new buckets, late data
within the window is counted, a changed definition or a backfill recomputes what it says."""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb
import pytest
from tests.signals.conftest import ACCURACY, BUSINESS, DAY0, ROWS_PER_DAY, day_rows, ingest, with_

from mizzen.signals import values
from mizzen.signals.compute import compute
from mizzen.signals.definition import Signal


def stored(where: Any, signal: Signal) -> dict[tuple[str, str, str, dt.datetime], dict[str, Any]]:
    rows = values.read(values.table(where.project), signal.name).to_pylist()
    return {(r["dimension"], r["segment"], r["arm"], r["bucket"]): r for r in rows}


def by_hand(table: Any, sql: str) -> dict[Any, float]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("drives", table)
    return {tuple(r[:-1]): r[-1] for r in con.execute(sql).fetchall()}


def test_values_are_the_aggregate_written_by_hand(drives: Any, where: Any) -> None:
    ingest(drives, range(5))
    outcome = compute(BUSINESS, where)
    assert outcome.status == "computed" and outcome.buckets == 5
    assert outcome.rows_written == 5 * 3 * 3  # (all, car, van) x (all arms, A, B)
    got = stored(where, BUSINESS)
    data = drives.read()
    overall = by_hand(
        data,
        "SELECT CAST(started_at AS DATE), avg(CASE WHEN predicted = 'business' AND confidence >= 0.9 "
        "THEN 1.0 ELSE 0.0 END) FROM drives GROUP BY 1",
    )
    per_arm_vehicle = by_hand(
        data,
        "SELECT CAST(started_at AS DATE), vehicle, variant, avg(CASE WHEN predicted = 'business' "
        "AND confidence >= 0.9 THEN 1.0 ELSE 0.0 END) FROM drives GROUP BY ALL",
    )
    for (day,), value in overall.items():
        bucket = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        assert got[("", "", "", bucket)]["value"] == pytest.approx(value, abs=1e-12)
        assert got[("", "", "", bucket)]["n"] == ROWS_PER_DAY
    for (day, vehicle, variant), value in per_arm_vehicle.items():
        bucket = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        assert got[("vehicle", vehicle, variant, bucket)]["value"] == pytest.approx(
            value, abs=1e-12
        )
    # the rows without a correction count as right: accuracy is a mean of a boolean
    compute(ACCURACY, where)
    acc = stored(where, ACCURACY)
    want = by_hand(
        data,
        "SELECT CAST(started_at AS DATE), vehicle, avg(CAST(coalesce(corrected, predicted) = predicted "
        "AS DOUBLE)) FROM drives GROUP BY ALL",
    )
    for (day, vehicle), value in want.items():
        bucket = dt.datetime(day.year, day.month, day.day, tzinfo=dt.UTC)
        assert acc[("vehicle", vehicle, "", bucket)]["value"] == pytest.approx(value, abs=1e-12)


def test_a_rerun_reads_only_the_files_of_new_buckets(drives: Any, where: Any) -> None:
    ingest(drives, range(10))
    first = compute(ACCURACY, where)
    assert first.scan is not None
    assert (first.scan.rows_read, first.scan.files_read) == (10 * ROWS_PER_DAY, 10)
    before = stored(where, ACCURACY)

    again = compute(ACCURACY, where)
    assert again.status == "up-to-date" and again.scan is None  # same dataset version: no scan

    ingest(drives, range(10, 12))
    second = compute(ACCURACY, where)
    assert second.scan is not None and second.window.start == DAY0 + dt.timedelta(days=9)
    # the last bucket computed (day 9, perhaps partial then) and the two new days: 3 of 12 files
    assert (second.scan.rows_read, second.scan.files_read) == (3 * ROWS_PER_DAY, 3)
    assert second.scan.rows_total == 12 * ROWS_PER_DAY
    assert second.buckets == 3
    after = stored(where, ACCURACY)
    assert len({k[3] for k in after}) == 12
    for key, row in before.items():  # the old buckets were not rewritten
        if key[3] < DAY0 + dt.timedelta(days=9):
            assert after[key]["computed_at"] == row["computed_at"]
            assert after[key]["run_id"] == row["run_id"]
    assert (
        after[("", "", "", DAY0 + dt.timedelta(days=9))]["computed_at"]
        > before[("", "", "", DAY0 + dt.timedelta(days=9))]["computed_at"]
    )


def test_late_rows_inside_the_window_are_counted_and_older_ones_wait_for_a_backfill(
    drives: Any, where: Any
) -> None:
    signal = with_(ACCURACY, late_seconds=2 * 86400)
    ingest(drives, range(6))
    compute(signal, where)
    # late arrivals: 100 wrong rows for day 4 (inside 2 days of late data) and for day 1
    for day in (4, 1):
        late = day_rows(day, 100, seed=99, start=50_000)
        drives.write(
            late.set_column(5, "corrected", late.column("predicted")).set_column(
                3, "predicted", _flip(late.column("predicted"))
            )
        )
    out = compute(signal, where)
    assert out.window.start == DAY0 + dt.timedelta(days=3)  # last bucket (5) - 2 days
    assert out.scan is not None and out.scan.files_read == 4  # days 3, 4, 5 and day 4's late file
    got = stored(where, signal)
    assert got[("", "", "", DAY0 + dt.timedelta(days=4))]["n"] == ROWS_PER_DAY + 100
    assert got[("", "", "", DAY0 + dt.timedelta(days=1))]["n"] == ROWS_PER_DAY  # outside the window

    back = compute(
        signal, where, start=DAY0 + dt.timedelta(days=1), end=DAY0 + dt.timedelta(days=2)
    )
    assert back.reason == "backfill" and back.buckets == 1
    got = stored(where, signal)
    assert got[("", "", "", DAY0 + dt.timedelta(days=1))]["n"] == ROWS_PER_DAY + 100
    assert len({k[3] for k in got}) == 6


def _flip(column: Any) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    return pc.if_else(pc.equal(column, "business"), pa.scalar("personal"), pa.scalar("business"))


def test_a_changed_definition_recomputes_the_whole_history(drives: Any, where: Any) -> None:
    ingest(drives, range(4))
    compute(BUSINESS, where)
    ingest(drives, range(4, 5))
    stricter = with_(BUSINESS, x="predicted = 'business' AND confidence >= 0.95")
    out = compute(stricter, where)
    assert out.reason == "the definition changed: the whole history"
    assert out.window.start is None and out.buckets == 5
    assert out.scan is not None and out.scan.files_read == 5
    assert {r["definition"] for r in stored(where, stricter).values()} == {stricter.digest()}


def test_each_signal_keeps_its_own_rows(drives: Any, where: Any) -> None:
    ingest(drives, range(3))
    compute(BUSINESS, where)
    compute(ACCURACY, where)
    table = values.table(where.project)
    assert {r["signal"] for r in table.read(columns=["signal"]).to_pylist()} == {
        "business-share",
        "accuracy",
    }
    assert table.version() == 1  # one commit per computation
    assert values.state(table, "business-share").buckets == 3


def test_lineage_of_a_run_names_the_dataset_version_read_and_the_values_written(
    drives: Any, where: Any
) -> None:
    from dataclasses import replace

    ingest(drives, range(2))
    run = replace(where, run_id="20250101-000000-abcd")
    out = compute(ACCURACY, run)
    events = {(e.kind, e.dataset, e.version) for e in run.lineage.run_events(run.run_id)}
    assert events == {("read", "drives", 1), ("write", "mizzen-signals", out.version)}


def test_signals_computed_at_the_same_time_all_land(tmp_path: Any) -> None:
    """Every signal's job starts on the same schedule by default: their commits to the one
    values table (one partition each) must all land."""
    import subprocess
    import sys
    from pathlib import Path

    from tests.signals.conftest import DRIVES

    from mizzen.datasets.model import DatasetSpec
    from mizzen.datasets.table import DatasetTable
    from mizzen.storage import open_store

    lake = open_store(tmp_path.as_uri())
    table = DatasetTable.open("drives", DatasetSpec.model_validate(DRIVES), lake)
    ingest(table, range(3))
    script = (
        "import sys; from dataclasses import replace\n"
        "from mizzen.datasets.model import DatasetSpec\n"
        "from mizzen.datasets.table import DatasetTable\n"
        "from mizzen.signals.compute import Where, compute\n"
        "from mizzen.storage import open_store\n"
        "from tests.signals.conftest import ACCURACY, DRIVES\n"
        "lake = open_store(sys.argv[1])\n"
        "t = DatasetTable.open('drives', DatasetSpec.model_validate(DRIVES), lake)\n"
        "print(compute(replace(ACCURACY, name=sys.argv[2]), Where(t, lake.child('project'))).version, flush=True)\n"
        "import os; os._exit(0)  # as the runner ends (delta-rs' threads can abort a teardown)\n"
    )
    root = Path(__file__).resolve().parents[2]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, tmp_path.as_uri(), f"s{i}"],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(4)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], outs
    assert sorted(int(o.strip().splitlines()[-1]) for o, _ in outs) == [0, 1, 2, 3]
    names = {
        r["signal"]
        for r in values.table(lake.child("project")).read(columns=["signal"]).to_pylist()
    }
    assert names == {"s0", "s1", "s2", "s3"}


def test_the_values_table_is_tidied_every_twenty_commits(drives: Any, where: Any) -> None:
    ingest(drives, range(2))
    for i in range(20):
        compute(ACCURACY, where, start=DAY0, end=DAY0 + dt.timedelta(days=1 + i % 2))
    table = values.table(where.project)
    assert table.version() == 19
    logs = [i.key for i in where.project.list("signals/values/_delta_log")]
    assert not any(k.endswith(".checkpoint.parquet") for k in logs)
    compute(ACCURACY, where, start=DAY0, end=DAY0 + dt.timedelta(days=1))
    logs = [i.key for i in where.project.list("signals/values/_delta_log")]
    assert any(k.endswith("00020.checkpoint.parquet") for k in logs), logs
    assert len(stored(where, ACCURACY)) == 2 * 3  # and nothing was lost
