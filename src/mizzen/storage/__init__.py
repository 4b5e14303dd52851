"""Blob stores, cached blob volumes, run records and the model registry."""

from mizzen.storage.base import ObjectInfo, Store, open_store, register_backend

__all__ = ["ObjectInfo", "Store", "open_store", "register_backend"]
