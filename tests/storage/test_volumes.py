"""Blob volumes on the local target: cache interval, incremental sync, write-back rules."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from mizzen.errors import StoreError
from mizzen.plan.model import BlobSource, Mount, StoreRef
from mizzen.storage import Store, open_store
from mizzen.storage.volumes import VolumeSession


class Clock:
    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t


def blob_mount(url: str, options: dict[str, Any], where: Path, **kw: Any) -> Mount:
    read_only = kw.pop("read_only", False)
    source = BlobSource(
        store=StoreRef("lake", url, options),
        path="raw/drives",
        cache_seconds=kw.pop("cache", 600.0),
        **kw,
    )
    return Mount(volume="raw", kind="blob", path=str(where), read_only=read_only, blob=source)


def seed(store: Store, files: dict[str, bytes]) -> None:
    for rel, data in files.items():
        store.write_bytes(f"raw/drives/{rel}", data)


def session(mount: Mount, clock: Clock) -> VolumeSession:
    return VolumeSession((mount,), "run-1", now=clock)


FILES = {"a.csv": b"a" * 10, "b.csv": b"b" * 20, "sub/c.csv": b"c" * 30, "sub/d.json": b"{}"}


def test_cold_then_warm_then_incremental(
    store_spec: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    url, options = store_spec
    store = open_store(url, **options)
    seed(store, FILES)
    clock = Clock()
    mount = blob_mount(url, options, tmp_path / "cache" / "raw")
    where = Path(mount.path)

    cold = session(mount, clock)
    cold.prepare()
    assert cold.stats["raw"].downloaded == 4 and cold.stats["raw"].bytes_down == 62
    assert (where / "sub" / "c.csv").read_bytes() == b"c" * 30

    warm = session(mount, clock)
    warm.prepare()
    assert warm.stats["raw"].cache_hit and warm.transfers == 0

    store.write_bytes("raw/drives/a.csv", b"changed!")
    store.write_bytes("raw/drives/new.csv", b"n")
    store.delete("raw/drives/sub/d.json")
    inside = session(mount, clock)
    inside.prepare()
    assert (
        inside.transfers == 0 and (where / "a.csv").read_bytes() == b"a" * 10
    )  # the interval holds

    clock.t += 601
    after = session(mount, clock)
    after.prepare()
    s = after.stats["raw"]
    assert (s.cache_hit, s.downloaded, s.deleted_local) == (False, 2, 1)
    assert (where / "a.csv").read_bytes() == b"changed!" and (where / "new.csv").exists()
    assert not (where / "sub" / "d.json").exists()

    clock.t += 601
    again = session(mount, clock)
    again.prepare()
    assert again.stats["raw"].listed == 4 and again.transfers == 0  # checked, nothing changed


def test_read_only_volume_is_read_only_and_never_written_back(tmp_path: Path) -> None:
    url = (tmp_path / "store").as_uri()
    store = open_store(url)
    seed(store, FILES)
    clock = Clock()
    mount = blob_mount(url, {}, tmp_path / "cache" / "raw", read_only=True)
    where = Path(mount.path)
    s = session(mount, clock)
    s.prepare()
    assert stat.S_IMODE((where / "a.csv").stat().st_mode) == 0o444
    assert stat.S_IMODE((where / "sub").stat().st_mode) == 0o555
    if os.geteuid() != 0:
        with pytest.raises(PermissionError):
            (where / "a.csv").write_bytes(b"x")
    # root ignores modes: simulate a step that wrote anyway
    os.chmod(where / "a.csv", 0o644)
    (where / "a.csv").write_bytes(b"tampered")
    s.commit()
    s.cleanup()
    assert store.read_bytes("raw/drives/a.csv") == b"a" * 10  # never written back
    fix = session(mount, clock)
    fix.prepare()  # inside the interval, but the local copy changed: fetched again
    assert fix.stats["raw"].downloaded == 1 and (where / "a.csv").read_bytes() == b"a" * 10


@pytest.mark.parametrize("mode", ["update", "mirror"])
def test_write_back_after_success(
    store_spec: tuple[str, dict[str, Any]], tmp_path: Path, mode: str
) -> None:
    url, options = store_spec
    if mode == "mirror" and not url.startswith(("file:", "memory:")):
        pytest.skip("mirror is store-independent logic; update covers the real servers")
    store = open_store(url, **options)
    seed(store, FILES)
    clock = Clock()
    mount = blob_mount(url, options, tmp_path / "cache" / "raw", sync=mode)
    where = Path(mount.path)
    s = session(mount, clock)
    s.prepare()
    (where / "b.csv").write_bytes(b"B" * 5)
    (where / "out").mkdir()
    (where / "out" / "result.parquet").write_bytes(b"r")
    (where / "sub" / "c.csv").unlink()
    s.commit()
    assert s.stats["raw"].uploaded == 2
    assert store.read_bytes("raw/drives/b.csv") == b"B" * 5
    assert store.read_bytes("raw/drives/out/result.parquet") == b"r"
    assert store.exists("raw/drives/sub/c.csv") == (mode == "update")
    nxt = session(mount, clock)
    nxt.prepare()
    # what we uploaded is not downloaded again; an update-mode local delete comes back
    assert nxt.stats["raw"].downloaded == (1 if mode == "update" else 0)
    assert (where / "sub" / "c.csv").exists() == (mode == "update")


def test_failed_step_leaves_store_untouched_and_cache_stale(tmp_path: Path) -> None:
    url = (tmp_path / "store").as_uri()
    store = open_store(url)
    seed(store, FILES)
    before = {i.key: store.read_bytes(i.key) for i in store.list("")}
    clock = Clock()
    mount = blob_mount(url, {}, tmp_path / "cache" / "raw")
    where = Path(mount.path)
    s = session(mount, clock)
    s.prepare()
    (where / "a.csv").write_bytes(b"half-written")
    (where / "junk.tmp").write_bytes(b"j")
    (where / "b.csv").unlink()
    s.abort()
    s.cleanup()
    assert {i.key: store.read_bytes(i.key) for i in store.list("")} == before
    retry = session(mount, clock)
    retry.prepare()  # inside the interval, yet re-synced because the cache is stale
    st = retry.stats["raw"]
    assert (st.cache_hit, st.downloaded, st.deleted_local) == (False, 2, 1)
    assert (
        (where / "a.csv").read_bytes() == b"a" * 10
        and (where / "b.csv").exists()
        and not (where / "junk.tmp").exists()
    )


def test_include_exclude(tmp_path: Path) -> None:
    url = (tmp_path / "store").as_uri()
    store = open_store(url)
    seed(store, FILES)
    mount = blob_mount(url, {}, tmp_path / "cache" / "raw", include=("*.csv",), exclude=("sub/*",))
    s = session(mount, Clock())
    s.prepare()
    got = sorted(
        p.relative_to(mount.path).as_posix() for p in Path(mount.path).rglob("*") if p.is_file()
    )
    assert got == ["a.csv", "b.csv"]


def test_an_object_key_that_would_land_outside_the_volume_is_refused(tmp_path: Path) -> None:
    import fsspec

    url = "memory://volume-keys"
    seed(open_store(url), {"a.csv": b"a"})
    # written by another tool: mizzen's stores refuse such a key
    fsspec.filesystem("memory").pipe("/volume-keys/raw/drives/x/../../../escaped.txt", b"!")
    mount = blob_mount(url, {}, tmp_path / "cache" / "raw")
    with pytest.raises(StoreError, match=r"'x/../../../escaped.txt': it climbs out") as info:
        session(mount, Clock()).prepare()
    assert "nothing was fetched" in info.value.message
    assert not (tmp_path / "escaped.txt").exists()
    assert not list((tmp_path / "cache").rglob("a.csv"))


def test_free_disk_guard(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = (tmp_path / "store").as_uri()
    seed(open_store(url), FILES)
    mount = blob_mount(url, {}, tmp_path / "cache" / "raw")
    import shutil

    real = shutil.disk_usage
    monkeypatch.setattr(
        "mizzen.storage.volumes.shutil.disk_usage", lambda p: real(p)._replace(free=16)
    )
    with pytest.raises(
        StoreError, match=r"volume 'raw' needs 62 B more on disk but only 16 B is free"
    ) as err:
        session(mount, Clock()).prepare()
    assert "include/exclude" in err.value.hint


def test_no_cache_interval_checks_every_time(tmp_path: Path) -> None:
    url = (tmp_path / "store").as_uri()
    store = open_store(url)
    seed(store, FILES)
    mount = blob_mount(url, {}, tmp_path / "cache" / "raw", cache=None)
    clock = Clock()
    session(mount, clock).prepare()
    store.write_bytes("raw/drives/a.csv", b"fresh")
    s = session(mount, clock)
    s.prepare()
    assert s.stats["raw"].downloaded == 1 and (Path(mount.path) / "a.csv").read_bytes() == b"fresh"


def test_scratch_and_files_mounts(tmp_path: Path) -> None:
    scratch = Mount(
        volume="tmp", kind="scratch", path=str(tmp_path / "scratch" / "${run.id}" / "tmp")
    )
    files = Mount(volume="share", kind="files", path=str(tmp_path / "files" / "share"))
    s = VolumeSession((scratch, files), "r-9")
    s.prepare()
    assert s.path(scratch) == tmp_path / "scratch" / "r-9" / "tmp" and s.path(scratch).is_dir()
    s.commit()
    s.cleanup()
    assert not s.path(scratch).exists() and s.path(files).is_dir()


def test_scratch_size_is_checked_against_free_disk(tmp_path: Path) -> None:
    import shutil

    free = shutil.disk_usage(tmp_path).free
    fits = Mount(volume="tmp", kind="scratch", path=str(tmp_path / "s" / "tmp"), size="1Mi")
    s = VolumeSession((fits,), "r-1")
    s.prepare()
    assert s.path(fits).is_dir()
    s.cleanup()
    huge = Mount(volume="big", kind="scratch", path=str(tmp_path / "s" / "big"), size=f"{free * 2}")
    with pytest.raises(
        StoreError, match=r"scratch volume 'big' asks for .* \(scratch.size\)"
    ) as err:
        VolumeSession((huge,), "r-2").prepare()
    assert "volumes.big.scratch.size" in err.value.hint
    assert not (tmp_path / "s" / "big").exists()


@pytest.mark.skipif(not os.access("/dev/shm", os.W_OK), reason="no writable /dev/shm tmpfs here")
def test_memory_scratch_lives_in_tmpfs_and_is_removed(tmp_path: Path) -> None:
    mount = Mount(
        volume="ram", kind="scratch", path=str(tmp_path / "${run.id}" / "ram"), medium="Memory"
    )
    s = VolumeSession((mount,), "r-3")
    s.prepare()
    where = s.path(mount)
    (where / "x.bin").write_bytes(b"1" * 10)
    real = where.resolve()
    assert real.is_relative_to("/dev/shm") and (real / "x.bin").is_file()
    s.cleanup()
    assert not where.exists() and not where.is_symlink() and not real.exists()


def test_readers_share_a_volume_writers_wait_for_everyone(tmp_path: Path) -> None:
    import time

    from mizzen.storage.volumes import LockWait, VolumeBusyError, VolumeWaitCancelled

    url = (tmp_path / "store").as_uri()
    seed(open_store(url), FILES)
    where = tmp_path / "cache" / "raw"
    reader = blob_mount(url, {}, where, read_only=True, cache=None)
    writer = blob_mount(url, {}, where)
    notes: list[str] = []

    def held(mount: Mount, run: str, seconds: float = 30.0, **kw: Any) -> VolumeSession:
        wait = LockWait(
            step="s", deadline=time.monotonic() + seconds, limit="test", note=notes.append, **kw
        )
        return VolumeSession((mount,), run, hold=wait)

    first = held(reader, "run-a")
    first.prepare()
    second = held(reader, "run-b", seconds=0.5)
    second.prepare()  # a second reader of a current copy does not wait
    assert second.stats["raw"].listed == 4 and second.transfers == 0 and not notes
    with pytest.raises(VolumeBusyError) as busy:
        held(writer, "run-c", seconds=0.3).prepare()
    text = str(busy.value)
    assert text.startswith(
        "gave up after 0s (test) waiting for volume 'raw', held by run run-a (step s, pid "
    )
    assert "run run-b (step s, pid " in text
    assert notes == [notes[0]] and notes[0].startswith(
        "waiting for volume 'raw', held by run run-a"
    )
    first.cleanup()
    second.cleanup()
    third = held(writer, "run-c")
    third.prepare()
    with pytest.raises(VolumeWaitCancelled):
        held(reader, "run-d", stopped=lambda: True).prepare()
    (where / "a.csv").write_bytes(b"new")
    third.commit()
    third.cleanup()
    fourth = held(reader, "run-e")
    fourth.prepare()
    assert (where / "a.csv").read_bytes() == b"new"
    fourth.cleanup()


def test_a_write_back_over_another_writers_change_is_refused_and_nothing_is_lost(
    store_spec: tuple[str, dict[str, Any]], tmp_path: Path
) -> None:
    """Sessions that do not hold the volume for their whole life (`mizzen up`, a notebook,
    another machine) can still race: the second write-back is refused."""
    from mizzen.storage.volumes import VolumeConflictError

    url, options = store_spec
    store = open_store(url, **options)
    seed(store, {"n.txt": b"0", "other.txt": b"x"})
    clock = Clock()
    ours = blob_mount(url, options, tmp_path / "mine" / "raw", cache=None)
    theirs = blob_mount(url, options, tmp_path / "theirs" / "raw", cache=None)
    mine, other = session(ours, clock), session(theirs, clock)
    mine.prepare()
    other.prepare()
    (Path(theirs.path) / "n.txt").write_bytes(b"1")
    other.commit()
    (Path(ours.path) / "n.txt").write_bytes(b"one")
    (Path(ours.path) / "new.txt").write_bytes(b"mine")
    with pytest.raises(VolumeConflictError) as info:
        mine.commit()
    assert "volume 'raw': 1 file changed in the store since this run fetched it (n.txt)" in str(
        info.value
    )
    assert store.read_bytes("raw/drives/n.txt") == b"1" and not store.exists("raw/drives/new.txt")
    kept = tmp_path / "mine" / "raw.conflict-run-1"
    assert (kept / "n.txt").read_bytes() == b"one" and (kept / "new.txt").read_bytes() == b"mine"
    again = session(ours, clock)
    again.prepare()  # starts over from the store's version
    assert (Path(ours.path) / "n.txt").read_bytes() == b"1"


# --- runs sharing a read-write volume take turns (real runs, real S3) ----------------------
BUMP = """\
import pathlib, time, mizzen
counter = mizzen.volume("counter") / "n.txt"
seen = int(counter.read_text()) if counter.exists() else 0
time.sleep(0.5)  # long enough for the other runs to start meanwhile
counter.write_text(str(seen + 1))
print("counted", seen + 1)
"""
SHARED = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: counting
stores:
  lake: {{url: "{url}", options: {{endpoint_url: "{endpoint}"}}, secret: lake-creds}}
secrets:
  lake-creds: [access_key_id, secret_access_key]
volumes:
  counter: {{blob: lake/counter}}
environments:
  dev: {{}}
jobs:
  bump: {{command: [{py}, bump.py], volumes: [counter]}}
"""


