"""Volumes on the local target: blob volumes materialised into `.mizzen/cache/`.

The blobfuse idea at job granularity. Before a step, `prepare()` makes each blob volume's
folder match its store path; after the step, `commit()` (success) writes read-write volumes
back, `abort()` (failure) leaves the store untouched and marks the local copy stale;
`cleanup()` always runs.

Each blob volume keeps a small state file beside its folder (`<folder>.state.json`):
the source it mirrors, when it was last checked, a `stale` flag, and per file the remote
(size, etag/version) and the local (mtime_ns) seen at that time. With it:

- inside the `cache` interval nothing is listed or transferred;
- after it, only objects whose size or version changed are fetched, objects deleted in
  the store are deleted locally, and local files edited since (a failed step, or a
  read-only file changed by a root process) are fetched again;
- write-back uploads new and changed local files; `sync: mirror` also deletes objects
  whose local file was deleted, `update` never deletes in the store.

`include`/`exclude` globs (fnmatch on the path inside the volume; `*` crosses folders)
restrict both directions. `stats[volume]` counts what moved, so callers and tests can tell
a warm re-run (0 transfers) from a cold one without timing anything.

Runs take turns. A step's session (`hold=LockWait(...)`) locks each blob volume's folder
(`<folder>.lock`) from `prepare()` to `cleanup()`: exclusively when it is read-write, so two
runs never read the same state and both write back; shared when read-only, so readers run
together once the copy is current (a reader that finds it out of date waits for the others
to finish before syncing). Whoever waits is told who holds the volume (`<folder>.holders/`)
and gives up at its deadline with `VolumeBusyError`. Sessions without `hold` (`mizzen up`,
`mizzen notebook`) lock only while syncing.
"""

from __future__ import annotations

import contextlib
import fnmatch
import json
import os
import shutil
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from mizzen.errors import StoreError
from mizzen.plan.model import BlobSource, Mount
from mizzen.spec.interpolate import fill_run
from mizzen.storage.base import Store
from mizzen.storage.paths import unsafe

STATE_VERSION = 1
TMPFS = "/dev/shm"  # where `scratch: {medium: Memory}` lives locally (when it exists)
DEFAULT_WORKERS = 16
WAIT_ENV = "MIZZEN_VOLUME_WAIT"
DEFAULT_WAIT = 3600.0  # how long a step waits for a volume another run holds
REMIND_EVERY = 60.0


class VolumeBusyError(StoreError):
    """A step waited for a volume other runs held until its deadline."""


class VolumeConflictError(StoreError):
    """Write-back found files another writer changed in the store meanwhile."""


class VolumeWaitCancelled(StoreError):
    """The run was stopped while a step waited for a volume."""


def volume_wait(environ: dict[str, str] | None = None) -> tuple[float, str]:
    """How long a step may wait for a volume: MIZZEN_VOLUME_WAIT (a duration), else 1h."""
    from mizzen.errors import UsageError
    from mizzen.spec.units import parse_duration

    text = (os.environ if environ is None else environ).get(WAIT_ENV, "").strip()
    if not text:
        return DEFAULT_WAIT, "1h"
    try:
        return (float(text) if text.replace(".", "", 1).isdigit() else parse_duration(text)), text
    except ValueError:
        raise UsageError(
            f"{WAIT_ENV}={text!r} is not a duration",
            hint="e.g. 30s, 10m, 2h or 0 (do not wait)",
        ) from None


@dataclass
class LockWait:
    """What a step's session needs to hold its volumes: who it is, until when it may wait
    (`deadline`, a time.monotonic() value, and `limit`, how it was set, for the message),
    whether the run was stopped meanwhile, and where to say that it waits."""

    step: str
    deadline: float | None = None
    limit: str = ""
    stopped: Callable[[], bool] = lambda: False
    note: Callable[[str], None] = lambda text: print(text, file=sys.stderr)


