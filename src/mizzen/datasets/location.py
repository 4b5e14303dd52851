"""Where a table lives: a `Store` (URL + fsspec options) -> a Delta table URI and the storage
options of delta-rs (its own object-store client, not fsspec).

| store | table URI | delta-rs options from the store's fsspec options |
|---|---|---|
| local folder | the folder path | none |
| `s3://bucket/p` | `s3://bucket/p/<path>` | key, secret, token, endpoint_url (+ allow http), region, profile, anon |
| `abfs://c@acct…/p`, `az://c/p` | `az://c/p/<path>` | account from the URL, account_name, account_key, sas_token, connection_string, tenant/client id, client_secret, anon |
| `gs://bucket/p` | `gs://bucket/p/<path>` | token (service-account JSON or a key file path) |

Credentials found in the usual environment variables (`AWS_*`, `AZURE_STORAGE_*`, Google
application default credentials) are read by delta-rs itself; `AZURE_STORAGE_CONNECTION_STRING`
(which delta-rs does not read) is translated like the `connection_string` option. An option
that has no delta-rs equivalent is refused, never dropped.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlparse

from mizzen.errors import UsageError
from mizzen.storage.base import Store, protocol_of


@dataclass(frozen=True)
class TableLocation:
    uri: str  # what delta-rs opens
    storage_options: dict[str, str] = field(default_factory=dict, repr=False)
    store: Store | None = field(default=None, repr=False, compare=False)
    key: str = ""  # the table's folder inside `store`

    def child(self, suffix: str) -> TableLocation:
        suffix = suffix.strip("/")
        return TableLocation(
            f"{self.uri.rstrip('/')}/{suffix}",
            self.storage_options,
            self.store,
            f"{self.key}/{suffix}".strip("/"),
        )


def table_location(store: Store, path: str) -> TableLocation:
    """The location of the table at `path` inside `store`."""
    proto = protocol_of(store.url)
    path = path.strip("/")
    options = dict(store.options)
    if proto == "file":
        root = getattr(store, "root", None)
        base = str(root) if root is not None else urlparse(store.url).path
        return TableLocation(os.path.join(base, path), {}, store, path)
    if proto in ("s3", "s3a"):
        bucket_path = store.url.split("://", 1)[1].rstrip("/")
        return TableLocation(f"s3://{bucket_path}/{path}", _s3_options(options), store, path)
    if proto in ("abfs", "abfss", "az"):
        uri, account = _azure_uri(store.url)
        return TableLocation(
            f"{uri}/{path}", _azure_options(options, account, store.url), store, path
        )
    if proto in ("gs", "gcs"):
        bucket_path = store.url.split("://", 1)[1].rstrip("/")
        return TableLocation(f"gs://{bucket_path}/{path}", _gcs_options(options), store, path)
    raise UsageError(
        f"datasets cannot live in a {proto}:// store ({store.url})",
        hint="use a local folder, s3://, abfs:// (az://) or gs:// store",
    )


def _refuse(store_kind: str, unknown: set[str]) -> None:
    if unknown:
        raise UsageError(
            f"{store_kind} store option(s) {', '.join(sorted(unknown))} have no equivalent in the "
            "Delta Lake client (delta-rs), so datasets cannot honour them",
            hint="remove them from the store's options, or keep datasets in another store",
        )


def _s3_options(options: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    client = dict(options.pop("client_kwargs", None) or {})
    endpoint = options.pop("endpoint_url", None) or client.pop("endpoint_url", None)
    region = options.pop("region", None) or client.pop("region_name", None)
    _refuse("s3 client_kwargs", set(client))
    simple = {"key": "aws_access_key_id", "secret": "aws_secret_access_key"}
    simple |= {"token": "aws_session_token", "profile": "aws_profile"}
    for name, target in simple.items():
        value = options.pop(name, None)
        if value:
            out[target] = str(value)
    if options.pop("anon", False):
        out["aws_skip_signature"] = "true"
    _refuse("s3", set(options))
    if endpoint:
        out["aws_endpoint_url"] = str(endpoint)
        if str(endpoint).startswith("http://"):
            out["aws_allow_http"] = "true"
    if region:
        out["aws_region"] = str(region)
    elif not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")) and endpoint:
        out["aws_region"] = "us-east-1"  # S3-compatible servers ignore it; the client needs one
    return out


def _azure_uri(url: str) -> tuple[str, str | None]:
    """`az://container/prefix` and the account named in an `abfs://container@account…` URL."""
    parsed = urlparse(url)
    container, account = parsed.netloc, None
    if "@" in container:
        container, host = container.split("@", 1)
        account = host.split(".", 1)[0]
    prefix = parsed.path.strip("/")
    return f"az://{container}" + (f"/{prefix}" if prefix else ""), account


def parse_connection_string(text: str) -> dict[str, str]:
    """Azure connection string -> delta-rs options."""
    parts = dict(p.split("=", 1) for p in text.strip().strip(";").split(";") if "=" in p)
    out: dict[str, str] = {}
    if parts.get("UseDevelopmentStorage", "").lower() == "true":
        return {"azure_storage_use_emulator": "true"}
    names = {"AccountName": "azure_storage_account_name", "AccountKey": "azure_storage_account_key"}
    names["SharedAccessSignature"] = "azure_storage_sas_key"
    for key, target in names.items():
        if parts.get(key):
            out[target] = parts[key]
    endpoint = parts.get("BlobEndpoint")
    if endpoint:
        out["azure_storage_endpoint"] = endpoint.rstrip("/")
        if endpoint.startswith("http://"):
            out["azure_allow_http"] = "true"
    return out


def _azure_options(options: dict[str, Any], account: str | None, url: str) -> dict[str, str]:
    out: dict[str, str] = {}
    conn = options.pop("connection_string", None)
    if not conn and not options and not os.environ.get("AZURE_STORAGE_ACCOUNT_KEY"):
        conn = os.environ.get("AZURE_STORAGE_CONNECTION_STRING")
    if conn:
        out.update(parse_connection_string(str(conn)))
    names = {
        "account_name": "azure_storage_account_name",
        "account_key": "azure_storage_account_key",
        "sas_token": "azure_storage_sas_key",
        "tenant_id": "azure_storage_tenant_id",
        "client_id": "azure_storage_client_id",
        "client_secret": "azure_storage_client_secret",
    }
    for name, target in names.items():
        value = options.pop(name, None)
        if value:
            out[target] = str(value).lstrip("?") if name == "sas_token" else str(value)
    if options.pop("anon", False):
        out["azure_skip_signature"] = "true"
    _refuse("azure", set(options))
    if account and "azure_storage_account_name" not in out:
        out["azure_storage_account_name"] = account
    named = out.get("azure_storage_account_name") or os.environ.get("AZURE_STORAGE_ACCOUNT_NAME")
    if not named and out.get("azure_storage_use_emulator") != "true":
        raise UsageError(
            f"no Azure storage account for {url}",
            hint="name it in the URL (abfs://container@ACCOUNT.dfs.core.windows.net), "
            "the account_name option, or AZURE_STORAGE_ACCOUNT_NAME",
        )
    return out


def _gcs_options(options: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    token = options.pop("token", None)
    options.pop("project", None)  # only selects a billing project for listings in gcsfs
    if isinstance(token, dict):
        out["google_service_account_key"] = json.dumps(token)
    elif isinstance(token, str) and token.lstrip().startswith("{"):
        out["google_service_account_key"] = token
    elif token == "anon":
        out["google_skip_signature"] = "true"
    elif isinstance(token, str) and token not in ("google_default", "cloud", "cache"):
        out["google_service_account"] = token  # a key file path
    _refuse("gcs", set(options))
    return out


def arrow_filesystem(store: Store) -> tuple[Any, str]:
    """A pyarrow filesystem over `store` (its fsspec filesystem and credentials) and the path
    of the store's root on it, for reading staged Parquet files."""
    import pyarrow.fs as pafs

    if protocol_of(store.url) == "file":
        root = getattr(store, "root", None)
        return pafs.LocalFileSystem(), str(root if root is not None else urlparse(store.url).path)
    fs = getattr(store, "fs", None)
    root = getattr(store, "root", None)
    if fs is None or root is None:
        raise UsageError(f"cannot read Parquet files from {store.url} ({type(store).__name__})")
    return pafs.PyFileSystem(pafs.FSSpecHandler(fs)), str(root)
