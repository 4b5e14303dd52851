"""The contract every Store must keep, run against each backend (see conftest.BACKENDS)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from mizzen.storage import Store
from mizzen.storage.runs import Metric, RunRecord, RunStore, StepRecord, new_run_id


def test_read_write_overwrite(store: Store) -> None:
    with pytest.raises(FileNotFoundError):
        store.read_bytes("a/missing.txt")
    store.write_bytes("a/b.txt", b"one")
    assert store.read_bytes("a/b.txt") == b"one"
    store.write_bytes("a/b.txt", b"two!")
    assert store.read_bytes("/a/b.txt") == b"two!"
    assert store.exists("a/b.txt") and not store.exists("a/nope")


def test_create_is_conditional(store: Store) -> None:
    assert store.create("locks/x", b"first") is True
    assert store.create("locks/x", b"second") is False
    assert store.read_bytes("locks/x") == b"first"


def test_concurrent_create_has_one_winner(store: Store) -> None:
    wins: list[bool] = []
    barrier = threading.Barrier(8)

    def attempt(i: int) -> None:
        barrier.wait()
        wins.append(store.create("race/key", str(i).encode()))

    threads = [threading.Thread(target=attempt, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(wins) == [False] * 7 + [True]


def test_list_prefix_sizes_and_versions(store: Store) -> None:
    store.write_bytes("data/x.csv", b"12345")
    store.write_bytes("data/sub/y.csv", b"1")
    store.write_bytes("database/z", b"no")
    infos = {i.key: i for i in store.list("data")}
    assert sorted(infos) == ["data/sub/y.csv", "data/x.csv"]  # 'database' is not under 'data'
    assert infos["data/x.csv"].size == 5
    before = infos["data/x.csv"].version
    store.write_bytes("data/x.csv", b"6789a")
    after = {i.key: i for i in store.list("data")}["data/x.csv"].version
    assert before != after
    assert [i.key for i in store.list("data", recursive=False)] == ["data/x.csv"]
    assert store.list_dirs("data") == ["sub"]
    assert store.list_dirs("") == ["data", "database"] or set(store.list_dirs("")) >= {"data"}
    assert list(store.list("nothing/here")) == []
    assert store.list_dirs("nothing") == []


def test_delete_and_delete_prefix(store: Store) -> None:
    store.write_bytes("p/a", b"1")
    store.write_bytes("p/q/b", b"2")
    store.write_bytes("pp/c", b"3")
    store.delete("p/a")
    store.delete("p/a")  # absent is fine
    assert not store.exists("p/a")
    store.delete_prefix("p")
    assert list(store.list("p")) == []
    assert store.read_bytes("pp/c") == b"3"


def test_files_round_trip(store: Store, tmp_path: Path) -> None:
    src = tmp_path / "in.bin"
    src.write_bytes(b"\x00\x01" * 1000)
    store.put_file(str(src), "blobs/in.bin")
    store.get_file("blobs/in.bin", str(tmp_path / "out" / "deep" / "in.bin"))
    assert (tmp_path / "out" / "deep" / "in.bin").read_bytes() == src.read_bytes()


def test_child_store_and_escapes(store: Store) -> None:
    child = store.child("team/a")
    child.write_bytes("k", b"v")
    assert store.read_bytes("team/a/k") == b"v"
    with pytest.raises(ValueError):
        store.read_bytes("../outside")


def test_run_records(store: Store) -> None:
    runs = RunStore(store)
    rec = RunRecord(
        id=new_run_id(), workload="train", kind="job", steps=[StepRecord("train", "train")]
    )
    runs.save(rec)
    assert [r.id for r in runs.list("train")] == [rec.id]
    assert not runs.is_done(rec)
    runs.put_log(rec, "train", b"hello\n")
    runs.put_metrics(rec, [Metric("loss", 0.5, 1, 1.0), Metric("loss", 0.25, 2, 2.0)])
    rec.status = "succeeded"
    runs.finish(rec)
    again = runs.get(rec.id[:15])
    assert again.status == "succeeded" and runs.is_done(again)
    assert runs.log(again, "train") == b"hello\n"
    assert [m.value for m in runs.metrics(again)] == [0.5, 0.25]
    assert runs.workloads() == ["train"]
