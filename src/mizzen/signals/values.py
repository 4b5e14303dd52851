"""The values table: every signal's computed buckets, a Delta table in the project store
(`signals/values`, partitioned by signal), read by `mizzen signals`, the dashboard and the
exporter, written only by the computation (one commit per run, replacing the buckets it
recomputed)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import TYPE_CHECKING, Any

from mizzen.signals.definition import DATASET

if TYPE_CHECKING:
    import pyarrow as pa

    from mizzen.datasets.model import DatasetSpec
    from mizzen.datasets.table import DatasetTable
    from mizzen.storage.base import Store

PATH = "signals/values"
SCHEMA: dict[str, Any] = {
    "signal": {"type": "string", "nullable": False},
    "bucket": {"type": "timestamp", "nullable": False, "description": "Start of the bucket"},
    "grain": {"type": "string", "nullable": False},
    "dimension": {"type": "string", "nullable": False, "description": "'' for the whole signal"},
    "segment": {"type": "string", "nullable": False, "description": "The dimension's value"},
    "arm": {"type": "string", "nullable": False, "description": "'' for every arm together"},
    "value": "double",
    "n": {"type": "long", "nullable": False, "description": "Rows measured"},
    "sum_x": "double",
    "sum_y": "double",
    "sum_xx": "double",
    "sum_yy": "double",
    "sum_xy": "double",
    "source_version": {"type": "long", "nullable": False},
    "definition": {"type": "string", "nullable": False},
    "computed_at": {"type": "timestamp", "nullable": False},
    "run_id": "string",
}


@cache
def spec() -> DatasetSpec:
    from mizzen.datasets.model import DatasetSpec

    return DatasetSpec.model_validate(
        {
            "location": f"project/{PATH}",
            "schema": SCHEMA,
            "partitionBy": ["signal"],
            "description": "Signal values per bucket, segment and arm (mizzen signals)",
        }
    )


def need(what: str, engine: str = "duckdb") -> None:
    """Refuse early, with the extra to install, where the packages signals need are missing."""
    import importlib.util

    from mizzen.errors import MissingExtraError

    for module in ("deltalake", "pyarrow", *(["duckdb"] if engine == "duckdb" else [])):
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError(what, "datasets", module)


def table(project: Store) -> DatasetTable:
    from mizzen.datasets.location import table_location
    from mizzen.datasets.table import DatasetTable

    return DatasetTable(DATASET, spec(), table_location(project, PATH))


@dataclass(frozen=True)
class State:
    """What the table holds for one signal."""

    last_bucket: datetime | None = None
    source_version: int | None = None
    definition: str | None = None
    computed_at: datetime | None = None
    buckets: int = 0


def read(values: DatasetTable, signal: str, columns: list[str] | None = None) -> pa.Table:
    """The rows of one signal (all columns, or `columns`), oldest bucket first."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as pads

    if values.version() is None:
        return spec().arrow_schema().empty_table().select(columns or list(SCHEMA))
    dataset = values.arrow_dataset()
    stored = dataset.schema.field("signal").type
    rows = dataset.to_table(
        columns=columns, filter=pads.field("signal").cast(stored) == pa.scalar(signal).cast(stored)
    )
    if "bucket" in rows.column_names and rows.num_rows:
        rows = rows.take(pc.sort_indices(rows, [("bucket", "ascending")]))
    return rows


def state(values: DatasetTable, signal: str) -> State:
    rows = read(values, signal, ["bucket", "source_version", "definition", "computed_at"])
    if rows.num_rows == 0:
        return State()
    import pyarrow.compute as pc

    latest = int(pc.index(rows["computed_at"], pc.max(rows["computed_at"])).as_py())
    buckets = len(set(rows["bucket"].to_pylist()))
    return State(
        last_bucket=_utc(pc.max(rows["bucket"]).as_py()),
        source_version=int(rows["source_version"][latest].as_py()),
        definition=str(rows["definition"][latest].as_py()),
        computed_at=_utc(rows["computed_at"][latest].as_py()),
        buckets=buckets,
    )


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value if value.tzinfo else value.replace(tzinfo=UTC)
