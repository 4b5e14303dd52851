"""One dataset as a Delta Lake table: contract-checked atomic writes, versions, time travel.

A write is one Delta commit: readers see the previous version or the new one, never half.
The contract is checked before the commit (types from the schema up front, null counts while
the data streams into the writer), so a bad output never becomes a version.

Jobs that write with another engine (Spark, DuckDB, pandas) write plain Parquet files under
`staging(run_id)`; `commit_staged` checks their footers against the contract and commits them
as one new version (rewritten through the same checked writer), or refuses them.
"""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from mizzen.datasets.contract import (
    BatchChecker,
    ContractReport,
    Mode,
    check_nulls,
    check_schema,
    check_table,
    converter,
    required,
    target_schema,
)
from mizzen.datasets.errors import ContractViolation, DatasetError, DatasetNotFound
from mizzen.datasets.location import TableLocation, arrow_filesystem, table_location
from mizzen.errors import UsageError, first_line

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.dataset as pads
    from deltalake import DeltaTable

    from mizzen.datasets.model import DatasetSpec
    from mizzen.storage.base import Store

STAGING = "_mizzen_staging"
STAGED_MODES = "_modes"  # beside the runs' staging folders: "append" or "overwrite"
META_RUN = "mizzen.run_id"
META_WORKLOAD = "mizzen.workload"
META_TOKEN = "mizzen.commit"
META_CHANGES = "mizzen.changes"
META_OPERATION = "mizzen.operation"


@dataclass(frozen=True)
class VersionInfo:
    version: int
    timestamp: float  # seconds since the epoch
    operation: str  # WRITE, DELETE, CREATE TABLE, VACUUM END, ...
    run_id: str | None = None
    workload: str | None = None
    mizzen_operation: str | None = None  # retention, forget, ...
    rows: int | None = None  # of the whole snapshot at this version
    bytes: int | None = None
    files: int | None = None
    changes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class WriteResult:
    dataset: str
    version: int | None  # None: staged, committed once the run succeeded
    mode: str
    rows: int
    report: ContractReport

    def to_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "version": self.version,
            "mode": self.mode,
            "rows": self.rows,
            "contract": self.report.to_dict(),
        }


