"""The declaration model: what it accepts, and errors that name the field and the fix."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from mizzen.datasets.model import DatasetSpec, parse_ref
from mizzen.datasets.types import arrow_type, logical_name, parse_type

BASE: dict[str, Any] = {
    "location": "lake/tables/trips",
    "schema": {"driver_id": {"type": "string", "nullable": False}, "day": "date", "km": "double"},
}


def errors(**changes: Any) -> list[tuple[tuple[Any, ...], str]]:
    with pytest.raises(ValidationError) as info:
        DatasetSpec.model_validate({**BASE, **changes})
    return [(e["loc"], e["msg"]) for e in info.value.errors()]


def test_a_full_declaration() -> None:
    spec = DatasetSpec.model_validate(
        {
            **BASE,
            "schema": {**BASE["schema"], "email": "str", "fare": "decimal(10, 2)"},
            "subject": "driver_id",
            "personal": ["email"],
            "partitionBy": ["day"],
            "retain": {"column": "day", "duration": "400d"},
            "timeTravel": "1d",
            "owner": "data@example.com",
        }
    )
    assert spec.location.store == "lake" and spec.location.path == "tables/trips"
    assert spec.columns["email"].type == "string"  # alias normalised
    assert spec.columns["fare"].type == "decimal(10,2)"
    assert spec.personal_columns == ["driver_id", "email"]
    assert spec.retain is not None and spec.retain.seconds == 400 * 86400
    assert spec.time_travel_seconds == 86400
    schema = spec.arrow_schema()
    assert str(schema.field("fare").type) == "decimal128(10, 2)"
    assert schema.field("driver_id").nullable is False


def test_unknown_type_names_the_column_and_suggests() -> None:
    [(loc, msg)] = errors(schema={"km": "doubel"})
    assert loc == ("schema", "km", "type")
    assert "did you mean 'double'" in msg


def test_subject_must_be_a_declared_column() -> None:
    [(loc, msg)] = errors(subject="driver")
    assert loc == ("subject",)
    assert "'driver' is not a column" in msg and "did you mean 'driver_id'" in msg


def test_subject_type_and_personal_list() -> None:
    [(loc, msg)] = errors(subject="km")
    assert loc == ("subject",) and "km" in msg and "double" in msg
    [(loc, msg)] = errors(personal=["day", "emial"])
    assert loc == ("personal",) and "personal[1]" in msg


def test_partitioning_by_personal_data_is_refused() -> None:
    [(loc, msg)] = errors(subject="driver_id", partitionBy=["driver_id"])
    assert loc == ("partitionBy",)
    assert "personal data" in msg and "erasure" in msg


def test_retention_needs_a_date_column() -> None:
    [(loc, msg)] = errors(retain={"column": "km", "duration": "30d"})
    assert loc == ("retain",) and "date or timestamp" in msg
    [(loc, msg)] = errors(retain={"column": "day", "duration": "soon"})
    assert loc == ("retain", "duration") and "not a duration" in msg


def test_location_and_unknown_keys() -> None:
    [(loc, msg)] = errors(location="lake")
    assert loc == ("location",) and "its own folder" in msg
    [(loc, _)] = errors(partiton_by=["day"])
    assert loc == ("partiton_by",)
    [(loc, msg)] = errors(format="iceberg")
    assert loc == ("format",) and "delta" in msg


def test_column_names_differing_in_case_are_refused() -> None:
    [(loc, msg)] = errors(schema={"Day": "date", "day": "date"})
    assert loc == ("schema",) and "differ only in case" in msg


def test_type_vocabulary_round_trips_through_arrow() -> None:
    for name in ["string", "long", "double", "date", "timestamp", "timestamp_ntz", "array<long>"]:
        assert logical_name(arrow_type(name)) == name
    assert parse_type("int64") == "long" and parse_type("list<int32>") == "array<integer>"
    with pytest.raises(ValueError, match="precision and scale"):
        parse_type("decimal")


def test_refs() -> None:
    assert parse_ref("trips@12").version == 12
    when = parse_ref("trips@2026-11-01T10:00:00Z").as_of
    assert when is not None and when.tzinfo is not None
    assert str(parse_ref("trips")) == "trips"
    with pytest.raises(ValueError, match="version number"):
        parse_ref("trips@yesterday")
