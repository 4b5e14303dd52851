"""The shared datasets suite: every test runs on a local folder, SeaweedFS and Azurite."""

from __future__ import annotations

import io
import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from tests.datasets.conftest import TRIPS

from mizzen.datasets.catalog import Catalog, commit_outputs
from mizzen.datasets.errors import ContractViolation, DatasetNotFound
from mizzen.datasets.maintenance import AuditLog, apply_retention, forget, maintain
from mizzen.datasets.model import DatasetSpec
from mizzen.datasets.table import DatasetTable

TODAY = datetime.now(UTC).date()


def trips(
    drivers: list[str | None], days: list[date] | None = None, km: list[object] | None = None
) -> pa.Table:
    n = len(drivers)
    return pa.table(
        {
            "driver_id": pa.array(drivers, pa.string()),
            "day": pa.array(days or [TODAY] * n, pa.date32()),
            "distance_km": pa.array(km or [float(i) for i in range(n)]),
            "email": pa.array([f"{d}@example.com" for d in drivers], pa.string()),
        }
    )


def files_holding(table: DatasetTable, value: str) -> list[str]:
    """Every Parquet file in the table's folder (any version's) that holds `value`."""
    store = table.location.store
    assert store is not None
    found = []
    for info in store.list(table.location.key):
        if info.key.endswith(".parquet") and "_delta_log" not in info.key:
            data = pq.read_table(io.BytesIO(store.read_bytes(info.key)))
            if value in data.column("driver_id").to_pylist():
                found.append(info.key)
    return found


def test_writes_are_versions_readable_by_number_and_time(catalog: Catalog) -> None:
    table = catalog.table("trips")
    assert table.version() is None
    first = table.write(trips(["d1", "d2"]), run_id="run-1", workload="ingest")
    time.sleep(1.2)  # object stores keep commit times to the second
    between = datetime.now(UTC)
    time.sleep(1.2)
    table.write(trips(["d3"]))
    table.write(trips(["d4"]), mode="overwrite")
    assert first.version == 0 and table.version() == 2
    assert table.read().column("driver_id").to_pylist() == ["d4"]
    assert sorted(table.read(version=1).column("driver_id").to_pylist()) == ["d1", "d2", "d3"]
    assert table.read(as_of=between).num_rows == 2
    versions = table.versions()
    assert [(v.version, v.rows) for v in versions] == [(2, 1), (1, 3), (0, 2)]
    assert all(v.bytes and v.bytes > 0 for v in versions)
    assert versions[-1].run_id == "run-1" and versions[-1].workload == "ingest"
    assert table.schema(0).field("driver_id").nullable is False
    with pytest.raises(DatasetNotFound, match="no version 9"):
        table.read(version=9)


def test_a_contract_violation_commits_nothing(catalog: Catalog) -> None:
    table = catalog.table("trips")
    table.write(trips(["d1", "d2"]))
    with pytest.raises(ContractViolation) as info:
        table.write(trips(["d3", None, None], km=["1", "2", "3"]))
    assert info.value.reasons == [
        "trips.distance_km: expected double, got string",
        "trips.driver_id: 2 nulls in a non-nullable column",
    ]
    # a stream whose nulls come in a later batch is refused as well, before the commit
    good, bad = trips(["d4"]).to_batches()[0], trips([None]).to_batches()[0]
    stream = pa.RecordBatchReader.from_batches(good.schema, iter([good, bad]))
    with pytest.raises(ContractViolation, match="1 null in a non-nullable column"):
        table.write(stream)
    assert table.version() == 0
    assert sorted(table.read().column("driver_id").to_pylist()) == ["d1", "d2"]