class VolumeLock:
    """`<folder>.lock`, held with flock by one session: shared or exclusive; the holder
    writes who it is into `<folder>.holders/` so that waiters can say."""

    def __init__(self, volume: str, where: Path, who: dict[str, Any]) -> None:
        self.volume = volume
        self.path = where.with_name(where.name + ".lock")
        self.holders = where.with_name(where.name + ".holders")
        self.who = who
        self._fh: Any = None
        self._mine: Path | None = None

    def acquire(self, exclusive: bool, wait: LockWait) -> None:
        import fcntl

        if self._fh is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.path.open("a")  # held until release()
        mode = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        started = time.monotonic()
        told = 0.0
        while True:
            try:
                fcntl.flock(self._fh, mode | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                pass
            now = time.monotonic()
            if wait.stopped():
                raise VolumeWaitCancelled(f"stopped while waiting for volume {self.volume!r}")
            if wait.deadline is not None and now >= wait.deadline:
                raise VolumeBusyError(
                    f"gave up after {_seconds(now - started)} ({wait.limit}) waiting for volume "
                    f"{self.volume!r}, held by {self.describe_holders()}",
                    hint=f"let that run finish first, or set {WAIT_ENV} (e.g. 2h) to wait longer",
                )
            if not told or now - told >= REMIND_EVERY:
                again = "still " if told else ""
                waited = f" ({_seconds(now - started)})" if told else ""
                wait.note(
                    f"{again}waiting for volume {self.volume!r}{waited}, "
                    f"held by {self.describe_holders()}"
                )
                told = now
            time.sleep(0.1)
        self._announce()

    def release(self) -> None:
        if self._mine is not None:
            self._mine.unlink(missing_ok=True)
            self._mine = None
        if self._fh is not None:
            self._fh.close()  # closing the file releases the lock
            self._fh = None

    def _announce(self) -> None:
        self.holders.mkdir(parents=True, exist_ok=True)
        if self._mine is None:
            self._mine = self.holders / f"{os.getpid()}-{id(self):x}.json"
        tmp = self._mine.with_suffix(".tmp")
        tmp.write_text(json.dumps({**self.who, "since": time.time()}))
        os.replace(tmp, self._mine)

    def describe_holders(self) -> str:
        """'run X (step S, pid N on HOST)' for each live holder, as far as known."""
        import socket

        here = socket.gethostname()
        found = []
        for file in self.holders.glob("*.json") if self.holders.is_dir() else []:
            try:
                who = json.loads(file.read_text())
            except (OSError, ValueError):
                continue
            if who.get("host") == here and not _pid_alive(int(who.get("pid", 0))):
                file.unlink(missing_ok=True)  # left by a process that died
                continue
            found.append(who)
        out = []
        for who in sorted(found, key=lambda w: float(w.get("since", 0))):
            doing = f"step {who['step']}" if who.get("step") else who.get("how") or "syncing"
            out.append(
                f"run {who.get('run', '?')} "
                f"({doing}, pid {who.get('pid', '?')} on {who.get('host', '?')})"
            )
        return ", ".join(out) or "another process"


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _seconds(value: float) -> str:
    value = round(value)
    if value < 60:
        return f"{value}s"
    minutes, sec = divmod(value, 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s" if sec else f"{minutes}m"
    return f"{minutes // 60}h{minutes % 60:02d}m"


@dataclass
class SyncStats:
    """What one volume moved in this session."""

    cache_hit: bool = False  # inside the cache interval: nothing listed, nothing moved
    listed: int = 0  # remote objects seen
    downloaded: int = 0
    bytes_down: int = 0
    deleted_local: int = 0
    uploaded: int = 0
    bytes_up: int = 0
    deleted_remote: int = 0

    @property
    def transfers(self) -> int:
        return self.downloaded + self.uploaded + self.deleted_remote


@dataclass
class _State:
    source: str = ""
    synced: float = 0.0
    stale: bool = True
    files: dict[str, list[Any]] = field(default_factory=dict)  # rel -> [size, version, mtime_ns]

    @classmethod
    def load(cls, path: Path) -> _State:
        try:
            raw = json.loads(path.read_text())
        except (OSError, ValueError):
            return cls()
        if raw.get("v") != STATE_VERSION:
            return cls()
        return cls(
            source=raw.get("source", ""),
            synced=float(raw.get("synced", 0)),
            stale=bool(raw.get("stale", True)),
            files=dict(raw.get("files", {})),
        )

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps({"v": STATE_VERSION, **asdict(self)}, sort_keys=True))
        os.replace(tmp, path)


class VolumeSession:
    """The volumes of one step run: prepare before, commit after success, abort after failure,
    cleanup always."""

    def __init__(
        self,
        mounts: tuple[Mount, ...],
        run_id: str,
        run_date: str = "",
        *,
        progress: bool = False,
        root: str | Path | None = None,
        env: str | None = None,
        workers: int = DEFAULT_WORKERS,
        now: Callable[[], float] = time.time,
        hold: LockWait | None = None,
    ) -> None:
        self.mounts = mounts
        self.run_id = run_id
        self.run_date = run_date
        self.progress = progress
        self.root = Path(root) if root is not None else None
        self.env = env
        self.workers = max(1, workers)
        self.now = now
        self.hold = hold
        self.stats: dict[str, SyncStats] = {}
        self._stores: dict[str, Store] = {}
        self._held: list[VolumeLock] = []

    # --- public --------------------------------------------------------------------------
    def path(self, mount: Mount) -> Path:
        return Path(fill_run(mount.path, self.run_id, self.run_date))

    def prepare(self) -> None:
        if self.hold is not None:
            self._hold_all(self.hold)
        for m in self.mounts:
            where = self.path(m)
            if m.kind == "blob" and m.blob is not None:
                if self.hold is None:
                    with self._locked(m, where):
                        self._pull(m, m.blob, where)
            elif m.kind == "scratch":
                self._scratch(m, where)
            else:
                where.mkdir(parents=True, exist_ok=True)

    def commit(self) -> None:
        for m in self._blob_mounts():
            assert m.blob is not None
            where = self.path(m)
            with self._locked(m, where):
                if m.read_only:
                    self._check_untouched(m, where)
                else:
                    self._push(m, m.blob, where)

    def abort(self) -> None:
        """The step failed: the store is left alone; local edits make the cache stale."""
        for m in self._blob_mounts():
            where = self.path(m)
            with self._locked(m, where):
                if m.read_only:
                    self._check_untouched(m, where)
                else:
                    self._mark_stale(where)

    def cleanup(self) -> None:
        for lock in reversed(self._held):
            lock.release()
        self._held.clear()
        for m in self.mounts:
            if m.kind == "scratch":
                where = self.path(m)
                if where.is_symlink():  # a tmpfs folder (medium: Memory)
                    shutil.rmtree(where.resolve(), ignore_errors=True)
                    where.unlink(missing_ok=True)
                shutil.rmtree(where, ignore_errors=True)

    @property
    def transfers(self) -> int:
        return sum(s.transfers for s in self.stats.values())

    # --- scratch: fresh per run; `medium: Memory` in a tmpfs; `size` checked up front -------
    def _scratch(self, m: Mount, where: Path) -> None:
        where.parent.mkdir(parents=True, exist_ok=True)
        memory = m.medium == "Memory" and os.access(TMPFS, os.W_OK)
        base = Path(TMPFS) if memory else where.parent
        if m.size:
            from mizzen.spec.units import parse_quantity

            free = shutil.disk_usage(base).free
            if int(parse_quantity(m.size)) > free:
                kind = "memory (tmpfs)" if memory else "disk"
                raise StoreError(
                    f"scratch volume {m.volume!r} asks for {m.size} (scratch.size) but only "
                    f"{_human(free)} of {kind} is free under {base}",
                    hint=f"lower volumes.{m.volume}.scratch.size, or free space there",
                )
        if not memory:
            where.mkdir(parents=True, exist_ok=True)
            return
        import tempfile

        if where.is_symlink():
            where.unlink()
        shutil.rmtree(where, ignore_errors=True)
        real = Path(tempfile.mkdtemp(prefix=f"mizzen-{m.volume}-", dir=TMPFS))
        where.symlink_to(real, target_is_directory=True)

    # --- pull: store -> local ------------------------------------------------------------
    def _pull(self, m: Mount, blob: BlobSource, where: Path) -> None:
        stats = self.stats.setdefault(m.volume, SyncStats())
        state_file = _state_path(where)
        state = _State.load(state_file)
        source = _source_id(blob)
        if state.source != source:
            state = _State(source=source)
        fresh = blob.cache_seconds is not None and self.now() - state.synced < blob.cache_seconds
        if fresh and not state.stale and where.is_dir():
            stats.cache_hit = True
            _set_read_only(where, m.read_only)
            return
        store = self._store(blob)
        remote = self._remote(store, blob)
        bad = [(rel, why) for rel in remote if (why := unsafe(rel))]
        if bad:  # a key with '..' or an absolute part would land outside the volume
            rel, why = bad[0]
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            raise StoreError(
                f"volume {m.volume}: {blob.url} holds an object that cannot be a file in the "
                f"volume, {rel!r}: {why}{more}; nothing was fetched",
                hint="rename or remove it in the store, or leave it out with `exclude:`",
            )
        stats.listed = len(remote)
        where.mkdir(parents=True, exist_ok=True)
        _set_read_only(where, False)
        local = _scan(where)
        state.stale = True
        state.save(state_file)  # an interrupted sync is re-checked next time

        todo = _to_fetch(state, remote, local)
        _check_free_disk(
            m.volume,
            where,
            sum(i.size for _, i in todo) - sum(local[r][0] for r, _ in todo if r in local),
        )

        files: dict[str, list[Any]] = {r: state.files[r] for r in remote if r in state.files}

        def fetch(rel: str) -> None:
            info = remote[rel]
            target = where / rel
            with contextlib.suppress(FileNotFoundError):
                target.unlink()
            store.get_file(info.key, str(target))
            files[rel] = [info.size, info.version, target.stat().st_mtime_ns]

        self._run_parallel(f"{m.volume} ↓", [(rel, info.size) for rel, info in todo], fetch)
        stats.downloaded += len(todo)
        stats.bytes_down += sum(i.size for _, i in todo)
        for rel in sorted(set(local) - set(remote), reverse=True):
            (where / rel).unlink(missing_ok=True)
            stats.deleted_local += 1
        _prune_empty_dirs(where)
        state.files = files
        state.synced = self.now()
        state.stale = False
        state.save(state_file)
        _set_read_only(where, m.read_only)

    def _current(self, m: Mount, blob: BlobSource, where: Path) -> bool:
        """A read-only copy that matches the store (checked without changing anything, so
        other readers may be using it): inside the cache interval, or nothing to fetch."""
        stats = self.stats.setdefault(m.volume, SyncStats())
        state = _State.load(_state_path(where))
        if state.source != _source_id(blob) or state.stale or not where.is_dir():
            return False
        if where.stat().st_mode & stat.S_IWUSR:
            return False  # last used read-write: the modes need setting
        if blob.cache_seconds is not None and self.now() - state.synced < blob.cache_seconds:
            stats.cache_hit = True
            return True
        remote = self._remote(self._store(blob), blob)
        stats.listed = len(remote)
        local = _scan(where)
        if _to_fetch(state, remote, local) or set(local) - set(remote):
            return False
        state.synced = self.now()
        state.save(_state_path(where))
        return True

    def _remote(self, store: Store, blob: BlobSource) -> dict[str, Any]:
        return {
            _rel(info.key, blob.path): info
            for info in store.list(blob.path)
            if _wanted(_rel(info.key, blob.path), blob)
        }

    # --- push: local -> store (read-write volumes, after success) ------------------------
    def _push(self, m: Mount, blob: BlobSource, where: Path) -> None:
        stats = self.stats.setdefault(m.volume, SyncStats())
        state_file = _state_path(where)
        state = _State.load(state_file)
        if not where.is_dir():
            return
        local = {rel: v for rel, v in _scan(where).items() if _wanted(rel, blob)}
        changed = [
            rel
            for rel, (size, mtime) in local.items()
            if (known := state.files.get(rel)) is None or [size, mtime] != [known[0], known[2]]
        ]
        gone = [rel for rel in state.files if rel not in local]
        if not changed and not (gone and blob.sync == "mirror"):
            if gone:
                self._mark_stale(where)  # update mode: the store keeps them; fetch them back
            return
        store = self._store(blob)
        self._check_conflicts(m, where, state, self._remote(store, blob), changed, gone)

        def upload(rel: str) -> None:
            store.put_file(str(where / rel), _key(blob.path, rel))

        self._run_parallel(f"{m.volume} ↑", [(rel, local[rel][0]) for rel in changed], upload)
        stats.uploaded += len(changed)
        stats.bytes_up += sum(local[rel][0] for rel in changed)
        if blob.sync == "mirror":
            for rel in gone:
                store.delete(_key(blob.path, rel))
            stats.deleted_remote += len(gone)
        remote = {_rel(info.key, blob.path): info for info in store.list(blob.path)}
        for rel in changed:
            info = remote.get(rel)
            if info is not None:
                state.files[rel] = [info.size, info.version, local[rel][1]]
        for rel in gone:
            state.files.pop(rel, None)
        state.stale = state.stale or (bool(gone) and blob.sync != "mirror")
        state.save(state_file)

    def _check_conflicts(
        self,
        m: Mount,
        where: Path,
        state: _State,
        remote: dict[str, Any],
        changed: list[str],
        gone: list[str],
    ) -> None:
        """Files this session changed that another writer changed in the store since they
        were fetched (another machine, `mizzen up`, a notebook): write nothing back, keep
        this session's versions aside, and say so."""
        clash = []
        for rel in changed:  # created, changed or deleted there meanwhile
            known, now = state.files.get(rel), remote.get(rel)
            if (now is None) != (known is None) or (now and known and now.version != known[1]):
                clash.append(rel)
        if m.blob is not None and m.blob.sync == "mirror":
            for rel in gone:  # deleted here, changed there
                now = remote.get(rel)
                if now is not None and now.version != state.files[rel][1]:
                    clash.append(rel)
        if not clash:
            return
        keep = where.with_name(f"{where.name}.conflict-{self.run_id}")
        for rel in changed:
            target = keep / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(where / rel, target)
        self._mark_stale(where)
        names = ", ".join(sorted(clash)[:5]) + (
            f" and {len(clash) - 5} more" if len(clash) > 5 else ""
        )
        raise VolumeConflictError(
            f"volume {m.volume!r}: {len(clash)} file{'s' if len(clash) != 1 else ''} changed "
            f"in the store since this run fetched {'them' if len(clash) != 1 else 'it'} "
            f"({names}), by another writer; nothing was written back, and this run's "
            f"changed files are kept in {keep}",
            hint="run it again to start from the store's version, merging what you need from there",
        )

    # --- helpers -------------------------------------------------------------------------
    def _check_untouched(self, m: Mount, where: Path) -> None:
        """A read-only copy changed on disk (a root process ignores modes): fetch it again."""
        state = _State.load(_state_path(where))
        wanted = {rel: [v[0], v[2]] for rel, v in state.files.items()}
        seen = {rel: list(v) for rel, v in _scan(where).items()} if where.is_dir() else {}
        if seen != wanted:
            self._mark_stale(where)

    def _mark_stale(self, where: Path) -> None:
        state_file = _state_path(where)
        state = _State.load(state_file)
        state.stale = True
        state.save(state_file)

    def _blob_mounts(self) -> list[Mount]:
        return [m for m in self.mounts if m.kind == "blob" and m.blob is not None]

    def _store(self, blob: BlobSource) -> Store:
        key = json.dumps(
            [blob.store.url, blob.store.options, blob.store.secret], sort_keys=True, default=str
        )
        if key not in self._stores:
            from mizzen.storage.project import open_ref

            self._stores[key] = open_ref(blob.store, root=self.root, env=self.env)
        return self._stores[key]

    # --- locks ---------------------------------------------------------------------------
    def _lock(self, m: Mount, where: Path, step: str = "", how: str = "") -> VolumeLock:
        import socket

        who = {"run": self.run_id, "step": step, "pid": os.getpid(), "host": socket.gethostname()}
        return VolumeLock(m.volume, where, {**who, "how": how})

    def _hold_all(self, wait: LockWait) -> None:
        """Lock every blob volume for the whole step (in one order, so sessions cannot
        deadlock), syncing each: exclusive while syncing, then shared if read-only."""
        blobs = sorted(self._blob_mounts(), key=lambda m: str(self.path(m)))
        try:
            for m in blobs:
                assert m.blob is not None
                where = self.path(m)
                lock = self._lock(m, where, wait.step)
                self._held.append(lock)
                if not m.read_only:
                    lock.acquire(True, wait)
                    self._pull(m, m.blob, where)
                    continue
                while True:
                    lock.acquire(False, wait)
                    if self._current(m, m.blob, where):
                        break  # readers share a copy that needs no change
                    lock.acquire(True, wait)  # waits for the readers using it to finish
                    self._pull(m, m.blob, where)
                    lock.acquire(False, wait)
                    if not _State.load(_state_path(where)).stale:
                        break
        except BaseException:
            self.cleanup()
            raise

    @contextlib.contextmanager
    def _locked(self, m: Mount, where: Path) -> Iterator[None]:
        """Exclusive while syncing, unless this session holds the volume already."""
        if self.hold is not None:
            yield
            return
        lock = self._lock(m, where, how="syncing")
        try:
            lock.acquire(True, LockWait(step=""))
            yield
        finally:
            lock.release()

    def _run_parallel(
        self, label: str, items: list[tuple[str, int]], work: Callable[[str], None]
    ) -> None:
        if not items:
            return
        bar = (
            _progress(label, sum(size for _, size in items))
            if self.progress and sys.stderr.isatty()
            else None
        )
        lock = threading.Lock()

        def one(item: tuple[str, int]) -> None:
            work(item[0])
            if bar is not None:
                with lock:
                    bar[0].advance(bar[1], item[1])

        try:
            if len(items) == 1 or self.workers == 1:
                for item in items:
                    one(item)
            else:
                with ThreadPoolExecutor(max_workers=min(self.workers, len(items))) as pool:
                    for _ in pool.map(one, items):
                        pass
        except OSError as exc:
            raise StoreError(f"volume transfer failed ({label}): {exc}") from exc
        finally:
            if bar is not None:
                bar[0].stop()


def _progress(label: str, total: int) -> tuple[Any, Any]:
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    progress.start()
    return progress, progress.add_task(label, total=total)


def _to_fetch(
    state: _State, remote: dict[str, Any], local: dict[str, tuple[int, int]]
) -> list[tuple[str, Any]]:
    """Remote objects whose local copy is missing, older, or edited since the last sync."""
    todo = []
    for rel, info in remote.items():
        known = state.files.get(rel)
        have = local.get(rel)
        if (
            known is None
            or have is None
            or known[0] != info.size
            or known[1] != info.version
            or list(have) != [known[0], known[2]]
        ):
            todo.append((rel, info))
    return todo


def _state_path(where: Path) -> Path:
    return where.with_name(where.name + ".state.json")


def _source_id(blob: BlobSource) -> str:
    return json.dumps([blob.url, sorted(blob.include), sorted(blob.exclude)])


def _rel(key: str, prefix: str) -> str:
    return key[len(prefix) :].lstrip("/") if prefix else key


def _key(prefix: str, rel: str) -> str:
    return f"{prefix}/{rel}" if prefix else rel


def _wanted(rel: str, blob: BlobSource) -> bool:
    if blob.include and not any(fnmatch.fnmatchcase(rel, g) for g in blob.include):
        return False
    return not any(fnmatch.fnmatchcase(rel, g) for g in blob.exclude)


def _scan(where: Path) -> dict[str, tuple[int, int]]:
    """rel path -> (size, mtime_ns) of every file under `where`."""
    out: dict[str, tuple[int, int]] = {}
    for dirpath, _dirs, names in os.walk(where):
        for name in names:
            full = os.path.join(dirpath, name)
            st = os.stat(full)
            out[os.path.relpath(full, where).replace(os.sep, "/")] = (st.st_size, st.st_mtime_ns)
    return out


def _prune_empty_dirs(where: Path) -> None:
    for dirpath, dirs, files in os.walk(where, topdown=False):
        if dirpath != str(where) and not dirs and not files:
            with contextlib.suppress(OSError):
                os.rmdir(dirpath)


def _set_read_only(where: Path, read_only: bool) -> None:
    """Files 0444 and folders 0555 for read-only volumes; owner-writable otherwise."""
    file_mode = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
    dir_mode = file_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH
    for dirpath, dirs, files in os.walk(where, topdown=False):
        for name in files:
            full = os.path.join(dirpath, name)
            mode = os.stat(full).st_mode
            os.chmod(full, file_mode if read_only else (mode | stat.S_IWUSR))
        for name in dirs:
            full = os.path.join(dirpath, name)
            os.chmod(full, dir_mode if read_only else (dir_mode | stat.S_IWUSR))
    if where.is_dir():
        os.chmod(where, dir_mode if read_only else (dir_mode | stat.S_IWUSR))


def _check_free_disk(volume: str, where: Path, needed: int) -> None:
    if needed <= 0:
        return
    free = shutil.disk_usage(where).free
    if needed > free:
        raise StoreError(
            f"volume {volume!r} needs {_human(needed)} more on disk but only {_human(free)} is free under {where}",
            hint="narrow it with include/exclude globs, or free disk space",
        )


def _human(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"
