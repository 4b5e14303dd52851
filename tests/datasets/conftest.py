"""The datasets suite runs against a local folder, SeaweedFS (S3) and Azurite."""

from __future__ import annotations

from typing import Any

import pytest
from tests.storage.conftest import make_store

from mizzen.datasets.catalog import Catalog
from mizzen.datasets.model import DatasetSpec
from mizzen.storage import Store, open_store

pytest.importorskip("deltalake")

STORES = [
    "local",
    pytest.param("s3", marks=pytest.mark.s3),
    pytest.param("azure", marks=pytest.mark.azure),
]

TRIPS = {
    "location": "lake/tables/trips",
    "schema": {
        "driver_id": {"type": "string", "nullable": False},
        "day": "date",
        "distance_km": "double",
        "email": "string",
    },
    "subject": "driver_id",
    "personal": ["email"],
    "partitionBy": ["day"],
    "retain": {"column": "day", "duration": "30d"},
}
FEATURES = {
    "location": "lake/tables/features",
    "schema": {"driver_id": {"type": "string", "nullable": False}, "trips": "long"},
    "subject": "driver_id",
}


@pytest.fixture(params=STORES)
def lake(request: pytest.FixtureRequest, tmp_path: Any) -> Store:
    url, options = make_store(request.param, request, tmp_path)
    return open_store(url, **options)


@pytest.fixture
def catalog(lake: Store, tmp_path: Any) -> Catalog:
    specs = {
        "trips": DatasetSpec.model_validate(TRIPS),
        "features": DatasetSpec.model_validate(FEATURES),
    }
    return Catalog(specs, {"lake": lake}, lake.child("project"))