def test_staged_output_is_checked_from_its_footers_then_committed(
    catalog: Catalog, tmp_path: Path
) -> None:
    table = catalog.table("trips")
    table.write(trips(["d1"]))
    store = table.location.store
    assert store is not None

    def stage(run_id: str, data: pa.Table) -> None:
        local = tmp_path / f"{run_id}.parquet"
        pq.write_table(data, local)
        store.put_file(str(local), table.staging(run_id).key + "/part-0.parquet")
        store.write_bytes(table.staging(run_id).key + "/_SUCCESS", b"")

    stage("run-bad", trips(["d2", None], km=["x", "y"]))
    report = table.check_staged("run-bad")
    assert report.reasons() == [
        "trips.distance_km: expected double, got string",
        "trips.driver_id: 1 null in a non-nullable column",
    ]
    with pytest.raises(ContractViolation):
        commit_outputs(catalog, "run-bad", ["trips"])
    assert table.version() == 0 and not table.staged_files("run-bad")

    stage("run-ok", trips(["d2", "d3"]))
    [result] = commit_outputs(catalog, "run-ok", ["trips", "features"], workload="etl")
    assert result.version == 1 and result.rows == 2
    assert sorted(table.read().column("driver_id").to_pylist()) == ["d1", "d2", "d3"]
    assert not table.staged_files("run-ok")
    assert [e.kind for e in catalog.lineage.run_events("run-ok")] == ["write"]


def test_compatible_evolution_is_recorded_anything_else_needs_the_spec(catalog: Catalog) -> None:
    table = catalog.table("trips")
    table.write(trips(["d1"]))
    wider = trips(["d2"]).append_column("tip_eur", pa.array([1.5]))
    result = table.write(wider)
    assert [c.column for c in result.report.changes] == ["tip_eur"]
    assert "tip_eur" in table.schema().names
    assert any("tip_eur" in c for c in table.versions()[0].changes)
    table.write(trips(["d3"]))  # later writes may leave the new column out
    assert table.read().column("tip_eur").null_count == 2

    strict = trips(["d4"]).append_column(
        pa.field("code", pa.string(), nullable=False), pa.array(["x"])
    )
    with pytest.raises(ContractViolation, match="declare it under schema:"):
        table.write(strict)

    changed = DatasetSpec.model_validate(
        {**TRIPS, "schema": {**TRIPS["schema"], "distance_km": "string"}}
    )
    retyped = DatasetTable(table.name, changed, table.location)
    data = trips(["d5"], km=["far"])
    with pytest.raises(ContractViolation, match="the table stores double, the spec says string"):
        retyped.write(data)
    assert table.version() == 2
    retyped.write(data, mode="overwrite")
    assert retyped.schema().field("distance_km").type == pa.string()


def test_retention_deletes_old_rows_and_is_audited(catalog: Catalog) -> None:
    table = catalog.table("trips")
    old = TODAY - timedelta(days=45)
    table.write(trips(["d1", "d2", "d3"], days=[old, old, TODAY]))
    [dry] = [r for r in apply_retention(catalog, dry_run=True) if r.dataset == "trips"]
    assert dry.rows_removed == 2 and table.read().num_rows == 3
    [result] = [r for r in apply_retention(catalog) if r.dataset == "trips"]
    assert result.rows_removed == 2 and result.version == 1
    assert table.read().column("driver_id").to_pylist() == ["d3"]
    [audit] = AuditLog(catalog.project).list("retention")
    assert audit["datasets"][0]["rows_removed"] == 2


def test_forget_now_removes_the_subject_everywhere_and_its_old_versions(
    catalog: Catalog,
) -> None:
    trips_t, features = catalog.table("trips"), catalog.table("features")
    trips_t.write(trips(["alice-01", "d2", "alice-01"]))
    trips_t.write(trips(["alice-01", "d3"]))
    features.write(pa.table({"driver_id": ["alice-01", "d2"], "trips": [3, 1]}))
    reader = catalog.handle("trips", run_id="train-1", workload="train")
    assert reader.duckdb().filter("driver_id = 'alice-01'").aggregate("count(*)").fetchall() == [
        (3,)
    ]
    catalog.lineage.record_model("drive-classifier", 1, run_id="train-1")

    dry = forget(catalog, "alice-01")
    assert {d.dataset: d.rows for d in dry.datasets} == {"trips": 3, "features": 1}
    assert [(m.model, m.dataset_version, m.contained) for m in dry.models] == [
        ("drive-classifier", 1, True)
    ]
    assert trips_t.version() == 1 and not AuditLog(catalog.project).list()

    done = forget(catalog, "alice-01", apply=True, now=True, reason="request 42")
    assert done.rows == 4 and all(d.compaction == "done" for d in done.datasets)
    assert "alice-01" not in trips_t.read().column("driver_id").to_pylist()
    assert features.read().column("driver_id").to_pylist() == ["d2"]
    for table in (trips_t, features):
        assert files_holding(table, "alice-01") == []  # no version, current or old, still has them
    with pytest.raises(DatasetNotFound):
        trips_t.read(version=0)
    [record] = AuditLog(catalog.project).list("forget")
    assert record["subject"] == done.subject and record["reason"] == "request 42"
    assert record["models"][0]["model"] == "drive-classifier"
    for info in catalog.project.list("datasets/audit"):
        assert b"alice-01" not in catalog.project.read_bytes(info.key)
    assert forget(catalog, "alice-01").rows == 0


