"""Schemas as contracts: what a run wrote, checked against the declared schema (and the
table's current schema) before it is committed.

Checked from metadata wherever possible, so the check costs a fraction of the write:
Arrow types from the schema, null counts from Arrow's validity bitmaps (in-memory data) or
from Parquet footer statistics (staged files).

- every declared column must be there, with the declared type or one that widens to it
  losslessly (byte→short→integer→long, float→double; the data is cast on commit);
- a declared non-nullable column may hold no null;
- a column the spec does not declare is **compatible evolution** when it is nullable and has
  a Delta type: accepted, recorded in the report, added to the table; anything else is
  refused and the reason says the spec must change;
- against the table as it is: a type or partitioning that differs from the spec needs a
  rewrite (`mode="overwrite"`), never a silent append.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from mizzen.datasets.errors import ContractViolation
from mizzen.datasets.types import accepts, describe, logical_name

if TYPE_CHECKING:
    import pyarrow as pa

    from mizzen.datasets.model import DatasetSpec

Mode = Literal["append", "overwrite"]


@dataclass(frozen=True)
class Violation:
    column: str
    message: str


@dataclass(frozen=True)
class Change:
    """An accepted schema change, recorded with the version that made it."""

    column: str
    kind: Literal["added", "widened", "retyped", "relaxed", "repartitioned"]
    detail: str


@dataclass
class ContractReport:
    dataset: str
    violations: list[Violation] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)
    rows: int | None = None

    @property
    def ok(self) -> bool:
        return not self.violations

    def reasons(self) -> list[str]:
        prefix = f"{self.dataset}." if self.dataset else ""
        return [f"{prefix}{v.column}: {v.message}" for v in self.violations]

    def notes(self) -> list[str]:
        return [f"{self.dataset}.{c.column}: {c.detail}" for c in self.changes]

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "ok": self.ok,
            "rows": self.rows,
            "violations": self.reasons(),
            "changes": [asdict(c) for c in self.changes],
        }

    def raise_for_violations(self) -> None:
        if self.violations:
            raise ContractViolation(self)

    def fail(self, column: str, message: str) -> None:
        self.violations.append(Violation(column, message))


def check_schema(
    name: str,
    spec: DatasetSpec,
    data: pa.Schema,
    table: pa.Schema | None = None,
    *,
    mode: Mode = "append",
    table_partitions: list[str] | None = None,
) -> ContractReport:
    """Types and columns of `data` against the declaration and the current `table`."""
    report = ContractReport(name)
    present = set(data.names)
    table_fields = {f.name: f for f in table} if table is not None else {}
    for column, declared in spec.columns.items():
        if column not in present:
            report.fail(column, f"declared column ({declared.type}) is missing from the output")
            continue
        actual = logical_name(data.field(column).type)
        if actual is None or not accepts(declared.type, actual):
            report.fail(
                column, f"expected {declared.type}, got {describe(data.field(column).type)}"
            )
    for f in data:
        if f.name in spec.columns:
            continue
        actual = logical_name(f.type)
        if actual is None:
            report.fail(f.name, f"not in the schema, and {f.type} has no Delta Lake type")
        elif not f.nullable:
            report.fail(
                f.name,
                f"new column ({actual}) is not nullable: declare it under schema: in mizzen.yaml",
            )
        elif f.name in table_fields:
            stored = logical_name(table_fields[f.name].type)
            if stored != actual and mode == "append":
                report.fail(f.name, f"the table stores {stored}, the output has {actual}")
        else:
            report.changes.append(
                Change(
                    f.name,
                    "added",
                    f"new nullable column ({actual}) not in the spec: added to the table; "
                    "declare it under schema: to make it part of the contract",
                )
            )
    if table is not None:
        _against_table(report, spec, table_fields, mode, table_partitions)
    return report


def _against_table(
    report: ContractReport,
    spec: DatasetSpec,
    table: Mapping[str, pa.Field],
    mode: Mode,
    partitions: list[str] | None,
) -> None:
    rewrite = "needs a rewrite: write it with mode='overwrite'"
    for column, declared in spec.columns.items():
        stored = table.get(column)
        if stored is None:
            if mode == "append" and not declared.nullable:
                report.fail(
                    column,
                    f"declared non-nullable, but the table has no such column: its existing rows "
                    f"have no value ({rewrite}, or make it nullable)",
                )
            else:
                report.changes.append(
                    Change(column, "added", f"new column ({declared.type}) added to the table")
                )
            continue
        stored_type = logical_name(stored.type)
        if stored_type != declared.type:
            if mode == "append" and not accepts(declared.type, stored_type or ""):
                report.fail(
                    column,
                    f"the table stores {stored_type}, the spec says {declared.type}: {rewrite}",
                )
            else:
                kind: Literal["widened", "retyped"] = (
                    "retyped" if mode == "overwrite" else "widened"
                )
                report.changes.append(Change(column, kind, f"{stored_type} -> {declared.type}"))
        if stored.nullable and not declared.nullable and mode == "append":
            report.fail(column, f"the table allows nulls, the spec says nullable: false: {rewrite}")
        elif not stored.nullable and declared.nullable:
            report.changes.append(Change(column, "relaxed", "now nullable"))
    if partitions is not None and list(partitions) != list(spec.partition_by):
        was, now = ", ".join(partitions) or "nothing", ", ".join(spec.partition_by) or "nothing"
        if mode == "append":
            report.fail(
                spec.partition_by[0] if spec.partition_by else partitions[0],
                f"the table is partitioned by {was}, the spec by {now}: {rewrite}",
            )
        else:
            report.changes.append(
                Change(",".join(spec.partition_by), "repartitioned", f"{was} -> {now}")
            )


def check_nulls(report: ContractReport, spec: DatasetSpec, nulls: Mapping[str, int]) -> None:
    for column, declared in spec.columns.items():
        count = nulls.get(column, 0)
        if count and not declared.nullable:
            noun = "null" if count == 1 else "nulls"
            report.fail(column, f"{count} {noun} in a non-nullable column")


def required(spec: DatasetSpec) -> list[str]:
    """Columns whose nulls must be counted."""
    return [name for name, c in spec.columns.items() if not c.nullable]


def check_table(
    name: str,
    spec: DatasetSpec,
    data: pa.Table,
    table: pa.Schema | None = None,
    *,
    mode: Mode = "append",
    table_partitions: list[str] | None = None,
) -> ContractReport:
    """An in-memory Arrow table: schema, then null counts (from the validity bitmaps)."""
    report = check_schema(
        name, spec, data.schema, table, mode=mode, table_partitions=table_partitions
    )
    report.rows = data.num_rows
    present = set(data.schema.names)
    check_nulls(
        report, spec, {c: data.column(c).null_count for c in required(spec) if c in present}
    )
    return report


class BatchChecker:
    """Null counting over a stream of record batches; `finish()` raises on a violation.

    Used inside the stream that feeds the writer, so a violation found in the last batch
    still aborts the write before its commit."""

    def __init__(self, report: ContractReport, spec: DatasetSpec) -> None:
        self.report = report
        self.spec = spec
        self.nulls = dict.fromkeys(required(spec), 0)
        self.rows = 0

    def add(self, batch: pa.RecordBatch) -> None:
        self.rows += batch.num_rows
        for column in self.nulls:
            index = batch.schema.get_field_index(column)
            if index >= 0:
                self.nulls[column] += batch.column(index).null_count

    def finish(self) -> None:
        self.report.rows = self.rows
        check_nulls(self.report, self.spec, self.nulls)
        self.report.raise_for_violations()

    def wrap(
        self, batches: Iterable[pa.RecordBatch], convert: Any = None
    ) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            self.add(batch)
            if any(self.nulls.values()):
                continue  # broken: count the rest, yield nothing more, then raise
            yield convert(batch) if convert else batch
        self.finish()


def target_schema(spec: DatasetSpec, data: pa.Schema, table: pa.Schema | None) -> pa.Schema:
    """What is committed: the declared columns in order, then accepted new columns (types
    normalised: large/view strings to string, timestamps to microseconds)."""
    import pyarrow as pa

    from mizzen.datasets.types import arrow_type

    fields = [pa.field(n, arrow_type(c.type), nullable=c.nullable) for n, c in spec.columns.items()]
    stored = {f.name: f for f in table} if table is not None else {}
    for f in data:
        if f.name in spec.columns:
            continue
        if f.name in stored:
            fields.append(pa.field(f.name, stored[f.name].type, nullable=True))
        else:
            fields.append(pa.field(f.name, arrow_type(logical_name(f.type) or ""), nullable=True))
    return pa.schema(fields)


def converter(target: pa.Schema) -> Any:
    """A function casting a record batch to `target` (timestamps truncated to µs)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    def convert(batch: pa.RecordBatch) -> pa.RecordBatch:
        arrays = []
        for f in target:
            column = batch.column(batch.schema.get_field_index(f.name))
            if column.type != f.type:
                safe = not pa.types.is_timestamp(f.type)
                column = pc.cast(column, f.type, safe=safe)
            arrays.append(column)
        return pa.RecordBatch.from_arrays(arrays, schema=target)

    return convert
