"""The project's declared datasets over its stores, and the handle job code gets.

    catalog = Catalog(spec.datasets, {"lake": lake_store}, project_store)
    trips = catalog.handle("trips", run_id=run_id, workload="train")
    trips.duckdb().filter("distance_km > 10")     # a DuckDB relation; records the read
    trips.arrow()                                 # a pyarrow dataset
    trips.path                                    # the table URI (Spark, delta-rs, DuckDB)
    trips.write(df)                               # checked, one new version; records the write

`mizzen.dataset("trips")` in the runtime SDK is meant to return such a handle.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from mizzen.datasets.errors import DatasetNotFound
from mizzen.datasets.lineage import Lineage
from mizzen.datasets.model import DatasetRef, DatasetSpec, parse_ref
from mizzen.datasets.table import DatasetTable, WriteResult
from mizzen.errors import UsageError

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads

    from mizzen.datasets.contract import Mode
    from mizzen.storage.base import Store


class Catalog:
    def __init__(
        self, datasets: Mapping[str, DatasetSpec], stores: Mapping[str, Store], project: Store
    ) -> None:
        self.specs = dict(datasets)
        self.stores = dict(stores)
        self.project = project
        self.lineage = Lineage(project)
        self._tables: dict[str, DatasetTable] = {}

    def names(self) -> list[str]:
        return list(self.specs)

    def spec(self, name: str) -> DatasetSpec:
        if name not in self.specs:
            raise unknown_dataset(name, list(self.specs))
        return self.specs[name]

    def table(self, name: str) -> DatasetTable:
        if name not in self._tables:
            spec = self.spec(name)
            store = self.stores.get(spec.location.store)
            if store is None:
                raise UsageError(
                    f"dataset {name!r} lives in store {spec.location.store!r}, which is not declared",
                    hint=f"declare it under stores:, or use one of: {', '.join(self.stores) or 'none'}",
                )
            self._tables[name] = DatasetTable.open(name, spec, store)
        return self._tables[name]

    def resolve(self, ref: str | DatasetRef) -> tuple[DatasetTable, int]:
        """`trips`, `trips@12` or `trips@<ISO time>` -> (table, version number)."""
        parsed = parse_ref(ref) if isinstance(ref, str) else ref
        table = self.table(parsed.name)
        return table, table.delta(parsed.version, parsed.as_of).version()

    def handle(
        self, name: str, *, run_id: str | None = None, workload: str | None = None
    ) -> DatasetHandle:
        return DatasetHandle(self.table(name), self.lineage, run_id, workload)


def unknown_dataset(name: str, declared: list[str]) -> DatasetNotFound:
    close = difflib.get_close_matches(name, declared, n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}?" if close else f"declared: {', '.join(declared) or 'none'}"
    return DatasetNotFound(f"no dataset {name!r} in mizzen.yaml", hint=hint)


class DatasetHandle:
    """One dataset as job code sees it; inside a run, reads and writes are recorded."""

    def __init__(
        self,
        table: DatasetTable,
        lineage: Lineage | None = None,
        run_id: str | None = None,
        workload: str | None = None,
        *,
        stage: bool = False,
        pinned: DatasetRef | None = None,
    ) -> None:
        """`stage`: writes are checked and staged, committed once the run succeeded (an
        output of a running job); `pinned`: the version reads default to (`trips@12`)."""
        self.table = table
        self.lineage = lineage
        self.run_id = run_id
        self.workload = workload
        self.stage = stage
        self.pinned = pinned
        self.read_version: int | None = None  # the version this handle last read

    @property
    def name(self) -> str:
        return self.table.name

    @property
    def path(self) -> str:
        """The table URI: `spark.read.format("delta").load(path)`, `deltalake.DeltaTable(path,
        storage_options=handle.storage_options)`."""
        return self.table.uri

    @property
    def storage_options(self) -> dict[str, str]:
        return self.table.storage_options

    def output_path(self, mode: Mode = "append") -> str:
        """Where this run writes flat Parquet files with any engine (Spark, DuckDB, polars);
        committed once the job succeeded: appended, or replacing the table's rows with
        `mode="overwrite"`."""
        if not (self.stage and self.run_id):
            raise UsageError(
                f"{self.name}: an output path exists only for an output of a running job",
                hint=f"list {self.name} in the job's `outputs:` and start it with `mizzen run`",
            )
        self.table.stage_mode(self.run_id, mode)
        return self.table.staging(self.run_id).uri

    def files(self, version: int | None = None, as_of: datetime | None = None) -> list[str]:
        """The Parquet files of a version (the pinned or current one by default), as URIs any
        engine reads (`spark.read.parquet(*handle.files())`); the read is recorded."""
        if version is None and as_of is None and self.pinned is not None:
            version, as_of = self.pinned.version, self.pinned.as_of
        delta = self.table.delta(version, as_of)
        self._read(delta.version())
        return list(delta.file_uris())

    def version(self) -> int | None:
        return self.table.version()

    def arrow(self, version: int | None = None, as_of: datetime | None = None) -> pads.Dataset:
        if version is None and as_of is None and self.pinned is not None:
            version, as_of = self.pinned.version, self.pinned.as_of
        delta = self.table.delta(version, as_of)
        self._read(delta.version())
        return delta.to_pyarrow_dataset()

    def to_table(
        self,
        version: int | None = None,
        as_of: datetime | None = None,
        *,
        columns: list[str] | None = None,
        filter: Any = None,
    ) -> pa.Table:
        return self.arrow(version, as_of).to_table(columns=columns, filter=filter)

    def duckdb(
        self, version: int | None = None, as_of: datetime | None = None, *, connection: Any = None
    ) -> Any:
        import duckdb

        con = connection if connection is not None else duckdb.connect()
        return con.from_arrow(self.arrow(version, as_of))

    def write(self, data: Any, mode: Mode = "append") -> WriteResult:
        """Check `data` and write it: one new version, or, for an output of a running job,
        staged until the job succeeded (the result's `version` is then None; one run writes
        an output one way: appends, or an overwrite replacing its rows)."""
        if self.stage and self.run_id:
            return self.table.stage(data, self.run_id, mode)
        result = self.table.write(data, mode, run_id=self.run_id, workload=self.workload)
        if self.lineage is not None and self.run_id and result.version is not None:
            self.lineage.record_write(self.run_id, self.name, result.version, self.workload)
        return result

    def _read(self, version: int) -> None:
        self.read_version = version
        if self.lineage is not None and self.run_id:
            self.lineage.record_read(self.run_id, self.name, version, self.workload)


def commit_outputs(
    catalog: Catalog,
    run_id: str,
    outputs: list[str],
    *,
    workload: str | None = None,
    mode: Mode | None = None,
) -> list[WriteResult]:
    """After a run succeeded: commit what it staged for each output dataset (those it staged
    anything for), recording the writes. Every output is checked first; if any breaks its
    contract nothing is committed and `ContractViolation` names every reason."""
    return commit_staged_outputs(
        catalog.table, catalog.lineage, run_id, outputs, workload=workload, mode=mode
    )


def commit_staged_outputs(
    table: Callable[[str], DatasetTable],
    lineage: Lineage | None,
    run_id: str,
    outputs: list[str],
    *,
    workload: str | None = None,
    mode: Mode | None = None,
) -> list[WriteResult]:
    """`mode`: as each output was staged (appended unless the run staged an overwrite)."""
    from mizzen.datasets.contract import ContractReport, Violation
    from mizzen.datasets.errors import ContractViolation

    staged = [n for n in outputs if table(n).staged_files(run_id)]
    reports = [table(n).check_staged(run_id, mode) for n in staged]
    broken = [r for r in reports if not r.ok]
    if broken:
        for name in staged:
            table(name).discard_staged(run_id)
        if len(broken) == 1:
            raise ContractViolation(broken[0])
        merged = ContractReport("")
        for r in broken:
            merged.violations.extend(
                Violation(f"{r.dataset}.{v.column}", v.message) for v in r.violations
            )
        raise ContractViolation(merged)
    results = []
    for name in staged:
        result = table(name).commit_staged(run_id, mode, workload=workload)
        if lineage is not None and result.version is not None:
            lineage.record_write(run_id, name, result.version, workload)
        results.append(result)
    return results
