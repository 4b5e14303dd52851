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
