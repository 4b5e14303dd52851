"""Store URL + fsspec options -> delta-rs table URI and storage options."""

from __future__ import annotations

import pytest

from mizzen.datasets.location import parse_connection_string, table_location
from mizzen.errors import UsageError
from mizzen.storage import open_store


def test_local_folder(tmp_path) -> None:  # type: ignore[no-untyped-def]
    loc = table_location(open_store(tmp_path.as_uri()), "tables/trips")
    assert loc.uri == str(tmp_path / "tables" / "trips") and loc.storage_options == {}


def test_s3_options_map_to_delta_rs() -> None:
    pytest.importorskip("s3fs")
    store = open_store(
        "s3://bucket/team",
        endpoint_url="http://127.0.0.1:8333",
        key="k",
        secret="s",
        region="eu-west-1",
    )
    loc = table_location(store, "tables/trips")
    assert loc.uri == "s3://bucket/team/tables/trips"
    assert loc.storage_options == {
        "aws_access_key_id": "k",
        "aws_secret_access_key": "s",
        "aws_endpoint_url": "http://127.0.0.1:8333",
        "aws_allow_http": "true",
        "aws_region": "eu-west-1",
    }


def test_an_option_delta_rs_cannot_honour_is_refused() -> None:
    pytest.importorskip("s3fs")
    store = open_store("s3://bucket", endpoint_url="http://x", config_kwargs={"retries": 3})
    with pytest.raises(UsageError, match="config_kwargs"):
        table_location(store, "t")


def test_azure_account_from_url_and_connection_string() -> None:
    pytest.importorskip("adlfs")
    store = open_store("abfs://lake@acct.dfs.core.windows.net/team", account_key="a2V5")
    loc = table_location(store, "trips")
    assert loc.uri == "az://lake/team/trips"
    assert loc.storage_options == {
        "azure_storage_account_name": "acct",
        "azure_storage_account_key": "a2V5",
    }
    conn = "DefaultEndpointsProtocol=http;AccountName=dev;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:10000/dev;"
    assert parse_connection_string(conn) == {
        "azure_storage_account_name": "dev",
        "azure_storage_account_key": "a2V5",
        "azure_storage_endpoint": "http://127.0.0.1:10000/dev",
        "azure_allow_http": "true",
    }


def test_memory_store_is_refused() -> None:
    with pytest.raises(UsageError, match="memory://"):
        table_location(open_store("memory://x/y"), "t")
