"""Run listing stays cheap with many runs: finished runs are read once, then come from the index."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from mizzen.storage import Store
from mizzen.storage.runs import RunRecord, RunStore, new_run_id


def counting(store: Store) -> Counter[str]:
    reads: Counter[str] = Counter()
    real = store.read_bytes

    def read_bytes(key: str) -> bytes:
        reads[
            "run.json"
            if key.endswith("/run.json")
            else "index"
            if key.startswith("_index/")
            else "other"
        ] += 1
        return real(key)

    store.read_bytes = read_bytes  # type: ignore[method-assign]
    return reads


def finished_runs(
    runs: RunStore, workload: str, count: int, start: float = 1.7e9
) -> list[RunRecord]:
    out = []
    for i in range(count):
        rec = RunRecord(
            id=new_run_id(start + i * 60),
            workload=workload,
            kind="job",
            started=start + i * 60,
            status="succeeded",
        )
        runs.finish(rec)
        out.append(rec)
    return out


def test_finished_runs_are_read_once(store: Store) -> None:
    runs = RunStore(store)
    made = finished_runs(runs, "train", 40)
    reads = counting(store)
    first = runs.list("train")
    assert [r.id for r in first] == [r.id for r in reversed(made)]
    assert reads["run.json"] == 40
    reads.clear()
    second = RunStore(store).list("train")
    assert [r.id for r in second] == [r.id for r in first] and second[0].status == "succeeded"
    assert reads == Counter({"index": 1})  # one LIST of run folders + one index object

    running = RunRecord(id=new_run_id(1.8e9), workload="train", kind="job", status="running")
    runs.save(running)
    reads.clear()
    top = runs.list("train", limit=3)
    assert top[0].id == running.id and top[0].status == "running"
    assert reads == Counter({"index": 1, "run.json": 1})  # only the run still going is read


def test_runs_written_without_runstore_still_listed(tmp_path: pytest.TempPathFactory) -> None:
    from mizzen.storage import open_store

    store = open_store((tmp_path / "s").as_uri())  # type: ignore[operator]
    runs = RunStore(store)
    finished_runs(runs, "etl", 35)
    runs.list()  # builds the index
    rec = RunRecord(
        id=new_run_id(1.9e9), workload="etl", kind="job", status="failed", ended=1.9e9 + 5
    )
    store.write_bytes(f"{rec.prefix}/run.json", rec.to_json())  # e.g. a seeder or older writer
    listed = runs.list("etl")
    assert len(listed) == 36 and listed[0].id == rec.id and listed[0].status == "failed"
    assert runs.get(rec.id).id == rec.id


def test_a_run_shown_lost_is_never_folded_into_the_index(store: Store) -> None:
    """Lost is how readers show a silent run; if its writer was only cut off and finishes
    later, the finished record is what every reader sees next."""
    runs = RunStore(store)
    finished_runs(runs, "train", 40)
    beat = time.time() - 600
    silent = RunRecord(
        id=new_run_id(beat),
        workload="train",
        kind="job",
        status="running",
        started=beat - 60,
        heartbeat=beat,
    )
    store.write_bytes(f"{silent.prefix}/run.json", silent.to_json())
    listed = runs.list("train")
    assert listed[0].id == silent.id and listed[0].status == "lost"
    assert listed[0].ended == beat
    silent.status = "succeeded"
    runs.finish(silent)
    assert RunStore(store).list("train")[0].status == "succeeded"
    assert RunStore(store).get(silent.id).status == "succeeded"
