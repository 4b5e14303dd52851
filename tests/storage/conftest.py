"""One `store` fixture over every backend: local folder, fsspec memory, SeaweedFS, Azurite.

GCS has no server that runs here: `GCSStore` is covered only through the code it shares with
the other fsspec stores (`FsspecStore`), exercised below by memory, S3 and Azure.
"""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from mizzen.storage import Store, open_store

BACKENDS = [
    "local",
    "memory",
    pytest.param("s3", marks=pytest.mark.s3),
    pytest.param("azure", marks=pytest.mark.azure),
]


def make_store(
    kind: str, request: pytest.FixtureRequest, tmp_path: Any
) -> tuple[str, dict[str, Any]]:
    """(url, options) of a fresh, empty store of `kind`."""
    if kind == "local":
        return (tmp_path / "store").as_uri(), {}
    if kind == "memory":
        return f"memory://t-{secrets.token_hex(4)}/root", {}
    if kind == "s3":
        server = request.getfixturevalue("seaweedfs")
        return server.new_bucket() + "/proj", server.options
    if kind == "azure":
        server = request.getfixturevalue("azurite")
        return server.new_container() + "/proj", server.options
    raise AssertionError(kind)


@pytest.fixture(params=BACKENDS)
def store_spec(request: pytest.FixtureRequest, tmp_path: Any) -> tuple[str, dict[str, Any]]:
    return make_store(request.param, request, tmp_path)


@pytest.fixture
def store(store_spec: tuple[str, dict[str, Any]]) -> Store:
    url, options = store_spec
    return open_store(url, **options)