class DatasetTable:
    """A declared dataset at its location (a Delta table; created by its first write)."""

    def __init__(self, name: str, spec: DatasetSpec, location: TableLocation) -> None:
        self.name = name
        self.spec = spec
        self.location = location

    @classmethod
    def open(cls, name: str, spec: DatasetSpec, store: Store) -> DatasetTable:
        """`store` is the store named by `spec.location.store` (with its credentials)."""
        return cls(name, spec, table_location(store, spec.location.path))

    @property
    def uri(self) -> str:
        return self.location.uri

    @property
    def storage_options(self) -> dict[str, str]:
        return dict(self.location.storage_options)

    def __repr__(self) -> str:
        return f"DatasetTable({self.name!r}, {self.uri!r})"

    # --- the Delta table -----------------------------------------------------------------
    def exists(self) -> bool:
        from deltalake import DeltaTable

        return bool(DeltaTable.is_deltatable(self.uri, self.storage_options))

    def delta(self, version: int | None = None, as_of: datetime | None = None) -> DeltaTable:
        """The table at the current version, a version number, or as of a time."""
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError, TableNotFoundError

        try:
            table = DeltaTable(self.uri, storage_options=self.storage_options)
        except TableNotFoundError:
            raise DatasetNotFound(
                f"dataset {self.name!r} has no version yet ({self.uri})",
                hint="a job writes its first version",
            ) from None
        if version is None and as_of is None:
            return table
        target: int | datetime = version if version is not None else _utc(as_of)
        current = table.version()
        # delta-rs loads the oldest version for a time before it: that is no version then
        written = (
            {int(e["version"]): float(e.get("timestamp", 0)) / 1000 for e in table.history()}
            if isinstance(target, datetime)
            else {}
        )
        try:
            table.load_as_version(target)
        except (DeltaError, ValueError, OSError) as exc:
            if version is not None and 0 <= version < current:
                # it existed: its log entries expired with the time-travel window
                raise self._vacuumed(version, as_of) from None
            raise DatasetNotFound(
                f"dataset {self.name!r} has no {_describe(version, as_of)}: {first_line(exc)}",
                hint=f"current version: {current}; old versions stay readable for "
                f"{self.spec.time_travel} (timeTravel)",
            ) from None
        loaded = written.get(table.version())
        if isinstance(target, datetime) and loaded is not None and loaded > target.timestamp():
            first = datetime.fromtimestamp(loaded, UTC).isoformat(timespec="seconds")
            raise DatasetNotFound(
                f"dataset {self.name!r} has no {_describe(version, as_of)}: its oldest "
                f"version in the log, {table.version()}, was written at {first}",
                hint=f"current version: {current}",
            )
        return table

    def _current(self) -> DeltaTable | None:
        from deltalake import DeltaTable
        from deltalake.exceptions import TableNotFoundError

        try:
            return DeltaTable(self.uri, storage_options=self.storage_options)
        except TableNotFoundError:
            return None

    def version(self) -> int | None:
        """The current version, or None before the first write."""
        table = self._current()
        return table.version() if table is not None else None

    def configuration(self) -> dict[str, str]:
        """Table properties mizzen keeps in line with the spec."""
        window = f"interval {int(self.spec.time_travel_seconds)} seconds"
        return {
            "delta.deletedFileRetentionDuration": window,
            "delta.logRetentionDuration": window,
        }

    def _sync_properties(self, table: DeltaTable) -> None:
        current = table.metadata().configuration
        wanted = self.configuration()
        if any(current.get(k) != v for k, v in wanted.items()):
            table.alter.set_table_properties(wanted, raise_if_not_exists=False)

    # --- the contract --------------------------------------------------------------------
    def _state(self, mode: Mode) -> tuple[DeltaTable | None, pa.Schema | None, list[str] | None]:
        import pyarrow as pa

        table = self._current()
        if table is None:
            return None, None, None
        schema = pa.schema(table.schema().to_arrow())
        return table, schema, list(table.metadata().partition_columns)

    def check(self, data: Any, mode: Mode = "append") -> ContractReport:
        """The contract report for `data` (an Arrow table or anything Arrow can read), without
        writing. Streams are read to count nulls."""
        _check_mode(mode)
        _, schema, partitions = self._state(mode)
        data = _arrow(data)
        if _is_table(data):
            return check_table(
                self.name, self.spec, data, schema, mode=mode, table_partitions=partitions
            )
        report = check_schema(
            self.name, self.spec, data.schema, schema, mode=mode, table_partitions=partitions
        )
        if report.ok:
            checker = BatchChecker(report, self.spec)
            for batch in data:
                checker.add(batch)
            report.rows = checker.rows
            check_nulls(report, self.spec, checker.nulls)
        return report

    # --- writing -------------------------------------------------------------------------
    def write(
        self,
        data: Any,
        mode: Mode = "append",
        *,
        run_id: str | None = None,
        workload: str | None = None,
        operation: str | None = None,
        replace: str | None = None,
    ) -> WriteResult:
        """Check `data` against the contract and commit it as one new version.

        `data`: a pyarrow Table/RecordBatch/RecordBatchReader/Dataset, a pandas DataFrame, or
        anything exporting an Arrow stream (polars, DuckDB). `replace`: a SQL predicate; the
        rows matching it are replaced by `data` (which must match it too) in the same commit,
        the others are kept (checked like an append). On a violation nothing is committed
        and `ContractViolation` carries every reason.

        Writers that both find no table race to create it; the one that loses writes again
        on the table the other made (a table or batch in memory; a stream cannot be read
        twice)."""
        _check_mode(mode)
        if replace is not None and mode != "append":
            raise UsageError("`replace` keeps the rows it does not match: write with mode='append'")
        data = _arrow(data)
        attempts = 3 if _is_table(data) else 1
        for _ in range(attempts - 1):
            with contextlib.suppress(_LostCreateRace):
                return self._write_once(data, mode, run_id, workload, operation, replace)
        try:
            return self._write_once(data, mode, run_id, workload, operation, replace)
        except _LostCreateRace:
            raise DatasetError(
                f"{self.name}: another writer created {self.uri} at the same time",
                hint="write again: the table exists now",
            ) from None

    def _write_once(
        self,
        data: Any,
        mode: Mode,
        run_id: str | None,
        workload: str | None,
        operation: str | None,
        replace: str | None,
    ) -> WriteResult:
        table, schema, partitions = self._state(mode)
        if replace is not None and table is None:
            replace = None  # nothing to replace: the first version
        if _is_table(data):
            report = check_table(
                self.name, self.spec, data, schema, mode=mode, table_partitions=partitions
            )
            report.raise_for_violations()
            target = target_schema(self.spec, data.schema, schema)
            convert = converter(target)
            stream = _reader(target, (convert(b) for b in data.to_batches()))
        else:
            report = check_schema(
                self.name, self.spec, data.schema, schema, mode=mode, table_partitions=partitions
            )
            report.raise_for_violations()
            target = target_schema(self.spec, data.schema, schema)
            checker = BatchChecker(report, self.spec)
            stream = _reader(target, checker.wrap(data, converter(target)))
        if table is not None:
            self._sync_properties(table)
        version = self._commit(
            stream, mode, report, run_id, workload, operation, replace, creating=table is None
        )
        return WriteResult(self.name, version, mode, report.rows or 0, report)

    def _commit(
        self,
        stream: pa.RecordBatchReader,
        mode: Mode,
        report: ContractReport,
        run_id: str | None,
        workload: str | None,
        operation: str | None,
        replace: str | None = None,
        *,
        creating: bool = False,
    ) -> int:
        from deltalake import CommitProperties, write_deltalake
        from deltalake.exceptions import DeltaError

        token = secrets.token_hex(8)
        meta = self._metadata(token, run_id, workload, operation)
        if report.changes:
            meta[META_CHANGES] = json.dumps(report.notes())
        # append merges: new nullable columns are added, columns of earlier evolutions that
        # this write lacks are null (the contract was checked above)
        options: dict[str, Any] = {
            "partition_by": self.spec.partition_by or None,
            "schema_mode": "overwrite" if mode == "overwrite" else "merge",
            "configuration": self.configuration(),
            "description": self.spec.description or None,
            "storage_options": self.storage_options,
            "commit_properties": CommitProperties(custom_metadata=meta),
        }
        try:
            if mode == "overwrite":
                write_deltalake(self.uri, stream, mode="overwrite", **options)
            elif replace is not None:
                write_deltalake(self.uri, stream, mode="overwrite", predicate=replace, **options)
            else:
                write_deltalake(self.uri, stream, mode="append", **options)
        except ContractViolation:
            raise
        except (DeltaError, OSError, ValueError) as exc:
            if report.violations:  # raised inside the stream: nothing was committed
                raise ContractViolation(report) from None
            if creating and any(t in str(exc) for t in _CREATE_RACE):
                raise _LostCreateRace from None
            raise DatasetError(
                f"{self.name}: write to {self.uri} failed: {first_line(exc)}"
            ) from exc
        return self._version_of(token)

    def _metadata(
        self, token: str, run_id: str | None, workload: str | None, operation: str | None
    ) -> dict[str, str]:
        meta = {META_TOKEN: token}
        for key, value in (
            (META_RUN, run_id),
            (META_WORKLOAD, workload),
            (META_OPERATION, operation),
        ):
            if value:
                meta[key] = value
        return meta

    def _version_of(self, token: str) -> int:
        """The version our commit got (others may have committed meanwhile): the log file
        that holds our token. Not `history()`: it numbers entries by counting back from the
        latest, which is off by one while another writer's commit is landing."""
        latest = self.delta().version()
        store = self.location.store
        assert store is not None  # every table_location() has its store
        log = f"{self.location.key}/_delta_log".strip("/")
        for version in range(latest, max(latest - 64, -1), -1):
            with contextlib.suppress(FileNotFoundError):
                if token in store.read_bytes(f"{log}/{version:020d}.json").decode():
                    return version
        return latest  # 64 commits landed after ours in this instant: the newest is as near

    # --- staged outputs (jobs writing with any engine) -----------------------------------
    def staging(self, run_id: str) -> TableLocation:
        """Where a run writes Parquet files for this dataset; nothing there is visible to
        readers until `commit_staged`."""
        _check_run_id(run_id)
        return self.location.child(f"{STAGING}/{run_id}")

    def stage_mode(self, run_id: str, mode: Mode | None = None) -> Mode:
        """How the run's staged files are committed: appended (the default) or replacing the
        table's rows ("overwrite"). With `mode`, record it; one run stages one way only."""
        store, key = self._store(), self._mode_key(run_id)
        recorded = store.read_bytes(key).decode() if store.exists(key) else None
        if mode is None:
            return "overwrite" if recorded == "overwrite" else "append"
        _check_mode(mode)
        if recorded is not None and recorded != mode:
            raise UsageError(
                f"{self.name}: this run already staged an {recorded} of this output",
                hint="write a job's output one way per run: all appends, or one overwrite",
            )
        if recorded is None:
            store.write_bytes(key, mode.encode())
        return mode

    def stage(self, data: Any, run_id: str, mode: Mode = "append") -> WriteResult:
        """Stage `data` as Parquet for the run: it becomes a version at `commit_staged`, if it
        keeps the contract then. Checked now too: the report says what the commit will refuse
        (and a line on stderr says it where the job wrote)."""
        import secrets as _secrets
        import sys

        import pyarrow.parquet as pq

        self.stage_mode(run_id, mode)
        data = _arrow(data)
        table = data if _is_table(data) else data.read_all()
        report = self.check(table, mode)
        if not report.ok:
            reasons = "; ".join(f"{v.column}: {v.message}" for v in report.violations)
            print(
                f"mizzen: {self.name}: this output breaks the declared schema and will not be "
                f"committed: {reasons}",
                file=sys.stderr,
                flush=True,
            )
        fs, base = arrow_filesystem(self._store())
        key = f"{self.staging(run_id).key}/part-{_secrets.token_hex(6)}.parquet"
        fs.create_dir(f"{base}/{key.rsplit('/', 1)[0]}", recursive=True)
        pq.write_table(table, f"{base}/{key}", filesystem=fs)
        return WriteResult(self.name, None, mode, table.num_rows, report)

    def staged_files(self, run_id: str) -> list[str]:
        store = self._store()
        key = self.staging(run_id).key
        files, folders = [], set()
        for info in store.list(key):
            rel = info.key[len(key) :].lstrip("/")
            if any(part.startswith(("_", ".")) for part in rel.split("/")):
                continue  # _SUCCESS, .crc and other engines' markers
            if "/" in rel and "=" in rel.split("/", 1)[0]:
                folders.add(rel.split("/", 1)[0])
            if rel.endswith(".parquet") or "." not in rel.rsplit("/", 1)[-1]:
                files.append(info.key)
        if folders:
            raise UsageError(
                f"{self.name}: the staged output uses partition folders ({sorted(folders)[0]}/…)",
                hint="write flat Parquet files that hold every column; mizzen partitions on commit",
            )
        return files

    def check_staged(self, run_id: str, mode: Mode | None = None) -> ContractReport:
        """The contract report of a run's staged Parquet files, from their footers (types, row
        and null counts); a column without null statistics is read to count them. `mode`:
        as staged (`stage_mode`) unless given."""
        import pyarrow.parquet as pq

        mode = mode or self.stage_mode(run_id)
        _check_mode(mode)
        files = self.staged_files(run_id)
        _, schema, partitions = self._state(mode)
        fs, base = arrow_filesystem(self._store())
        report = ContractReport(self.name, rows=0)
        if not files:
            report.fail("*", f"the run staged no Parquet files under {self.staging(run_id).uri}")
            return report
        nulls = dict.fromkeys(required(self.spec), 0)
        seen: dict[str, ContractReport] = {}
        for key in files:
            meta = pq.ParquetFile(f"{base}/{key}", filesystem=fs)
            file_schema = meta.schema_arrow
            part = check_schema(
                self.name, self.spec, file_schema, schema, mode=mode, table_partitions=partitions
            )
            label = key.rsplit("/", 1)[-1]
            for v in part.violations:
                if v.message not in {x.message for x in report.violations if x.column == v.column}:
                    report.fail(v.column, v.message + (f" (in {label})" if len(files) > 1 else ""))
            for c in part.changes:
                if c not in report.changes:
                    report.changes.append(c)
            seen[key] = part
            report.rows = (report.rows or 0) + meta.metadata.num_rows
            for column in nulls:
                if column in file_schema.names:
                    nulls[column] += _null_count(meta, column)
        check_nulls(report, self.spec, nulls)
        return report

    def commit_staged(
        self,
        run_id: str,
        mode: Mode | None = None,
        *,
        workload: str | None = None,
    ) -> WriteResult:
        """Check the run's staged files and commit them as one version (appended, or replacing
        the rows when the run staged an overwrite); the staging folder is removed either way
        (a refused output is never kept half-visible)."""
        import pyarrow.dataset as pads

        try:
            mode = mode or self.stage_mode(run_id)
            report = self.check_staged(run_id, mode)
            report.raise_for_violations()
            fs, base = arrow_filesystem(self._store())
            files = [f"{base}/{k}" for k in self.staged_files(run_id)]
            data = pads.dataset(files, format="parquet", filesystem=fs)
            result = self.write(data, mode, run_id=run_id, workload=workload)
            return WriteResult(self.name, result.version, mode, result.rows, report)
        finally:
            self.discard_staged(run_id)

    def discard_staged(self, run_id: str) -> None:
        store = self._store()
        store.delete_prefix(self.staging(run_id).key)
        if store.exists(mode := self._mode_key(run_id)):
            store.delete(mode)

    def _mode_key(self, run_id: str) -> str:
        # beside the staging folder, not in it: an engine writing there may clear the folder
        self.staging(run_id)
        return self.location.child(f"{STAGING}/{STAGED_MODES}/{run_id}").key

    def _store(self) -> Store:
        if self.location.store is None:
            raise DatasetError(f"{self.name}: no store behind {self.uri}")
        return self.location.store

    # --- reading -------------------------------------------------------------------------
    def arrow_dataset(
        self, version: int | None = None, as_of: datetime | None = None
    ) -> pads.Dataset:
        """A lazy pyarrow dataset of one version (filters and projections push down)."""
        return self.delta(version, as_of).to_pyarrow_dataset()

    def read(
        self,
        version: int | None = None,
        as_of: datetime | None = None,
        *,
        columns: list[str] | None = None,
        filter: Any = None,
    ) -> pa.Table:
        dataset = self.arrow_dataset(version, as_of)
        try:
            return dataset.to_table(columns=columns, filter=filter)
        except FileNotFoundError:
            raise self._vacuumed(version, as_of) from None

    def _vacuumed(self, version: int | None, as_of: datetime | None) -> DatasetNotFound:
        return DatasetNotFound(
            f"dataset {self.name!r}: {_describe(version, as_of)} is no longer readable, its "
            f"files were removed after the time-travel window ({self.spec.time_travel})",
            hint=f"current version: {self.version()}",
        )

    def duckdb(
        self,
        version: int | None = None,
        as_of: datetime | None = None,
        *,
        connection: Any = None,
    ) -> Any:
        """A DuckDB relation over one version (lazy; DuckDB pushes filters into the scan)."""
        import duckdb

        con = connection if connection is not None else duckdb.connect()
        return con.from_arrow(self.arrow_dataset(version, as_of))

    def schema(self, version: int | None = None) -> pa.Schema:
        import pyarrow as pa

        return pa.schema(self.delta(version).schema().to_arrow())

    def count(self, filter: Any = None, version: int | None = None) -> int:
        return int(self.arrow_dataset(version).count_rows(filter=filter))

    def count_where(
        self, column: str, op: Literal["==", "<"], value: Any, version: int | None = None
    ) -> int:
        """Rows where `column op value`. The column is cast to its table type in the filter:
        files rewritten by delta-rs (delete, merge) store strings as `string_view`, which
        pyarrow cannot compare with a plain string."""
        import pyarrow as pa
        import pyarrow.dataset as pads

        dataset = self.arrow_dataset(version)
        stored = dataset.schema.field(column).type
        scalar = value if isinstance(value, pa.Scalar) else pa.scalar(value)
        field = pads.field(column).cast(stored)
        expr = field == scalar.cast(stored) if op == "==" else field < scalar.cast(stored)
        try:
            return int(dataset.count_rows(filter=expr))
        except FileNotFoundError:
            raise self._vacuumed(version, None) from None

    def versions(self, limit: int | None = None) -> list[VersionInfo]:
        """Versions still in the log, newest first, with the size of each snapshot."""
        table = self.delta()
        history = table.history(limit)
        sizes = self._snapshot_sizes(sorted(int(e["version"]) for e in history))
        out = []
        for entry in history:
            version = int(entry["version"])
            rows, size, files = sizes.get(version, (None, None, None))
            changes = entry.get(META_CHANGES)
            out.append(
                VersionInfo(
                    version=version,
                    timestamp=float(entry.get("timestamp", 0)) / 1000,
                    operation=str(entry.get("operation", "")),
                    run_id=entry.get(META_RUN),
                    workload=entry.get(META_WORKLOAD),
                    mizzen_operation=entry.get(META_OPERATION),
                    rows=rows,
                    bytes=size,
                    files=files,
                    changes=json.loads(changes) if changes else [],
                )
            )
        return out

    def _snapshot_sizes(self, versions: list[int]) -> dict[int, tuple[int, int, int]]:
        from deltalake import DeltaTable
        from deltalake.exceptions import DeltaError

        out: dict[int, tuple[int, int, int]] = {}
        table: DeltaTable | None = None
        for version in versions:
            try:
                if table is None:
                    table = DeltaTable(self.uri, version, storage_options=self.storage_options)
                else:
                    table.load_as_version(version)
                actions = table.get_add_actions(flatten=True)
            except (DeltaError, OSError, ValueError):
                table = None
                continue
            columns = actions.schema.names
            records: Any = (
                actions.column("num_records").to_pylist() if "num_records" in columns else []
            )
            sizes: Any = actions.column("size_bytes").to_pylist() if "size_bytes" in columns else []
            out[version] = (
                sum(r or 0 for r in records),
                sum(s or 0 for s in sizes),
                actions.num_rows,
            )
        return out

    # --- maintenance ---------------------------------------------------------------------
    def delete(
        self, predicate: str, *, operation: str, run_id: str | None = None
    ) -> tuple[int, int | None]:
        """Delete the rows matching a SQL predicate as one version: (rows, new version)."""
        from deltalake import CommitProperties

        table = self._current()
        if table is None:
            return 0, None
        token = secrets.token_hex(8)
        meta = self._metadata(token, run_id, None, operation)
        metrics = table.delete(predicate, commit_properties=CommitProperties(custom_metadata=meta))
        removed = int(metrics.get("num_deleted_rows") or 0)
        return removed, (self._version_of(token) if removed else None)

    def vacuum(self, *, now: bool = False) -> list[str]:
        """Delete the files no version inside the time-travel window needs (`now`: every file
        the current version does not need), then drop expired log entries, so the versions
        that held them are no longer addressable."""
        table = self._current()
        if table is None:
            return []
        self._sync_properties(table)
        table = self.delta()
        if now:
            removed = table.vacuum(
                retention_hours=0, enforce_retention_duration=False, dry_run=False
            )
        else:
            removed = table.vacuum(dry_run=False)
        self._expire_logs(now=now)
        return list(removed)

    def _expire_logs(self, *, now: bool) -> None:
        table = self.delta()
        if now:
            zero = {"delta.logRetentionDuration": "interval 0 seconds"}
            table.alter.set_table_properties(zero, raise_if_not_exists=False)
            table = self.delta()
        table.create_checkpoint()
        table.cleanup_metadata()
        if now:
            self._sync_properties(self.delta())

    def oldest_version(self) -> int | None:
        table = self._current()
        if table is None:
            return None
        history = table.history()
        return min(int(e["version"]) for e in history) if history else None


