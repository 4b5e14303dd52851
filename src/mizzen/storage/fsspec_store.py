"""Stores over fsspec: S3 (and S3-compatible), Azure Blob, Google Cloud Storage, memory.

Credentials are never part of the spec. Each backend finds them where its ecosystem keeps
them (AWS env vars/profiles/instance roles, `AZURE_STORAGE_*` env vars/managed identity,
Google application default credentials), or from keyword options that
`mizzen.storage.project.open_ref` fills from the spec's store `secret`.

Conditional create (`Store.create`) is the one primitive the registry builds on:
S3 `PutObject` with `If-None-Match: *`, Azure `upload_blob(overwrite=False)` (an
`If-None-Match: *` header), GCS `ifGenerationMatch=0`. All three go through fsspec's
`pipe_file(..., mode="create")`.
"""

from __future__ import annotations

import builtins
import contextlib
import time
from collections.abc import Iterator
from typing import Any

import fsspec

from mizzen.errors import StoreError
from mizzen.storage.base import ObjectInfo, Store


class FsspecStore(Store):
    """A store rooted at `url` on an fsspec filesystem."""

    protocol = ""

    def __init__(self, url: str, **options: Any) -> None:
        self.url = url.rstrip("/")
        self._options = dict(options)
        self.fs = self._make_fs(dict(options))
        self.root = self.fs._strip_protocol(self.url).rstrip("/")

    def _make_fs(self, options: dict[str, Any]) -> Any:
        return fsspec.filesystem(self.protocol, use_listings_cache=False, **options)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self._options)

    def _path(self, key: str) -> str:
        key = key.strip("/")
        if ".." in key.split("/"):
            raise ValueError(f"key {key!r} escapes the store")
        return f"{self.root}/{key}" if key else self.root

    def _key(self, path: str) -> str:
        path = path.rstrip("/")
        if self.root.startswith("/") and not path.startswith("/"):
            path = "/" + path
        return path[len(self.root) :].lstrip("/")

    # --- objects ------------------------------------------------------------------------
    def read_bytes(self, key: str) -> bytes:
        try:
            data: bytes = self.fs.cat_file(self._path(key))
        except FileNotFoundError:
            raise
        except IsADirectoryError:
            raise FileNotFoundError(key) from None
        return data

    def write_bytes(self, key: str, data: bytes) -> None:
        self.fs.pipe_file(self._path(key), data)

    def create(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        for attempt in range(8):
            try:
                self.fs.pipe_file(path, data, mode="create")
                return True
            except FileExistsError:
                return False
            except OSError as exc:
                code = _error_code(exc)
                if code == "PreconditionFailed":
                    return False
                if code in ("ConditionalRequestConflict", "OperationAborted"):
                    # S3: another conditional write to this key is in flight; retrying
                    # resolves to 412 (it won) or 200 (it failed).
                    time.sleep(0.05 * (attempt + 1))
                    continue
                raise
        raise StoreError(f"conditional create of {key} kept conflicting on {self.url}")

    def exists(self, key: str) -> bool:
        try:
            return bool(self.fs.isfile(self._path(key)))
        except FileNotFoundError:
            return False

    def delete(self, key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._path(key))

    def delete_prefix(self, prefix: str) -> None:
        paths = [self._path(info.key) for info in self.list(prefix)]
        if paths:
            self.fs.rm(paths)

    def list(self, prefix: str = "", *, recursive: bool = True) -> Iterator[ObjectInfo]:
        base = self._path(prefix)
        try:
            if recursive:
                found = self.fs.find(base, detail=True, withdirs=False)
                entries = list(found.values())
            else:
                entries = [e for e in self.fs.ls(base, detail=True) if e.get("type") == "file"]
        except (FileNotFoundError, NotADirectoryError):
            return
        for entry in sorted(entries, key=lambda e: e["name"]):
            if entry.get("type") != "file" or entry["name"].endswith("/"):
                continue
            key = self._key(entry["name"])
            if not key or (
                prefix and key != prefix.strip("/") and not key.startswith(prefix.strip("/") + "/")
            ):
                continue
            yield ObjectInfo(key, int(entry.get("size") or 0), object_version(entry))

    def list_dirs(self, prefix: str = "") -> builtins.list[str]:
        try:
            entries = self.fs.ls(self._path(prefix), detail=True)
        except (FileNotFoundError, NotADirectoryError):
            return []
        names = {
            e["name"].rstrip("/").rsplit("/", 1)[-1]
            for e in entries
            if e.get("type") == "directory"
        }
        return sorted(n for n in names if n)

    def get_file(self, key: str, local_path: str) -> None:
        from pathlib import Path

        Path(local_path).parent.mkdir(parents=True, exist_ok=True)
        self.fs.get_file(self._path(key), local_path)

    def put_file(self, local_path: str, key: str) -> None:
        self.fs.put_file(local_path, self._path(key))

    def info(self, key: str) -> ObjectInfo:
        entry = self.fs.info(self._path(key))
        return ObjectInfo(key.strip("/"), int(entry.get("size") or 0), object_version(entry))


def object_version(entry: dict[str, Any]) -> str:
    """What changes whenever an object's content changes: etag/generation, else mtime+size."""
    for name in ("ETag", "etag", "generation", "md5Hash"):
        value = entry.get(name)
        if value:
            return str(value).strip('"')
    for name in ("LastModified", "last_modified", "mtime", "updated", "created"):
        value = entry.get(name)
        if value:
            return f"{value}-{entry.get('size')}"
    return str(entry.get("size"))


def _error_code(exc: BaseException) -> str:
    """The service error code behind an fsspec OSError (botocore ClientError for S3)."""
    seen: BaseException | None = exc
    while seen is not None:
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            return str(response.get("Error", {}).get("Code", ""))
        code = getattr(seen, "error_code", None)
        if code:
            return str(code)
        seen = seen.__cause__ or seen.__context__
    return ""


class S3Store(FsspecStore):
    """`s3://bucket/prefix`. Options: `endpoint_url` for S3-compatible servers, `region`,
    anything else s3fs takes. Without `region`, it comes from `AWS_DEFAULT_REGION`/profiles
    like every AWS tool.

    A server error (HTTP 500, 502, 503, 504) that outlasts botocore's own attempts (5 in about
    6 s) is tried again by s3fs, up to 5 rounds: a run's outputs outlast a busy S3-compatible
    server, while an endpoint that refuses connections or a 4xx fails as soon as before."""

    protocol = "s3"

    def __init__(self, url: str, **options: Any) -> None:
        if url.startswith("s3a://"):
            url = "s3://" + url[len("s3a://") :]
        super().__init__(url, **options)

    def _make_fs(self, options: dict[str, Any]) -> Any:
        client = dict(options.pop("client_kwargs", {}))
        endpoint = options.pop("endpoint_url", None)
        if endpoint:
            client["endpoint_url"] = endpoint
        region = options.pop("region", None)  # the same option the Mountpoint CSI volume reads
        if region:
            client["region_name"] = region
        if client:
            options["client_kwargs"] = client
        _retry_server_errors()
        return fsspec.filesystem("s3", use_listings_cache=False, **options)


def _retry_server_errors() -> None:
    """Tell s3fs (once per process, keeping any handler set before) that a ClientError of a
    passing server failure (500, 502, 503, 504) is worth another round; by itself it retries
    only throttling."""
    import s3fs.core

    previous = s3fs.core.CUSTOM_ERROR_HANDLER
    if getattr(previous, "mizzen", False):
        return

    def handler(exc: BaseException) -> bool:
        response = getattr(exc, "response", None)
        status = (response or {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
        return status in (500, 502, 503, 504) or bool(previous(exc))  # 501 never clears

    handler.mizzen = True  # type: ignore[attr-defined]
    s3fs.core.set_custom_error_handler(handler)


class AzureStore(FsspecStore):
    """`abfs://container@account.dfs.core.windows.net/prefix` (or `az://container/prefix`
    with the account from the connection string / `AZURE_STORAGE_ACCOUNT_NAME`)."""

    protocol = "abfs"

    def _make_fs(self, options: dict[str, Any]) -> Any:
        from urllib.parse import urlparse

        host = urlparse(self.url).netloc
        if "@" in host and "account_name" not in options and "connection_string" not in options:
            options["account_name"] = host.split("@", 1)[1].split(".", 1)[0]
        return fsspec.filesystem("abfs", use_listings_cache=False, **options)


class GCSStore(FsspecStore):
    """`gs://bucket/prefix`. Options: anything gcsfs takes (`project`, `endpoint_url`).

    Tested only through the code it shares with the other fsspec stores (no GCS server runs
    in CI); the conditional create uses gcsfs's `ifGenerationMatch=0`."""

    protocol = "gcs"

    def _make_fs(self, options: dict[str, Any]) -> Any:
        token = options.get("token")
        if isinstance(token, str) and token.lstrip().startswith("{"):
            import json

            options["token"] = json.loads(token)
        return fsspec.filesystem("gcs", use_listings_cache=False, **options)


class MemoryStore(FsspecStore):
    """`memory://name/prefix`: in-process, for tests and dry runs."""

    protocol = "memory"

    def _make_fs(self, options: dict[str, Any]) -> Any:
        return fsspec.filesystem("memory", **options)
