"""One entry of the spec's `datasets:` section, as a typed model (pydantic only: cheap to
import, so `mizzen validate` stays fast).

    datasets:
      trips:
        location: lake/tables/trips          # <store>/<path>, like a blob volume
        format: delta
        schema:
          driver_id: {type: string, nullable: false}
          day: date
          distance_km: double
          email: string
        subject: driver_id                   # the column that identifies a person
        personal: [email]                    # further columns holding personal data
        partitionBy: [day]
        retain: {column: day, duration: 400d}
        timeTravel: 7d                       # how long old versions stay readable
        owner: data-team@example.com
        description: One row per trip.

Every error is raised from the field it is about (pydantic `loc`: `schema.distance_km.type`,
`subject`, `partitionBy`, ...) with what was expected, so the spec loader can point at the
line.
"""

from __future__ import annotations

import difflib
import re
from datetime import UTC, datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic.alias_generators import to_camel

from mizzen.datasets.types import DATE_TYPES, parse_type
from mizzen.spec.units import parse_duration

_DATASET_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_COLUMN_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
_STORE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
SUBJECT_TYPES = ("string", "byte", "short", "integer", "long")
NO_PARTITION_TYPES = ("binary", "float", "double")


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=True,
        frozen=True,
        defer_build=True,
    )


def check_dataset_name(name: str) -> str:
    """A dataset name: lower-case letters, digits, '_' and '-', starting with a letter (it is
    used in `name@version` references, store paths and as a DuckDB view name)."""
    if not isinstance(name, str) or not _DATASET_NAME.match(name):
        fixed = re.sub(r"[^a-z0-9_-]+", "_", str(name).lower()).strip("_-") or "data"
        fixed = fixed if fixed[0].isalpha() else "d_" + fixed
        raise ValueError(
            f"{name!r} is not a dataset name (lower-case letters, digits, '_' and '-', "
            f"starting with a letter, at most 63 characters); try {fixed[:63]!r}"
        )
    return name


class Location(NamedTuple):
    store: str
    path: str

    def __str__(self) -> str:
        return f"{self.store}/{self.path}"


class ColumnSpec(_Model):
    type: str = Field(description="string, long, double, date, timestamp, decimal(P,S), ...")
    nullable: bool = Field(True, description="false: a write with a null here is refused")
    description: str = ""

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, value: object) -> str:
        return parse_type(value)


class RetentionSpec(_Model):
    column: str = Field(description="A date/timestamp column, or an ISO-date partition column")
    duration: str = Field(description="Rows whose column is older than this are deleted")

    @property
    def seconds(self) -> float:
        return parse_duration(self.duration)

    @field_validator("duration", mode="before")
    @classmethod
    def _duration(cls, value: object) -> str:
        if parse_duration(value) <= 0:
            raise ValueError(f"{value!r}: a retention must be longer than zero")
        return value if isinstance(value, str) else f"{value}s"


