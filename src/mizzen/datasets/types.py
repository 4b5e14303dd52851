"""The column type vocabulary of a dataset schema, and its mapping to Arrow.

Names follow Spark/Delta (what `spark.read.format("delta")` shows); Arrow-style aliases are
accepted and normalised:

    string  binary  boolean  byte  short  integer  long  float  double
    date  timestamp  timestamp_ntz  decimal(P,S)  array<T>

`timestamp` is an instant (UTC, microseconds); `timestamp_ntz` a wall-clock time without a
zone. Parsing is pure Python (the spec imports it); the Arrow side imports pyarrow lazily.
"""

from __future__ import annotations

import difflib
import re
from typing import Any

SCALARS = (
    "string",
    "binary",
    "boolean",
    "byte",
    "short",
    "integer",
    "long",
    "float",
    "double",
    "date",
    "timestamp",
    "timestamp_ntz",
)
ALIASES = {
    "str": "string",
    "bool": "boolean",
    "int8": "byte",
    "int16": "short",
    "int32": "integer",
    "int": "integer",
    "int64": "long",
    "bigint": "long",
    "float32": "float",
    "float64": "double",
}
# Safe widening: data of the key type is accepted for a column of any type in the value.
WIDENS_TO = {
    "byte": {"short", "integer", "long"},
    "short": {"integer", "long"},
    "integer": {"long"},
    "float": {"double"},
}
DATE_TYPES = ("date", "timestamp", "timestamp_ntz")
_DECIMAL = re.compile(r"^decimal\(\s*(\d+)\s*,\s*(\d+)\s*\)$")
_ARRAY = re.compile(r"^(?:array|list)<(.+)>$")


def parse_type(text: object) -> str:
    """The canonical name of a type (`int64` -> `long`); ValueError with a suggestion."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"expected a type name ({', '.join(SCALARS)}, decimal(P,S), array<T>)")
    name = text.strip().lower().replace(" ", "")
    name = ALIASES.get(name, name)
    if name in SCALARS:
        return name
    match = _DECIMAL.match(name)
    if match:
        precision, scale = int(match.group(1)), int(match.group(2))
        if not 1 <= precision <= 38:
            raise ValueError(f"{text!r}: decimal precision must be 1 to 38")
        if scale > precision:
            raise ValueError(f"{text!r}: decimal scale cannot exceed its precision")
        return f"decimal({precision},{scale})"
    match = _ARRAY.match(name)
    if match:
        return f"array<{parse_type(match.group(1))}>"
    if name == "decimal":
        raise ValueError("decimal needs a precision and scale, e.g. decimal(10,2)")
    close = difflib.get_close_matches(name, [*SCALARS, *ALIASES], n=1, cutoff=0.6)
    hint = f"; did you mean {ALIASES.get(close[0], close[0])!r}?" if close else ""
    raise ValueError(
        f"unknown type {text!r}: expected one of {', '.join(SCALARS)}, decimal(P,S) or array<T>{hint}"
    )


def arrow_type(name: str) -> Any:
    """The Arrow type a canonical name is stored as."""
    import pyarrow as pa

    simple = {
        "string": pa.string(),
        "binary": pa.binary(),
        "boolean": pa.bool_(),
        "byte": pa.int8(),
        "short": pa.int16(),
        "integer": pa.int32(),
        "long": pa.int64(),
        "float": pa.float32(),
        "double": pa.float64(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("us", tz="UTC"),
        "timestamp_ntz": pa.timestamp("us"),
    }
    if name in simple:
        return simple[name]
    match = _DECIMAL.match(name)
    if match:
        return pa.decimal128(int(match.group(1)), int(match.group(2)))
    match = _ARRAY.match(name)
    if match:
        return pa.list_(arrow_type(match.group(1)))
    raise ValueError(f"not a canonical type name: {name!r}")


def logical_name(dtype: Any) -> str | None:
    """The vocabulary name of an Arrow type (string, large_string and string_view are all
    `string`; any timestamp unit is `timestamp`), or None when Delta cannot store it."""
    import pyarrow as pa
    import pyarrow.types as t

    if t.is_string(dtype) or t.is_large_string(dtype) or _is(dtype, "is_string_view"):
        return "string"
    if t.is_binary(dtype) or t.is_large_binary(dtype) or _is(dtype, "is_binary_view"):
        return "binary"
    if t.is_boolean(dtype):
        return "boolean"
    ints = {pa.int8(): "byte", pa.int16(): "short", pa.int32(): "integer", pa.int64(): "long"}
    if dtype in ints:
        return ints[dtype]
    if t.is_float32(dtype):
        return "float"
    if t.is_float64(dtype):
        return "double"
    if t.is_date32(dtype) or t.is_date64(dtype):
        return "date"
    if t.is_timestamp(dtype):
        return "timestamp" if dtype.tz else "timestamp_ntz"
    if t.is_decimal(dtype):
        return f"decimal({dtype.precision},{dtype.scale})"
    if t.is_list(dtype) or t.is_large_list(dtype) or _is(dtype, "is_list_view"):
        inner = logical_name(dtype.value_type)
        return f"array<{inner}>" if inner else None
    return None


def describe(dtype: Any) -> str:
    """How an Arrow type is named in a violation: its vocabulary name, else Arrow's."""
    return logical_name(dtype) or str(dtype)


def accepts(declared: str, actual: str) -> bool:
    """Can data of type `actual` be stored losslessly in a column declared `declared`?"""
    return actual == declared or declared in WIDENS_TO.get(actual, set())


def _is(dtype: Any, check: str) -> bool:
    import pyarrow.types as t

    fn = getattr(t, check, None)
    return bool(fn(dtype)) if fn else False
