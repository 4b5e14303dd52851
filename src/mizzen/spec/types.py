"""Scalar types of the spec: names, durations, quantities, cron expressions (pydantic
annotations over the pure parsers in `units`)."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator

from mizzen.spec.units import (
    check_blob,
    check_cron,
    check_env_name,
    check_name,
    expand_cron,
    parse_duration,
    parse_quantity,
    scalar_to_str,
)

__all__ = [
    "check_blob",
    "check_cron",
    "check_env_name",
    "check_name",
    "expand_cron",
    "parse_duration",
    "parse_quantity",
    "scalar_to_str",
]


Name = Annotated[str, AfterValidator(check_name)]

EnvName = Annotated[str, AfterValidator(check_env_name)]

BlobPath = Annotated[str, AfterValidator(check_blob)]


def _duration(value: object) -> str:
    parse_duration(value)
    return value if isinstance(value, str) else f"{value}s"


Duration = Annotated[str, BeforeValidator(_duration, json_schema_input_type=str | int | float)]


def _positive_duration(value: object) -> str:
    if parse_duration(value) <= 0:
        raise ValueError(f"{value!r}: must be longer than zero")
    return _duration(value)


PositiveDuration = Annotated[
    str, BeforeValidator(_positive_duration, json_schema_input_type=str | int | float)
]


def _quantity(value: object) -> str:
    parse_quantity(value)
    return str(value)


Quantity = Annotated[str, BeforeValidator(_quantity, json_schema_input_type=str | int | float)]


Text = Annotated[
    str, BeforeValidator(scalar_to_str, json_schema_input_type=str | int | float | bool)
]


Cron = Annotated[str, AfterValidator(check_cron)]