class DatasetSpec(_Model):
    """A named table in a store: where, what shape, whose data, for how long."""

    location: Location = Field(description="<store>/<path> of the table in a named store")
    format: Literal["delta"] = Field("delta", description="Table format (Delta Lake)")
    columns: dict[str, ColumnSpec] = Field(
        alias="schema", description="Columns in order: name -> type or {type, nullable}"
    )
    subject: str | None = Field(None, description="The column identifying a person")
    personal: list[str] = Field(default_factory=list, description="Columns with personal data")
    partition_by: list[str] = Field(default_factory=list, description="Partition columns")
    retain: RetentionSpec | None = Field(None, description="Delete rows older than this")
    time_travel: str = Field("7d", description="How long replaced versions stay readable")
    owner: str | None = None
    description: str = ""

    # --- fields ----------------------------------------------------------------------------
    @field_validator("location", mode="before")
    @classmethod
    def _location(cls, value: object) -> Location:
        if isinstance(value, dict):
            unknown = set(value) - {"store", "path"}
            if unknown:
                raise ValueError(f"unknown key(s) {sorted(unknown)}: expected store and path")
            store, path = value.get("store"), value.get("path")
        elif isinstance(value, str):
            store, _, path = value.strip().strip("/").partition("/")
        else:
            raise ValueError("expected <store>/<path>, e.g. lake/tables/trips")
        if not isinstance(store, str) or not _STORE_NAME.match(store):
            raise ValueError(f"{value!r}: expected <store>/<path> starting with a store name")
        if not isinstance(path, str) or not path.strip("/"):
            raise ValueError(
                f"{value!r}: a dataset needs its own folder inside the store, e.g. {store}/tables/<name>"
            )
        parts = path.strip("/").split("/")
        if any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"{value!r}: the path may not contain empty, '.' or '..' parts")
        return Location(store, "/".join(parts))

    @field_validator("columns", mode="before")
    @classmethod
    def _columns(cls, value: object) -> dict[str, Any]:
        if not isinstance(value, dict) or not value:
            raise ValueError("expected a mapping of column name -> type (at least one column)")
        out: dict[str, Any] = {}
        for name, column in value.items():
            if not isinstance(name, str) or not _COLUMN_NAME.match(name):
                raise ValueError(
                    f"column {name!r}: names are letters, digits and '_', not starting with a digit"
                )
            out[name] = {"type": column} if isinstance(column, str) else column
        lowered: dict[str, str] = {}
        for name in out:
            if name.lower() in lowered:
                raise ValueError(
                    f"columns {lowered[name.lower()]!r} and {name!r} differ only in case "
                    "(Delta and Spark treat them as one)"
                )
            lowered[name.lower()] = name
        return out

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str | None, info: ValidationInfo) -> str | None:
        columns = info.data.get("columns")
        if value is None or columns is None:
            return value
        _declared(value, columns, "subject")
        if columns[value].type not in SUBJECT_TYPES:
            raise ValueError(
                f"{value!r} is {columns[value].type}; a subject column is one of {', '.join(SUBJECT_TYPES)}"
            )
        return value

    @field_validator("personal")
    @classmethod
    def _personal(cls, value: list[str], info: ValidationInfo) -> list[str]:
        columns = info.data.get("columns")
        _unique(value, "personal")
        if columns is not None:
            for i, name in enumerate(value):
                _declared(name, columns, f"personal[{i}]")
        return value

    @field_validator("partition_by")
    @classmethod
    def _partition_by(cls, value: list[str], info: ValidationInfo) -> list[str]:
        columns = info.data.get("columns")
        _unique(value, "partitionBy")
        if columns is None:
            return value
        personal = {*info.data.get("personal", []), info.data.get("subject")}
        for i, name in enumerate(value):
            _declared(name, columns, f"partitionBy[{i}]")
            kind = columns[name].type
            if name in personal:
                raise ValueError(
                    f"partitionBy[{i}]: {name!r} holds personal data; partition values are kept "
                    "in folder names and in the table log, where erasure cannot reach them"
                )
            if kind in NO_PARTITION_TYPES or kind.startswith("array<"):
                raise ValueError(f"partitionBy[{i}]: {name!r} is {kind}, which cannot partition")
        if value and len(value) == len(columns):
            raise ValueError("partitionBy: at least one column must not be a partition column")
        return value

    @field_validator("retain")
    @classmethod
    def _retain(cls, value: RetentionSpec | None, info: ValidationInfo) -> RetentionSpec | None:
        columns = info.data.get("columns")
        if value is None or columns is None:
            return value
        _declared(value.column, columns, "retain.column")
        kind = columns[value.column].type
        partitions = info.data.get("partition_by", [])
        if kind not in DATE_TYPES and not (kind == "string" and value.column in partitions):
            raise ValueError(
                f"retain.column: {value.column!r} is {kind}; retention needs a date or timestamp "
                "column (or a string partition column holding ISO dates YYYY-MM-DD)"
            )
        return value

    @field_validator("time_travel", mode="before")
    @classmethod
    def _time_travel(cls, value: object) -> str:
        parse_duration(value)
        return value if isinstance(value, str) else f"{value}s"

    # --- derived ---------------------------------------------------------------------------
    @property
    def time_travel_seconds(self) -> float:
        return parse_duration(self.time_travel)

    @property
    def personal_columns(self) -> list[str]:
        """The subject column and every `personal` column."""
        subject = [self.subject] if self.subject else []
        return subject + [c for c in self.personal if c != self.subject]

    def arrow_schema(self) -> Any:
        """The declared schema as a `pyarrow.Schema` (imports pyarrow)."""
        import pyarrow as pa

        from mizzen.datasets.types import arrow_type

        return pa.schema(
            [pa.field(n, arrow_type(c.type), nullable=c.nullable) for n, c in self.columns.items()]
        )


def _declared(name: str, columns: dict[str, ColumnSpec], field: str) -> None:
    if name in columns:
        return
    close = difflib.get_close_matches(name, list(columns), n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else f"; declared: {', '.join(columns)}"
    raise ValueError(f"{field}: {name!r} is not a column of the schema{hint}")


def _unique(names: list[str], field: str) -> None:
    seen: set[str] = set()
    for i, name in enumerate(names):
        if name in seen:
            raise ValueError(f"{field}[{i}]: {name!r} is listed twice")
        seen.add(name)


class DatasetRef(NamedTuple):
    """`trips`, `trips@12` (a version) or `trips@2026-11-01T10:00:00Z` (as of a time)."""

    name: str
    version: int | None = None
    as_of: datetime | None = None

    def __str__(self) -> str:
        if self.version is not None:
            return f"{self.name}@{self.version}"
        if self.as_of is not None:
            return f"{self.name}@{self.as_of.isoformat()}"
        return self.name


def parse_ref(text: str) -> DatasetRef:
    """Parse `name[@version|@ISO-time]`; ValueError says what was expected."""
    name, sep, at = text.strip().partition("@")
    check_dataset_name(name)
    if not sep:
        return DatasetRef(name)
    if at.isdigit():
        return DatasetRef(name, version=int(at))
    try:
        when = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"{text!r}: after '@' expected a version number (trips@12) or an ISO time "
            "(trips@2026-11-01T10:00:00Z)"
        ) from None
    return DatasetRef(name, as_of=when if when.tzinfo else when.replace(tzinfo=UTC))
