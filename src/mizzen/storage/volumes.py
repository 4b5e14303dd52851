"""Volumes on the local target (first version: plain copies; see VolumeSession)."""

from __future__ import annotations

import shutil
from pathlib import Path

from mizzen.plan.model import Mount
from mizzen.spec.interpolate import fill_run
from mizzen.storage.base import open_store


class VolumeSession:
    """The volumes of one step run: prepare before, commit after success, abort after failure,
    cleanup always."""

    def __init__(
        self, mounts: tuple[Mount, ...], run_id: str, run_date: str = "", *, progress: bool = False
    ) -> None:
        self.mounts = mounts
        self.run_id = run_id
        self.run_date = run_date
        self.progress = progress

    def path(self, mount: Mount) -> Path:
        return Path(fill_run(mount.path, self.run_id, self.run_date))

    def prepare(self) -> None:
        for m in self.mounts:
            where = self.path(m)
            if m.kind == "blob" and m.blob is not None:
                if where.exists():
                    shutil.rmtree(where)
                where.mkdir(parents=True)
                store = open_store(m.blob.store.url, **m.blob.store.options)
                for info in store.list(m.blob.path):
                    rel = info.key[len(m.blob.path) :].lstrip("/") if m.blob.path else info.key
                    store.get_file(info.key, str(where / rel))
            else:
                where.mkdir(parents=True, exist_ok=True)

    def commit(self) -> None:
        for m in self.mounts:
            if m.kind != "blob" or m.read_only or m.blob is None:
                continue
            store = open_store(m.blob.store.url, **m.blob.store.options)
            where = self.path(m)
            for file in where.rglob("*"):
                if file.is_file():
                    key = f"{m.blob.path}/{file.relative_to(where).as_posix()}".lstrip("/")
                    store.put_file(str(file), key)

    def abort(self) -> None:
        return None

    def cleanup(self) -> None:
        for m in self.mounts:
            if m.kind == "scratch":
                shutil.rmtree(self.path(m), ignore_errors=True)
