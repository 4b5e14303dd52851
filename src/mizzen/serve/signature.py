"""Tensor specs, datatypes of the Open Inference Protocol, and input checks against a signature."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

# Open Inference Protocol datatype -> numpy dtype
DATATYPES: dict[str, Any] = {
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "UINT16": np.uint16,
    "UINT32": np.uint32,
    "UINT64": np.uint64,
    "INT8": np.int8,
    "INT16": np.int16,
    "INT32": np.int32,
    "INT64": np.int64,
    "FP16": np.float16,
    "FP32": np.float32,
    "FP64": np.float64,
    "BYTES": np.object_,
}
_NUMPY_TO_DATATYPE = {np.dtype(v).str: k for k, v in DATATYPES.items()}
# ONNX Runtime type strings and common spellings in model.json
_ALIASES = {
    "float": "FP32",
    "float32": "FP32",
    "double": "FP64",
    "float64": "FP64",
    "float16": "FP16",
    "int64": "INT64",
    "int32": "INT32",
    "int16": "INT16",
    "int8": "INT8",
    "uint8": "UINT8",
    "uint16": "UINT16",
    "uint32": "UINT32",
    "uint64": "UINT64",
    "bool": "BOOL",
    "string": "BYTES",
    "str": "BYTES",
    "bytes": "BYTES",
    "object": "BYTES",
}


class BadInput(Exception):
    """The request does not match the model's signature; the message says what was wrong (HTTP 400)."""


def datatype_of(text: str) -> str:
    """Normalise 'tensor(float)', 'float32', 'FP32' to the protocol's datatype name."""
    t = text.strip()
    if t.startswith("tensor(") and t.endswith(")"):
        t = t[7:-1]
    if t.upper() in DATATYPES:
        return t.upper()
    if t.lower() in _ALIASES:
        return _ALIASES[t.lower()]
    raise ValueError(f"unknown tensor type {text!r}")


def datatype_of_array(arr: np.ndarray) -> str:
    if arr.dtype.kind in "OUS":
        return "BYTES"
    return _NUMPY_TO_DATATYPE.get(arr.dtype.str, "BYTES")


@dataclass(frozen=True)
class TensorSpec:
    name: str
    datatype: str
    shape: tuple[int, ...]  # -1 for a dimension of any size

    @property
    def dtype(self) -> Any:
        return DATATYPES[self.datatype]

    @property
    def batched(self) -> bool:
        return bool(self.shape) and self.shape[0] == -1

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "datatype": self.datatype, "shape": list(self.shape)}

    @classmethod
    def from_any(cls, name: str, type_text: str, shape: Sequence[Any] | None) -> TensorSpec:
        dims = tuple(d if isinstance(d, int) and d >= 0 else -1 for d in (shape or []))
        return cls(name, datatype_of(type_text), dims)


def shape_matches(spec: Sequence[int], actual: Sequence[int]) -> bool:
    return len(spec) == len(actual) and all(
        s == -1 or s == a for s, a in zip(spec, actual, strict=True)
    )


def coerce(
    spec: TensorSpec, value: Any, *, datatype: str | None = None, shape: Sequence[int] | None = None
) -> np.ndarray:
    """Build the array for one input from JSON data; raise BadInput naming what is wrong."""
    if datatype is not None and datatype != spec.datatype:
        raise BadInput(
            f"input {spec.name!r}: datatype {datatype} does not match the model's {spec.datatype}"
        )
    try:
        arr = value if isinstance(value, np.ndarray) else np.asarray(value)
    except (ValueError, TypeError) as exc:
        raise BadInput(f"input {spec.name!r}: not a rectangular array ({exc})") from None
    if arr.dtype.kind == "O" and spec.datatype != "BYTES":
        raise BadInput(
            f"input {spec.name!r}: ragged or mixed data, expected {spec.datatype} numbers"
        )
    arr = _cast(spec, arr)
    if shape is not None:
        shape = tuple(shape)
        if any(not isinstance(d, int) or d < 0 for d in shape):
            raise BadInput(f"input {spec.name!r}: shape {list(shape)} is not a list of sizes")
        if arr.size != int(np.prod(shape)):
            raise BadInput(
                f"input {spec.name!r}: {arr.size} values do not fill shape {list(shape)}"
            )
        arr = arr.reshape(shape)
    elif arr.ndim == len(spec.shape) - 1 and spec.batched:
        arr = arr.reshape((1, *arr.shape))  # a single row
    if not shape_matches(spec.shape, arr.shape):
        raise BadInput(
            f"input {spec.name!r}: shape {list(arr.shape)} does not match the model's {_fmt(spec.shape)}"
        )
    return arr


def _cast(spec: TensorSpec, arr: np.ndarray) -> np.ndarray:
    kind = arr.dtype.kind
    want = spec.datatype
    if want == "BYTES":
        if kind not in "OUS":
            raise BadInput(
                f"input {spec.name!r}: expected strings (BYTES), got {datatype_of_array(arr)}"
            )
        return arr.astype(np.object_)
    if kind in "OUS":
        raise BadInput(f"input {spec.name!r}: expected {want} numbers, got strings")
    if want == "BOOL":
        if kind != "b":
            raise BadInput(
                f"input {spec.name!r}: expected BOOL (true/false), got {datatype_of_array(arr)}"
            )
        return arr
    if want.startswith(("INT", "UINT")) and kind == "f" and not np.all(np.mod(arr, 1) == 0):
        raise BadInput(f"input {spec.name!r}: expected {want}, got fractional numbers")
    if kind == "b":
        raise BadInput(f"input {spec.name!r}: expected {want} numbers, got booleans")
    return arr.astype(spec.dtype, copy=False)


def _fmt(shape: Sequence[int]) -> str:
    return "[" + ", ".join("any" if d == -1 else str(d) for d in shape) + "]"


def from_bytes(spec: TensorSpec, raw: memoryview, shape: Sequence[int]) -> np.ndarray:
    """Decode one input sent with the binary tensor extension."""
    if spec.datatype == "BYTES":
        items: list[bytes] = []
        pos = 0
        while pos < len(raw):
            n = int.from_bytes(raw[pos : pos + 4], "little")
            items.append(bytes(raw[pos + 4 : pos + 4 + n]))
            pos += 4 + n
        arr = np.array(items, dtype=np.object_)
    else:
        item = np.dtype(spec.dtype).itemsize
        if len(raw) % item:
            raise BadInput(
                f"input {spec.name!r}: {len(raw)} bytes is not a whole number of {spec.datatype} values"
            )
        arr = np.frombuffer(raw, dtype=spec.dtype)
    if arr.size != int(np.prod(shape)):
        raise BadInput(f"input {spec.name!r}: {arr.size} values do not fill shape {list(shape)}")
    arr = arr.reshape(tuple(shape))
    if not shape_matches(spec.shape, arr.shape):
        raise BadInput(
            f"input {spec.name!r}: shape {list(arr.shape)} does not match the model's {_fmt(spec.shape)}"
        )
    return arr


def to_bytes(arr: np.ndarray) -> bytes:
    if arr.dtype.kind in "OUS":
        parts = []
        for item in arr.ravel():
            b = item if isinstance(item, bytes) else str(item).encode()
            parts.append(len(b).to_bytes(4, "little") + b)
        return b"".join(parts)
    return np.ascontiguousarray(arr).tobytes()
