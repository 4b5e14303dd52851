"""`mizzen data …` on real Delta tables: a local folder and SeaweedFS (S3, with the store's
credentials from a secret), the spec compiled as the commands compile it."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from mizzen.cli.main import main

pa = pytest.importorskip("pyarrow")
pytest.importorskip("deltalake")

SUBJECT = "987654321987"  # valid for string and long subject columns; cannot occur by chance
TODAY = datetime.now(UTC).date()
BASE = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: cli
%(stores)s
store: lake
environments: {dev: {}}
datasets:
  trips:
    location: lake/tables/trips
    schema:
      driver_id: {type: string, nullable: false}
      day: date
      km: double
      email: string
    subject: driver_id
    personal: [email]
    partitionBy: [day]
    retain: {column: day, duration: 30d}
    owner: data-team@example.com
    description: One row per trip.
  features:
    location: lake/tables/features
    schema: {driver_id: {type: string, nullable: false}, trips: long}
    subject: driver_id
    timeTravel: %(window)s
  payments:
    location: lake/tables/payments
    schema: {driver_no: {type: long, nullable: false}, eur: double}
    subject: driver_no
  raw:
    location: lake/tables/raw
    schema: {line: string}
"""
LOCAL_STORES = "stores: {lake: data/lake}"
S3_STORES = """\
stores:
  lake: {url: "%(url)s", options: {endpoint_url: "%(endpoint)s"}, secret: lake-creds}
secrets:
  lake-creds: [access_key_id, secret_access_key]"""