def _shared_project(seaweedfs: Any, tmp_path: Path) -> tuple[Path, Store, dict[str, str]]:
    import json
    import sys

    url = seaweedfs.new_bucket()
    root = tmp_path / "proj"
    root.mkdir()
    (root / "bump.py").write_text(BUMP)
    (root / "mizzen.yaml").write_text(
        SHARED.format(url=url, endpoint=seaweedfs.endpoint, py=json.dumps(sys.executable))
    )
    env = {
        **os.environ,
        "MIZZEN_SECRET_LAKE_CREDS_ACCESS_KEY_ID": seaweedfs.access_key,
        "MIZZEN_SECRET_LAKE_CREDS_SECRET_ACCESS_KEY": seaweedfs.secret_key,
        "NO_COLOR": "1",
    }
    return root, open_store(url, **seaweedfs.options), env


def _start(root: Path, env: dict[str, str], job: str) -> Any:
    import subprocess
    import sys

    return subprocess.Popen(
        [sys.executable, "-m", "mizzen.cli.main", "run", job, "--env", "dev"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def _runs(root: Path, env: dict[str, str], *jobs: str) -> list[tuple[int, str]]:
    procs = [_start(root, env, job) for job in jobs]
    return [(p.wait(timeout=240), p.stdout.read() if p.stdout else "") for p in procs]


@pytest.mark.s3
def test_three_concurrent_runs_incrementing_a_counter_in_a_read_write_volume_count_to_three(
    seaweedfs: Any, tmp_path: Path
) -> None:
    root, store, env = _shared_project(seaweedfs, tmp_path)
    results = _runs(root, env, "bump", "bump", "bump")
    assert all(code == 0 for code, _ in results), results
    assert store.read_bytes("counter/n.txt") == b"3"
    waited = [out for _, out in results if "waiting for volume 'counter', held by run " in out]
    assert len(waited) >= 1, results
    assert "(step bump, pid " in waited[0]
    assert sorted(
        int(line.split()[-1])
        for _, out in results
        for line in out.splitlines()
        if "counted" in line
    ) == [1, 2, 3]


@pytest.mark.s3
def test_a_run_waiting_for_a_volume_gives_up_saying_what_it_waited_for(
    seaweedfs: Any, tmp_path: Path
) -> None:
    root, store, env = _shared_project(seaweedfs, tmp_path)
    (root / "bump.py").write_text(BUMP.replace("time.sleep(0.5)", "time.sleep(20)"))
    import time

    holder = _start(root, env, "bump")
    try:
        holders = root / ".mizzen" / "cache" / "volumes" / "counter.holders"
        while not list(holders.glob("*.json")):  # it holds the volume (from before its step)
            assert holder.poll() is None, holder.stdout.read() if holder.stdout else ""
            time.sleep(0.05)
        ((code, out),) = _runs(root, {**env, "MIZZEN_VOLUME_WAIT": "1s"}, "bump")
    finally:
        holder.kill()
        holder.wait()
    assert code == 1, out
    assert (
        "gave up after 1s (MIZZEN_VOLUME_WAIT=1s) waiting for volume 'counter', held by run " in out
    )
    assert "(step bump, pid " in out
    assert not store.exists("counter/n.txt")  # nothing was written by the one that gave up


def test_how_long_a_step_waits_comes_from_the_environment() -> None:
    from mizzen.errors import UsageError
    from mizzen.storage.volumes import volume_wait

    assert volume_wait({}) == (3600.0, "1h")
    assert volume_wait({"MIZZEN_VOLUME_WAIT": "90s"}) == (90.0, "90s")
    assert volume_wait({"MIZZEN_VOLUME_WAIT": "0"}) == (0.0, "0")
    with pytest.raises(UsageError, match="MIZZEN_VOLUME_WAIT='soon' is not a duration"):
        volume_wait({"MIZZEN_VOLUME_WAIT": "soon"})