def test_forget_within_the_time_travel_window_is_pending(catalog: Catalog) -> None:
    table = catalog.table("trips")
    table.write(trips(["d1", "d2"]))
    report = forget(catalog, "d1", apply=True)
    [entry] = [d for d in report.datasets if d.dataset == "trips"]
    assert entry.rows == 1 and entry.compaction == "pending"
    assert entry.compact_after == pytest.approx(time.time() + 7 * 86400, abs=60)
    assert table.read().column("driver_id").to_pylist() == ["d2"]
    assert "d1" in table.read(version=0).column("driver_id").to_pylist()  # still in the window
    assert maintain(catalog).completed_erasures == []  # the window has not passed


def test_concurrent_writers_all_land(catalog: Catalog) -> None:
    table = catalog.table("features")
    table.write(pa.table({"driver_id": ["d0"], "trips": [0]}))
    errors: list[BaseException] = []

    def writer(i: int) -> None:
        try:
            for j in range(3):
                table.write(pa.table({"driver_id": [f"d{i}-{j}"], "trips": [j]}))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert table.version() == 9 and table.read().num_rows == 10


def test_handle_records_lineage_and_gives_arrow_and_duckdb(catalog: Catalog) -> None:
    catalog.table("trips").write(trips(["d1", "d2"]))
    handle = catalog.handle("trips", run_id="r-7", workload="report")
    assert handle.path == catalog.table("trips").uri
    assert handle.arrow().count_rows() == 2
    assert handle.to_table(columns=["driver_id"]).num_columns == 1
    out = catalog.handle("features", run_id="r-7", workload="report")
    assert out.write(pa.table({"driver_id": ["d1"], "trips": [2]})).version == 0
    catalog.lineage.finish_run("r-7")
    graph = catalog.lineage.downstream("trips@0")
    assert {n.id for n in graph.nodes.values()} == {
        "dataset:trips@0",
        "run:r-7",
        "dataset:features@0",
    }
    assert graph.nodes["run:r-7"].complete


def test_maintain_completes_an_erasure_once_the_window_has_passed(catalog: Catalog) -> None:
    short = DatasetSpec.model_validate({**TRIPS, "timeTravel": "1s"})
    catalog.specs["trips"] = short
    catalog._tables.clear()
    table = catalog.table("trips")
    table.write(trips(["bob-22", "d2"]))
    table.write(trips(["d3"]))
    report = forget(catalog, "bob-22", apply=True)
    [entry] = [d for d in report.datasets if d.dataset == "trips"]
    assert entry.compaction == "pending" and files_holding(table, "bob-22")
    time.sleep(2.5)
    first = maintain(catalog)  # files past the window go; the log needs an aged checkpoint
    assert files_holding(table, "bob-22") == []
    with pytest.raises(DatasetNotFound, match="no longer readable"):
        table.read(version=0)
    time.sleep(2.5)
    done = maintain(catalog)
    # complete once the log holds nothing older than the erasure: at the first maintain when
    # a checkpoint older than the window already existed, else at the next one; never twice
    assert first.completed_erasures + done.completed_erasures == [report.audit_id]
    assert table.oldest_version() is not None and table.oldest_version() > 2
    assert sorted(table.read().column("driver_id").to_pylist()) == ["d2", "d3"]
    assert maintain(catalog).completed_erasures == []  # recorded once