def mizzen(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    captured = capsys.readouterr()
    return int(info.value.code or 0), captured.out, captured.err


def trips(drivers: list[str], days: list[Any] | None = None) -> Any:
    n = len(drivers)
    return pa.table(
        {
            "driver_id": pa.array(drivers, pa.string()),
            "day": pa.array(days or [TODAY] * n, pa.date32()),
            "km": pa.array([float(i) for i in range(n)]),
            "email": pa.array([f"{d}@example.com" for d in drivers]),
        }
    )


class Project:
    def __init__(self, root: Path, env: dict[str, str]) -> None:
        self.root = root
        self.env = env  # the store's credentials, as a pod gets them

    def plan(self) -> Any:
        from mizzen import spec
        from mizzen.plan import compile_plan

        return compile_plan(spec.load(self.root / "mizzen.yaml", "dev"), "local")

    def catalog(self) -> Any:
        from mizzen.datasets.jobs import catalog_for

        return catalog_for(self.plan())

    def rows(self, name: str, version: int | None = None) -> list[Any]:
        table = self.catalog().table(name)
        column = table.spec.subject or next(iter(table.spec.columns))
        return sorted(table.read(version=version).column(column).to_pylist(), key=str)

    def audit_bytes(self) -> bytes:
        store = self.catalog().project
        return b"".join(store.read_bytes(i.key) for i in store.list("datasets/audit"))


def make_project(
    tmp_path: Path,
    kind: str = "local",
    request: pytest.FixtureRequest | None = None,
    window: str = "7d",
) -> Project:
    """A project whose datasets live in a local folder or on SeaweedFS."""
    env: dict[str, str] = {}
    if kind == "s3":
        assert request is not None
        server = request.getfixturevalue("seaweedfs")
        stores = S3_STORES % {"url": server.new_bucket() + "/proj", "endpoint": server.endpoint}
        env = {
            "MIZZEN_SECRET_LAKE_CREDS_ACCESS_KEY_ID": server.access_key,
            "MIZZEN_SECRET_LAKE_CREDS_SECRET_ACCESS_KEY": server.secret_key,
        }
        secrets = tmp_path / ".mizzen" / "secrets"
        secrets.mkdir(parents=True)
        (secrets / "dev.env").write_text("".join(f"{k}={v}\n" for k, v in env.items()))
    else:
        stores = LOCAL_STORES
    tmp_path.mkdir(exist_ok=True)
    (tmp_path / "mizzen.yaml").write_text(BASE % {"stores": stores, "window": window})
    return Project(tmp_path, env)


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """An empty project on a local folder, the current directory."""
    proj = make_project(tmp_path)
    monkeypatch.chdir(proj.root)
    return proj


def damage(proj: Project, name: str) -> None:
    """Make the table's second log entry unreadable, as a broken write or disk would."""
    log = proj.root / "data" / "lake" / "tables" / name / "_delta_log"
    (log / "00000000000000000001.json").write_text("{not json\n")


@pytest.fixture(params=["local", pytest.param("s3", marks=pytest.mark.s3)])
def seeded(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Project:
    """Three datasets holding SUBJECT (two versions of trips), one without a subject, a run
    that wrote trips@0, a run that read it and published model clf@1 trained on it."""
    proj = make_project(tmp_path, request.param, request)
    monkeypatch.chdir(proj.root)
    catalog = proj.catalog()
    catalog.table("trips").write(
        trips([SUBJECT, "111", SUBJECT]), run_id="r-ingest", workload="ingest"
    )
    catalog.lineage.record_write("r-ingest", "trips", 0, "ingest")
    catalog.lineage.finish_run("r-ingest")
    catalog.table("trips").write(trips([SUBJECT, "222"]))
    catalog.table("features").write(pa.table({"driver_id": [SUBJECT, "111"], "trips": [3, 1]}))
    catalog.table("payments").write(
        pa.table({"driver_no": pa.array([int(SUBJECT), 5], pa.int64()), "eur": [9.5, 3.0]})
    )
    catalog.table("raw").write(pa.table({"line": ["x"]}))
    catalog.lineage.record_read("r-train", "trips", 0, "train")
    catalog.lineage.finish_run("r-train")
    catalog.lineage.record_model("clf", 1, run_id="r-train")
    return proj


def files_holding(table: Any, value: str) -> list[str]:
    import pyarrow.parquet as pq

    store = table.location.store
    found = []
    for info in store.list(table.location.key):
        if info.key.endswith(".parquet") and "_delta_log" not in info.key:
            data = pq.read_table(io.BytesIO(store.read_bytes(info.key)))
            if value in [str(v) for v in data.column(table.spec.subject).to_pylist()]:
                found.append(info.key)
    return found


# --- forget ------------------------------------------------------------------------------------
def test_forget_dry_run_counts_then_apply_erases_everywhere_and_audits_without_the_id(
    seeded: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = mizzen(capsys, "data", "forget", SUBJECT, "--env", "dev", "-o", "json")
    assert code == 0, err
    dry = json.loads(out)
    assert dry["dry_run"] is True and dry["applied"] is False and dry["audit_id"] is None
    assert {d["dataset"]: d["rows"] for d in dry["datasets"]} == {
        "trips": 3,
        "features": 1,
        "payments": 1,
    }
    assert dry["rows"] == 5 and dry["without_subject"] == ["raw"]
    assert [
        (m["model"], m["version"], m["dataset"], m["dataset_version"], m["contained"])
        for m in dry["models"]
    ] == [("clf", 1, "trips", 0, True)]
    assert SUBJECT not in out
    assert seeded.rows("trips").count(SUBJECT) == 3  # nothing changed
    assert seeded.audit_bytes() == b""

    code, out, err = mizzen(capsys, "data", "forget", SUBJECT, "--env", "dev")
    assert code == 0
    assert "dry run: nothing was changed" in out
    assert "total: 5 rows to remove in 3 of 3 dataset(s)" in out
    assert "not covered (no subject: column): raw" in out
    assert "clf@1  trained on trips@0: held the subject" in out
    assert (
        "--apply would delete these 5 rows as one new version each of trips, features and payments"
        in out
    )
    assert SUBJECT not in out + err

    code, out, err = mizzen(
        capsys,
        "data",
        "forget",
        SUBJECT,
        "--env",
        "dev",
        "--apply",
        "--now",
        "--reason",
        "ticket 9",
    )
    assert code == 0, err
    assert "erased 5 rows" in out and "removed now" in out
    [audit_id] = [line.split()[2] for line in out.splitlines() if line.startswith("audit record")]
    assert SUBJECT not in out + err
    for name in ("trips", "features", "payments"):
        assert [str(v) for v in seeded.rows(name)].count(SUBJECT) == 0
    assert seeded.rows("trips") == ["111", "222"] and seeded.rows("payments") == [5]
    catalog = seeded.catalog()
    for name in ("trips", "features", "payments"):
        assert files_holding(catalog.table(name), SUBJECT) == []  # no version keeps them
    from mizzen.datasets.errors import DatasetNotFound

    with pytest.raises(DatasetNotFound):
        seeded.rows("trips", version=0)

    assert SUBJECT.encode() not in seeded.audit_bytes()
    code, out, _ = mizzen(capsys, "data", "audit", "--env", "dev", "-o", "json")
    [record] = json.loads(out)
    assert record["id"] == audit_id and record["kind"] == "forget"
    assert record["reason"] == "ticket 9" and record["subject"] == dry["subject"]
    assert {d["dataset"]: d["rows"] for d in record["datasets"]} == {
        "trips": 3,
        "features": 1,
        "payments": 1,
    }
    code, out, _ = mizzen(capsys, "data", "audit", "--env", "dev", "--subject", SUBJECT)
    assert code == 0 and audit_id in out and dry["subject"][:16] in out
    assert "trips: 3, features: 1, payments: 1" in out and SUBJECT not in out
    code, out, _ = mizzen(capsys, "data", "audit", "--env", "dev", "--subject", "111")
    assert "no audit records match" in out

    code, out, _ = mizzen(capsys, "data", "forget", SUBJECT, "--env", "dev", "-o", "json")
    assert json.loads(out)["rows"] == 0  # erased: a second dry run finds nothing


def test_a_subject_that_cannot_be_the_columns_type_is_exit_2_and_changes_nothing(
    local: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    proj = local
    catalog = proj.catalog()
    catalog.table("trips").write(trips(["d-17", "d-18"]))
    catalog.table("payments").write(
        pa.table({"driver_no": pa.array([17], pa.int64()), "eur": [1.0]})
    )
    for bad in ("d-17", "1_000", "99999999999999999999", "١٢"):
        code, out, err = mizzen(capsys, "data", "forget", bad, "--apply", "--now")
        assert code == 2, (bad, out, err)
        assert "payments.driver_no is long" in err and "nothing was removed" in err
        assert bad not in out + err  # the id is not echoed
    assert proj.rows("trips") == ["d-17", "d-18"] and proj.rows("payments") == [17]
    assert proj.audit_bytes() == b""


def test_the_subject_can_come_from_an_environment_variable(
    seeded: Project, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ERASE_ID", SUBJECT)
    code, out, _ = mizzen(
        capsys, "data", "forget", "--subject-from-env", "ERASE_ID", "--env", "dev", "-o", "json"
    )
    assert code == 0 and json.loads(out)["rows"] == 5
    code, _, err = mizzen(capsys, "data", "forget", "--subject-from-env", "NOT_SET_HERE")
    assert code == 2 and "NOT_SET_HERE: the variable is not set" in err
    code, _, err = mizzen(capsys, "data", "forget", "x", "--subject-from-env", "ERASE_ID")
    assert code == 2 and "not both" in err
    code, _, err = mizzen(capsys, "data", "forget")
    assert code == 2 and "forget needs the subject id" in err


def test_a_dry_run_says_of_old_versions_what_apply_then_does(
    seeded: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    """A subject no dataset holds: what is left to compact is the same answer either way."""
    answers = []
    for apply in ([], ["--apply"]):
        code, out, err = mizzen(
            capsys, "data", "forget", "424242", "--env", "dev", "-o", "json", *apply
        )
        assert code == 0, err
        answers.append([(d["dataset"], d["compaction"]) for d in json.loads(out)["datasets"]])
    assert answers[0] == answers[1]
    # features and payments have one version: none can hold the subject (trips has two)
    assert dict(answers[0]) == {"trips": "pending", "features": "none", "payments": "none"}


def test_forget_within_the_window_is_pending_until_maintain_completes_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    proj = make_project(tmp_path, window="1s")
    monkeypatch.chdir(proj.root)
    table = proj.catalog().table("features")
    table.write(pa.table({"driver_id": [SUBJECT, "111"], "trips": [3, 1]}))
    table.write(pa.table({"driver_id": ["222"], "trips": [2]}))
    code, out, err = mizzen(capsys, "data", "forget", SUBJECT, "--apply")
    assert code == 0, err
    assert "readable until" in out and "the maintenance job (mizzen data maintain)" in out
    [audit_id] = [line.split()[2] for line in out.splitlines() if line.startswith("audit record")]
    assert files_holding(table, SUBJECT)  # still in the old version, inside its window
    time.sleep(2.5)
    code, first, err = mizzen(capsys, "data", "maintain")
    assert code == 0, err
    assert "maintained 4 dataset(s)" in first and "features: 1 old file(s) removed" in first
    assert files_holding(table, SUBJECT) == []
    time.sleep(2.5)
    code, second, _ = mizzen(capsys, "data", "maintain", "-o", "json")
    done = json.loads(second)
    completed = done["completed_erasures"] + (
        [audit_id] if f"erasure    {audit_id}: complete" in first else []
    )
    assert completed == [audit_id] and done["ok"] is True and done["pending_erasures"] == []
    code, out, _ = mizzen(capsys, "data", "audit", "--kind", "forget-compacted", "-o", "json")
    assert [r["completes"] for r in json.loads(out)] == [audit_id]


# --- list, show, lineage ----------------------------------------------------------------------
def test_list_and_show_versions_schema_and_time_travel(
    seeded: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = mizzen(capsys, "data", "list", "--env", "dev", "-o", "json")
    assert code == 0, err
    listed = {r["name"]: r for r in json.loads(out)}
    assert list(listed) == ["trips", "features", "payments", "raw"]
    trips_row = listed["trips"]
    assert (trips_row["version"], trips_row["rows"], trips_row["subject"]) == (1, 5, "driver_id")
    assert trips_row["bytes"] > 0 and trips_row["owner"] == "data-team@example.com"
    assert trips_row["retain"] == {"column": "day", "duration": "30d"}
    code, out, _ = mizzen(capsys, "data", "list", "--env", "dev")
    lines = out.splitlines()
    assert lines[0].split("\t") == [
        "NAME",
        "LOCATION",
        "VERSION",
        "ROWS",
        "SIZE",
        "SUBJECT",
        "RETAIN",
        "OWNER",
    ]
    assert lines[1].split("\t")[:4] == ["trips", "lake/tables/trips", "1", "5"]
    assert lines[1].split("\t")[5:] == ["driver_id", "day older than 30d", "data-team@example.com"]

    code, out, _ = mizzen(capsys, "data", "show", "trips", "--env", "dev", "-o", "json")
    shown = json.loads(out)
    assert (shown["version"], shown["current"]) == (1, 1)
    columns = {c["name"]: c for c in shown["columns"]}
    assert columns["driver_id"]["subject"] and not columns["driver_id"]["nullable"]
    assert (
        columns["email"]["personal"] and columns["day"]["partition"] and columns["day"]["retention"]
    )
    assert [(v["version"], v["rows"], v["run_id"]) for v in shown["versions"]] == [
        (1, 5, None),
        (0, 3, "r-ingest"),
    ]
    code, out, _ = mizzen(capsys, "data", "show", "trips@0", "--env", "dev")
    assert code == 0 and out.startswith("trips @ version 0 (current: 1)")
    assert "WRITE · run r-ingest (ingest) · 3 rows" in out
    assert "driver_id\tstring\tno\tsubject" in out and "email\tstring\tyes\tpersonal" in out
    assert "day\tdate\tyes\tpartition, retention" in out
    code, out, _ = mizzen(capsys, "data", "show", "trips", "--limit", "1", "--env", "dev")
    assert "older versions not listed" in out
    code, _, err = mizzen(capsys, "data", "show", "tripz", "--env", "dev")
    assert code == 2 and "did you mean 'trips'?" in err
    code, _, err = mizzen(capsys, "data", "show", "trips@7", "--env", "dev")
    assert code == 2 and "no version 7" in err
    code, _, err = mizzen(capsys, "data", "show", "trips@2020-01-01T00:00:00Z", "--env", "dev")
    assert code == 2 and "has no version as of 2020-01-01T00:00:00+00:00" in err
    now = datetime.now(UTC).isoformat()
    code, out, _ = mizzen(capsys, "data", "show", f"trips@{now}", "--env", "dev", "-o", "json")
    assert code == 0 and json.loads(out)["version"] == 1
    code, _, err = mizzen(capsys, "data", "show", "trips@yesterday", "--env", "dev")
    assert code == 2 and "expected a version number" in err


def test_schema_evolution_and_a_later_version_show_what_changed(
    local: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    proj = local
    table = proj.catalog().table("features")
    table.write(pa.table({"driver_id": ["a"], "trips": [1]}))
    table.write(pa.table({"driver_id": ["b"], "trips": [2], "tip_eur": [1.5]}))
    code, out, _ = mizzen(capsys, "data", "show", "features")
    assert "tip_eur\tdouble\tyes\tnot declared: added by compatible evolution" in out
    assert "features.tip_eur: new nullable column (double) not in the spec" in out
    code, out, _ = mizzen(capsys, "data", "show", "features@0")
    assert code == 0 and "tip_eur" not in out.split("\nversions")[0]


def test_lineage_both_ways_from_a_dataset_a_model_and_a_run(
    seeded: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    lineage = seeded.catalog().lineage
    lineage.record_write("r-train", "features", 0, "train")
    code, out, err = mizzen(capsys, "data", "lineage", "trips@0", "--env", "dev")
    assert code == 0, err
    assert out.splitlines() == [
        "trips@0",
        "  fed:",
        "  ├─ trained model clf@1",
        "  └─ read by run r-train (train)",
        "     ├─ wrote features@0",
        "     └─ published model clf@1  (shown above)",
        "  came from:",
        "  └─ written by run r-ingest (ingest)",
    ]
    code, out, _ = mizzen(capsys, "data", "lineage", "model:clf@1", "--env", "dev")
    assert out.splitlines() == [
        "model clf@1",
        "  fed: nothing recorded",
        "  came from:",
        "  ├─ trained on trips@0",
        "  │  └─ written by run r-ingest (ingest)",
        "  └─ published by run r-train (train)",
        "     └─ read trips@0  (shown above)",
    ]
    code, out, _ = mizzen(capsys, "data", "lineage", "run:r-train", "--env", "dev", "-o", "json")
    graph = json.loads(out)
    assert graph["start"] == ["run:r-train"]
    assert {n["id"] for n in graph["downstream"]["nodes"]} == {
        "run:r-train",
        "dataset:features@0",
        "model:clf@1",
    }
    assert {(e["source"], e["target"], e["relation"]) for e in graph["upstream"]["edges"]} == {
        ("run:r-ingest", "dataset:trips@0", "wrote"),
        ("dataset:trips@0", "run:r-train", "read"),
    }
    code, out, _ = mizzen(capsys, "data", "lineage", "payments", "--env", "dev")
    assert code == 0 and "no lineage recorded for payments" in out
    code, _, err = mizzen(capsys, "data", "lineage", "paymnts", "--env", "dev")
    assert code == 2 and "did you mean 'payments'?" in err
    code, _, err = mizzen(capsys, "data", "lineage", "trips@2026-01-01", "--env", "dev")
    assert code == 2 and "by version number" in err


# --- retention and maintain -------------------------------------------------------------------
def test_retention_dry_run_counts_then_apply_deletes_and_audits(
    seeded: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    old = TODAY - timedelta(days=45)
    seeded.catalog().table("trips").write(trips(["333", "444"], days=[old, old]))
    code, out, _ = mizzen(capsys, "data", "retention", "--env", "dev")
    assert code == 0 and "dry run: nothing was changed" in out
    cutoff = (TODAY - timedelta(days=30)).isoformat()
    assert f"trips\tday\t30d\tbefore {cutoff}\t2" in out
    assert "no retain: (kept until deleted): features, payments, raw" in out
    assert len(seeded.rows("trips")) == 7
    code, out, _ = mizzen(capsys, "data", "retention", "--env", "dev", "--apply", "-o", "json")
    result = json.loads(out)
    assert result["dry_run"] is False and result["ok"] is True
    [trips_result] = result["datasets"]
    assert (trips_result["rows_removed"], trips_result["version"]) == (2, 3)
    assert "333" not in seeded.rows("trips")
    code, out, _ = mizzen(capsys, "data", "audit", "--env", "dev", "--kind", "retention")
    assert "retention" in out and "trips: 2" in out and f"day < {cutoff}" in out


def test_maintain_reports_a_failing_dataset_and_still_maintains_the_others(
    local: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    proj = local
    catalog = proj.catalog()
    old = TODAY - timedelta(days=45)
    catalog.table("trips").write(trips(["1", "2"], days=[old, TODAY]))
    catalog.table("features").write(pa.table({"driver_id": ["a"], "trips": [1]}))
    catalog.table("features").write(pa.table({"driver_id": ["b"], "trips": [2]}))
    damage(proj, "features")
    code, out, err = mizzen(capsys, "data", "maintain")
    assert code == 1
    assert "retention  trips: 1 row with day before" in out  # the others were maintained
    assert "error: features: vacuum:" in err
    assert proj.rows("trips") == ["2"]


# --- in a pod: the datasets come from the run-time contract -----------------------------------
@pytest.mark.parametrize("store_kind", ["local", pytest.param("s3", marks=pytest.mark.s3)])
def test_maintain_and_forget_in_a_pod_use_the_contract_not_the_spec(
    store_kind: str,
    request: pytest.FixtureRequest,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from mizzen import contract

    proj = make_project(tmp_path / "project", store_kind, request)
    plan = proj.plan()
    catalog = proj.catalog()
    catalog.table("trips").write(trips([SUBJECT, "111"]))
    catalog.table("payments").write(pa.table({"driver_no": pa.array([int(SUBJECT)]), "eur": [1.0]}))
    datasets = {
        d.name: {"store": d.store.name, "path": d.path, "spec": d.spec}
        for d in plan.datasets.values()
    }
    stores = {
        d.store.name: {"url": d.store.url, "options": d.store.options, "secret": d.store.secret}
        for d in plan.datasets.values()
    }
    assert plan.store is not None
    pod_env = {
        **contract.datasets_var(datasets, stores, list(datasets), [], every=True),
        **contract.store_vars(plan.store.url, plan.store.options, plan.store.secret),
        contract.ENV: "dev",
        "ERASE_ID": SUBJECT,
        **proj.env,
    }
    for key, value in pod_env.items():
        monkeypatch.setenv(key, value)
    pod = tmp_path / "pod"  # no mizzen.yaml, no secrets file: only the contract
    pod.mkdir()
    monkeypatch.chdir(pod)
    # a job given only some datasets may not erase: it would miss the others
    some = contract.datasets_var({"trips": datasets["trips"]}, stores, ["trips"], [])
    monkeypatch.setenv(contract.DATASETS, some[contract.DATASETS])
    code, out, err = mizzen(
        capsys, "data", "forget", "--subject-from-env", "ERASE_ID", "--apply", "--now"
    )
    assert code == 2 and "must see every dataset of the project" in err, err
    assert sorted(proj.rows("trips")) == sorted([SUBJECT, "111"])
    monkeypatch.setenv(contract.DATASETS, pod_env[contract.DATASETS])
    code, out, err = mizzen(
        capsys, "data", "forget", "--subject-from-env", "ERASE_ID", "--apply", "--now"
    )
    assert code == 0, err
    assert "erased 2 rows" in out and SUBJECT not in out + err
    code, out, err = mizzen(capsys, "data", "maintain")
    assert code == 0, err
    assert "maintained 4 dataset(s) from the run-time contract (MIZZEN_DATASETS)" in out
    monkeypatch.chdir(proj.root)
    for key in pod_env:
        monkeypatch.delenv(key)
    assert proj.rows("trips") == ["111"] and proj.rows("payments") == []
    code, out, _ = mizzen(capsys, "data", "audit", "--env", "dev", "-o", "json")
    assert [r["kind"] for r in json.loads(out)] == ["forget"]  # in the project's own store


def test_data_commands_load_only_on_demand() -> None:
    probe = (
        "import atexit, sys\n"
        "atexit.register(lambda: print(sorted(m for m in ('mizzen.cli.data_cmds', 'deltalake', "
        "'pyarrow') if m in sys.modules), file=sys.stderr))\n"
        "from mizzen.cli.main import main\n"
        "sys.argv = ['mizzen', *sys.argv[1:]]\n"
        "main()\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MIZZEN_")}
    top = subprocess.run(
        [sys.executable, "-c", probe, "--help"], capture_output=True, text=True, env=env
    )
    assert "data " in top.stdout and top.stderr.strip().splitlines()[-1] == "[]"
    group = subprocess.run(
        [sys.executable, "-c", probe, "data", "--help"], capture_output=True, text=True, env=env
    )
    assert "forget" in group.stdout
    assert group.stderr.strip().splitlines()[-1] == "['mizzen.cli.data_cmds']"


def test_forget_reads_every_dataset_before_changing_any(
    local: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    proj = local
    catalog = proj.catalog()
    catalog.table("trips").write(trips([SUBJECT, "111"]))
    catalog.table("features").write(pa.table({"driver_id": [SUBJECT], "trips": [1]}))
    catalog.table("features").write(pa.table({"driver_id": ["b"], "trips": [2]}))
    damage(proj, "features")
    code, out, err = mizzen(capsys, "data", "forget", SUBJECT, "--apply", "--now")
    assert code == 1
    assert "dataset 'features' cannot be read" in err and "nothing was removed" in err
    assert SUBJECT not in out + err
    assert proj.rows("trips") == ["111", SUBJECT]  # untouched
    assert proj.audit_bytes() == b""