def _arrow(data: Any) -> Any:
    """An Arrow table or record batch reader for what a user passes to `write`."""
    import pyarrow as pa
    import pyarrow.dataset as pads

    if isinstance(data, pa.Table | pa.RecordBatchReader):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pads.Dataset):
        return data.scanner().to_reader()
    module = type(data).__module__
    if module.startswith("pandas"):
        return pa.Table.from_pandas(data, preserve_index=False)
    if hasattr(data, "__arrow_c_stream__"):
        return pa.RecordBatchReader.from_stream(data)
    if hasattr(data, "__arrow_c_array__"):
        return pa.table(data)
    raise UsageError(
        f"cannot write a {type(data).__name__} to a dataset",
        hint="pass a pyarrow Table/RecordBatchReader/Dataset, a pandas or polars DataFrame, "
        "or a DuckDB relation",
    )


def _is_table(data: Any) -> bool:
    import pyarrow as pa

    return isinstance(data, pa.Table)


def _reader(schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> pa.RecordBatchReader:
    import pyarrow as pa

    return pa.RecordBatchReader.from_batches(schema, batches)


def _null_count(meta: Any, column: str) -> int:
    """Nulls of a top-level column of a Parquet file: footer statistics, else a read."""
    md = meta.metadata
    total, known = 0, True
    for g in range(md.num_row_groups):
        group = md.row_group(g)
        for c in range(group.num_columns):
            chunk = group.column(c)
            if chunk.path_in_schema != column:
                continue
            stats = chunk.statistics
            if stats is None or not stats.has_null_count:
                known = False
            else:
                total += stats.null_count
    if known and any(
        md.row_group(0).column(c).path_in_schema == column
        for c in range(md.row_group(0).num_columns if md.num_row_groups else 0)
    ):
        return total
    return int(meta.read(columns=[column]).column(0).null_count)


def _check_mode(mode: str) -> None:
    if mode not in ("append", "overwrite"):
        raise UsageError(f"unknown write mode {mode!r}", hint="use 'append' or 'overwrite'")


class _LostCreateRace(Exception):
    """Another writer created the table between our look and our commit."""


# what delta-rs says when the version it meant to create the table with is taken
_CREATE_RACE = ("Protocol changed since last commit", "Metadata changed since last commit")


def _check_run_id(run_id: str) -> None:
    if not run_id or "/" in run_id or run_id.startswith((".", "_")):
        raise UsageError(f"invalid run id {run_id!r} for a staging folder")


def _utc(when: datetime | None) -> datetime:
    assert when is not None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def _describe(version: int | None, as_of: datetime | None) -> str:
    if version is not None:
        return f"version {version}"
    return f"version as of {_utc(as_of).isoformat()}"
