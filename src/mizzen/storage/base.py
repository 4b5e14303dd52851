"""The `Store`: one abstract base class over blob storage, and a registry of protocols.

A store is addressed by URL (`file:///…`, `s3://bucket/prefix`, `abfs://container@account…`,
`gs://bucket`). Keys are '/'-separated paths relative to the store's root. Backends are
imported lazily; a missing one says which extra to install.
"""

from __future__ import annotations

import builtins
import importlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mizzen.errors import MissingExtraError, StoreError, UsageError


@dataclass(frozen=True)
class ObjectInfo:
    key: str  # relative to the store root
    size: int
    version: str  # etag, or mtime for folders: changes whenever the content changes


class Store(ABC):
    """Blob storage rooted at `url`."""

    url: str

    @abstractmethod
    def read_bytes(self, key: str) -> bytes:
        """The object's content; `FileNotFoundError` when absent."""

    @abstractmethod
    def write_bytes(self, key: str, data: bytes) -> None:
        """Create or replace an object (atomic for readers: old or new, never half)."""

    @abstractmethod
    def create(self, key: str, data: bytes) -> bool:
        """Create only if absent (If-None-Match / O_EXCL). True if this call created it."""

    @abstractmethod
    def exists(self, key: str) -> bool: ...

    @abstractmethod
    def delete(self, key: str) -> None:
        """Remove an object; absent is fine."""

    @abstractmethod
    def list(self, prefix: str = "", *, recursive: bool = True) -> Iterator[ObjectInfo]:
        """Objects under `prefix` (a folder-like prefix, '' for everything)."""

    @abstractmethod
    def list_dirs(self, prefix: str = "") -> builtins.list[str]:
        """Immediate child 'folders' under `prefix` (names only)."""

    @abstractmethod
    def get_file(self, key: str, local_path: str) -> None: ...

    @abstractmethod
    def put_file(self, local_path: str, key: str) -> None: ...

    def delete_prefix(self, prefix: str) -> None:
        for info in list(self.list(prefix)):
            self.delete(info.key)

    def child(self, prefix: str) -> Store:
        """A store rooted at `prefix` inside this one."""
        return open_store(self.url.rstrip("/") + "/" + prefix.strip("/"), **self.options)

    @property
    def options(self) -> dict[str, Any]:
        return {}


# protocol -> (module:class, extra, python module that must import)
_BACKENDS: dict[str, tuple[str, str, str]] = {
    "file": ("mizzen.storage.local:LocalStore", "", ""),
    "s3": ("mizzen.storage.fsspec_store:S3Store", "s3", "s3fs"),
    "s3a": ("mizzen.storage.fsspec_store:S3Store", "s3", "s3fs"),
    "abfs": ("mizzen.storage.fsspec_store:AzureStore", "azure", "adlfs"),
    "abfss": ("mizzen.storage.fsspec_store:AzureStore", "azure", "adlfs"),
    "az": ("mizzen.storage.fsspec_store:AzureStore", "azure", "adlfs"),
    "gs": ("mizzen.storage.fsspec_store:GCSStore", "gcs", "gcsfs"),
    "gcs": ("mizzen.storage.fsspec_store:GCSStore", "gcs", "gcsfs"),
    "memory": ("mizzen.storage.fsspec_store:MemoryStore", "", ""),
}


def register_backend(protocol: str, target: str, extra: str = "", module: str = "") -> None:
    """Add a store protocol: `target` is 'package.module:Class'."""
    _BACKENDS[protocol] = (target, extra, module)


def protocol_of(url: str) -> str:
    return url.split("://", 1)[0] if "://" in url else "file"


def open_store(url: str, **options: Any) -> Store:
    """The store for `url`, with fsspec storage `options` (endpoint_url, …)."""
    proto = protocol_of(url)
    if proto not in _BACKENDS:
        raise UsageError(
            f"unknown store protocol {proto!r} in {url!r}",
            hint=f"supported: {', '.join(sorted(_BACKENDS))}",
        )
    target, extra, module = _BACKENDS[proto]
    if module:
        try:
            importlib.import_module(module)
        except ImportError:
            raise MissingExtraError(f"the {proto}:// store", extra, module) from None
    mod_name, cls_name = target.split(":")
    cls = getattr(importlib.import_module(mod_name), cls_name)
    try:
        store: Store = cls(url, **options)
    except (ValueError, OSError) as exc:
        raise StoreError(f"cannot open store {url}: {exc}") from exc
    return store
