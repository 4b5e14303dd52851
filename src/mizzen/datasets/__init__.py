"""Datasets: named Delta Lake tables in a store, with schemas as contracts, versions,
lineage, retention and erasure. `model` imports only pydantic; the rest imports `deltalake`
and `pyarrow` (the `mizzen[datasets]` extra) when first used."""

from __future__ import annotations

from typing import Any

from mizzen.datasets.model import ColumnSpec, DatasetRef, DatasetSpec, RetentionSpec, parse_ref

__all__ = [
    "Catalog",
    "ColumnSpec",
    "ContractReport",
    "ContractViolation",
    "DatasetRef",
    "DatasetSpec",
    "DatasetTable",
    "Lineage",
    "RetentionSpec",
    "forget",
    "maintain",
    "parse_ref",
]

_LAZY = {
    "Catalog": "mizzen.datasets.catalog",
    "ContractReport": "mizzen.datasets.contract",
    "ContractViolation": "mizzen.datasets.errors",
    "DatasetTable": "mizzen.datasets.table",
    "Lineage": "mizzen.datasets.lineage",
    "forget": "mizzen.datasets.maintenance",
    "maintain": "mizzen.datasets.maintenance",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(name)
