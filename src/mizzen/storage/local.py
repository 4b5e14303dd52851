"""A local folder as a store (the embedded default)."""

from __future__ import annotations

import builtins
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from mizzen.storage.base import ObjectInfo, Store


def url_to_path(url: str) -> Path:
    if url.startswith("file://"):
        return Path(unquote(urlparse(url).path))
    return Path(url).resolve()


class LocalStore(Store):
    def __init__(self, url: str, **options: Any) -> None:
        self.root = url_to_path(url)
        self.url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        key = key.strip("/")
        if ".." in key.split("/"):
            raise ValueError(f"key {key!r} escapes the store")
        return self.root / key if key else self.root

    def read_bytes(self, key: str) -> bytes:
        return self._path(key).read_bytes()

    def write_bytes(self, key: str, data: bytes) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def create(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Write aside, then link into place: O_EXCL semantics without a half-written object.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            return True
        finally:
            Path(tmp).unlink(missing_ok=True)

    def exists(self, key: str) -> bool:
        return self._path(key).exists()

    def delete(self, key: str) -> None:
        path = self._path(key)
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)

    def list(self, prefix: str = "", *, recursive: bool = True) -> Iterator[ObjectInfo]:
        base = self._path(prefix)
        if base.is_file():
            st = base.stat()
            yield ObjectInfo(prefix.strip("/"), st.st_size, f"{st.st_mtime_ns}-{st.st_size}")
            return
        if not base.is_dir():
            return
        walker = (
            os.walk(base)
            if recursive
            else [(str(base), [], [e.name for e in os.scandir(base) if e.is_file()])]
        )
        for dirpath, dirnames, filenames in walker:
            dirnames.sort()
            for name in sorted(filenames):
                if name.startswith(".tmp-"):
                    continue
                full = Path(dirpath) / name
                st = full.stat()
                rel = full.relative_to(self.root).as_posix()
                yield ObjectInfo(rel, st.st_size, f"{st.st_mtime_ns}-{st.st_size}")

    def list_dirs(self, prefix: str = "") -> builtins.list[str]:
        base = self._path(prefix)
        if not base.is_dir():
            return []
        return sorted(e.name for e in os.scandir(base) if e.is_dir())

    def get_file(self, key: str, local_path: str) -> None:
        Path(local_path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self._path(key), local_path)

    def put_file(self, local_path: str, key: str) -> None:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        os.close(fd)
        try:
            shutil.copyfile(local_path, tmp)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
