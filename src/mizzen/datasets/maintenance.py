"""Retention, erasure (`forget`) and their audit log.

- `apply_retention`: deletes the rows whose `retain.column` is older than `retain.duration`.
- `forget(subject)`: dry-run by default (rows per dataset, models trained on versions that
  held the subject); applied, it deletes the subject's rows from every dataset declaring
  `subject:`, then compacts away the old versions still holding them: at once with
  `now=True`, else once the dataset's `timeTravel` window has passed (`maintain` does it).
- `maintain`: retention, vacuum and log expiry within each window, completing pending
  erasures. This is what the scheduled maintenance job runs.

Audit records (`datasets/audit/<time>-<rand>.json`, one object each, never rewritten) never
hold a subject id in clear: `subject` is HMAC-SHA256(key, id), the key being 32 random bytes
created once per project store (`datasets/_erasure.key`, conditional create). The same id
always gives the same value, so "was this person erased, when?" can be answered by whoever
can read the store (and so the key) and knows the id; the audit log alone does not reveal it.
"""

from __future__ import annotations

import getpass
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from mizzen.datasets.errors import DatasetError, DatasetNotFound
from mizzen.errors import UsageError, first_line

if TYPE_CHECKING:
    from mizzen.datasets.catalog import Catalog
    from mizzen.datasets.table import DatasetTable
    from mizzen.storage.base import Store

AUDIT = "datasets/audit"
KEY = "datasets/_erasure.key"
_INTEGER = ("byte", "short", "integer", "long")
_INTEGER_BITS = {"byte": 8, "short": 16, "integer": 32, "long": 64}
_DIGITS = re.compile(r"-?[0-9]+")


# --- audit -------------------------------------------------------------------------------
class AuditLog:
    def __init__(self, store: Store) -> None:
        self.store = store

    def write(self, kind: str, body: dict[str, Any]) -> str:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
        record_id = f"{stamp}-{secrets.token_hex(3)}"
        record = {"id": record_id, "kind": kind, "time": time.time(), "actor": _actor(), **body}
        data = json.dumps(record, sort_keys=True, indent=1, default=str).encode()
        self.store.write_bytes(f"{AUDIT}/{record_id}.json", data)
        return record_id

    def list(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Newest first."""
        out = []
        for info in sorted(self.store.list(AUDIT), key=lambda i: i.key, reverse=True):
            try:
                record = json.loads(self.store.read_bytes(info.key))
            except (FileNotFoundError, ValueError):
                continue
            if kind is None or record.get("kind") == kind:
                out.append(record)
        return out


def subject_key(store: Store) -> bytes:
    """The project's erasure key (created on first use; the first creator wins)."""
    try:
        return bytes.fromhex(store.read_bytes(KEY).decode().strip())
    except FileNotFoundError:
        store.create(KEY, secrets.token_hex(32).encode())
        return bytes.fromhex(store.read_bytes(KEY).decode().strip())


def subject_hash(store: Store, subject: str) -> str:
    return hmac.new(subject_key(store), str(subject).encode(), hashlib.sha256).hexdigest()


def _actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = os.environ.get("USER", "")
    return f"{user}@{socket.gethostname()}"


# --- retention ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RetentionResult:
    dataset: str
    column: str
    cutoff: str
    rows_removed: int
    version: int | None  # the version that removed them (None: nothing to remove)
    error: str | None = None  # why this dataset's retention failed (the others went on)


def apply_retention(
    catalog: Catalog, *, now: datetime | None = None, dry_run: bool = False
) -> list[RetentionResult]:
    """Delete rows older than each dataset's `retain:` (dry run: only count them)."""
    now = _utc(now)
    results = []
    for name in catalog.names():
        spec = catalog.spec(name)
        if spec.retain is None:
            continue
        column = spec.retain.column
        kind = spec.columns[column].type
        cutoff_time = now - timedelta(seconds=spec.retain.seconds)
        cutoff: date | datetime
        if kind in ("date", "string"):
            cutoff = cutoff_time.date()
        elif kind == "timestamp_ntz":
            cutoff = cutoff_time.replace(tzinfo=None)
        else:
            cutoff = cutoff_time
        try:
            table = catalog.table(name)
            if not table.exists():
                rows, version = 0, None
            elif dry_run:
                rows, version = table.count_where(column, "<", _scalar(kind, cutoff)), None
            else:
                sql = _older_sql(column, kind, cutoff)
                rows, version = table.delete(sql, operation="retention")
        except Exception as exc:  # reported; the other datasets still get theirs
            results.append(
                RetentionResult(name, column, cutoff.isoformat(), 0, None, first_line(exc))
            )
            continue
        results.append(RetentionResult(name, column, cutoff.isoformat(), rows, version))
    removed = [asdict(r) for r in results if r.rows_removed]
    if removed and not dry_run:
        AuditLog(catalog.project).write("retention", {"datasets": removed, "now": now.isoformat()})
    return results


def _scalar(kind: str, cutoff: date | datetime) -> Any:
    import pyarrow as pa

    from mizzen.datasets.types import arrow_type

    if kind == "string":
        return pa.scalar(cutoff.isoformat())
    return pa.scalar(cutoff, type=arrow_type(kind))


def _older_sql(column: str, kind: str, cutoff: date | datetime) -> str:
    if kind == "timestamp" and isinstance(cutoff, datetime):
        text = cutoff.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return f"{_ident(column)} < {_literal(text)}"
    if kind == "timestamp_ntz" and isinstance(cutoff, datetime):
        text = cutoff.strftime("%Y-%m-%dT%H:%M:%S.%f")
        return f"{_ident(column)} < {_literal(text)}"
    if kind == "date":
        return f"{_ident(column)} < {_literal(cutoff.isoformat())}"
    return f"{_ident(column)} < {_literal(cutoff.isoformat())}"


# --- erasure -----------------------------------------------------------------------------
@dataclass
class DatasetErasure:
    dataset: str
    column: str
    rows: int  # in the current version: to remove (dry run) or removed
    version_before: int | None
    version_after: int | None = None
    compaction: Literal["none", "done", "pending"] = "none"
    compact_after: float | None = None  # pending: when `maintain` removes the old versions


@dataclass(frozen=True)
class ModelHit:
    model: str
    version: int
    dataset: str
    dataset_version: int
    contained: bool | None  # None: that version's files are gone, so it cannot be told


@dataclass
class ErasureReport:
    subject: str  # the keyed hash, never the id
    applied: bool
    now: bool
    datasets: list[DatasetErasure] = field(default_factory=list)
    models: list[ModelHit] = field(default_factory=list)
    without_subject: list[str] = field(default_factory=list)
    audit_id: str | None = None

    @property
    def rows(self) -> int:
        return sum(d.rows for d in self.datasets)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows": self.rows}


def forget(
    catalog: Catalog,
    subject: str | int,
    *,
    apply: bool = False,
    now: bool = False,
    reason: str = "",
) -> ErasureReport:
    """Remove one person from every dataset that declares `subject:` (dry run unless
    `apply`). Every dataset is checked before anything is deleted."""
    text = str(subject).strip()
    if not text:
        raise UsageError("forget needs a subject id")
    names = [n for n in catalog.names() if catalog.spec(n).subject]
    if not names:
        raise UsageError(
            "no dataset declares a subject: column", hint="add subject: <column> to the datasets"
        )
    report = ErasureReport(subject_hash(catalog.project, text), apply, now)
    report.without_subject = [n for n in catalog.names() if n not in names]
    values = {n: _subject_value(catalog, n, text) for n in names}  # raises before any change
    for name in names:
        column = catalog.spec(name).subject or ""
        try:
            table = catalog.table(name)
            before = table.version()
            rows = table.count_where(column, "==", values[name]) if before is not None else 0
        except UsageError:
            raise
        except Exception as exc:  # every dataset is read before any is changed
            raise DatasetError(
                f"forget: dataset {name!r} cannot be read: {_scrub(first_line(exc), text)}",
                hint="nothing was removed from any dataset; repair or restore it, then run "
                "forget again",
            ) from None
        entry = DatasetErasure(name, column, rows, before)
        if not apply:
            _compaction(table, entry, now=now)
        report.datasets.append(entry)
    report.models = _models_holding(catalog, values)
    if not apply:
        return report
    failures = []
    for entry in report.datasets:
        table = catalog.table(entry.dataset)
        try:
            _erase(table, entry, values[entry.dataset], now=now)
        except Exception as exc:  # recorded, and the other datasets are still erased
            failures.append(f"{entry.dataset}: {_scrub(str(exc), text)}")
    report.audit_id = AuditLog(catalog.project).write(
        "forget",
        {
            "subject": report.subject,
            "key_id": hashlib.sha256(subject_key(catalog.project)).hexdigest()[:12],
            "now": now,
            "reason": reason,
            "datasets": [asdict(d) for d in report.datasets],
            "models": [asdict(m) for m in report.models],
            "failures": failures,
        },
    )
    if failures:
        raise DatasetError(
            "forget did not finish: " + "; ".join(failures),
            hint="run it again: datasets already cleaned are skipped (audit "
            + report.audit_id
            + ")",
        )
    return report


def _erase(table: DatasetTable, entry: DatasetErasure, value: Any, *, now: bool) -> None:
    if entry.version_before is None:
        return
    if entry.rows:
        predicate = f"{_ident(entry.column)} = {_literal(value)}"
        _, entry.version_after = table.delete(predicate, operation="forget")
    if now:
        table.vacuum(now=True)
    _compaction(table, entry, now=now)


def _compaction(table: DatasetTable, entry: DatasetErasure, *, now: bool) -> None:
    """What happens to the old versions that may hold the subject: removed now, or by
    maintenance once the time-travel window has passed; the same answer for a dry run."""
    if entry.version_before is None:
        return
    if now:
        entry.compaction = "done"
    elif entry.rows or len(table.versions(limit=2)) > 1:
        entry.compaction = "pending"
        entry.compact_after = time.time() + table.spec.time_travel_seconds


def _models_holding(catalog: Catalog, values: dict[str, Any]) -> list[ModelHit]:
    checked: dict[tuple[str, int], bool | None] = {}
    hits = []
    for record in catalog.lineage.models():
        for name, version in record.trained_on:
            if name not in values:
                continue
            if (name, version) not in checked:
                column = catalog.spec(name).subject or ""
                try:
                    table = catalog.table(name)
                    found = table.count_where(column, "==", values[name], version)
                    checked[name, version] = found > 0
                except (DatasetNotFound, DatasetError, OSError):
                    checked[name, version] = None
                except Exception as exc:  # files of a vacuumed version: unreadable, not absent
                    if "not found" in str(exc).lower() or "no such file" in str(exc).lower():
                        checked[name, version] = None
                    else:
                        raise
            contained = checked[name, version]
            if contained is not False:
                hits.append(ModelHit(record.model, record.version, name, version, contained))
    return sorted(hits, key=lambda h: (h.model, h.version, h.dataset))


def _subject_value(catalog: Catalog, name: str, text: str) -> Any:
    """The id as the subject column's type; the error never repeats the id (it may end up
    in a pod's log)."""
    spec = catalog.spec(name)
    kind = spec.columns[spec.subject or ""].type
    if kind not in _INTEGER:
        return text
    bits = _INTEGER_BITS[kind]
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if not _DIGITS.fullmatch(text) or not low <= int(text) <= high:
        raise UsageError(
            f"{name}.{spec.subject} is {kind}: the subject id given is not an integer "
            f"from {low} to {high}",
            hint="nothing was removed from any dataset",
        )
    return int(text)


def _scrub(text: str, subject: str) -> str:
    """An error message with the subject id taken out (errors go into the audit record)."""
    return text.replace(subject, "<subject>") if subject else text


# --- maintenance -------------------------------------------------------------------------
@dataclass
class MaintenanceReport:
    retention: list[RetentionResult] = field(default_factory=list)
    vacuumed: dict[str, int] = field(default_factory=dict)  # files removed per dataset
    completed_erasures: list[str] = field(default_factory=list)  # audit ids
    # erasures still waiting for their window: {"id", "compact_after"}
    pending_erasures: list[dict[str, Any]] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)  # "<dataset>: <step>: <why>"

    @property
    def ok(self) -> bool:
        return not self.failures

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def maintain(catalog: Catalog, *, now: datetime | None = None) -> MaintenanceReport:
    """Retention (as of `now`), then vacuum + log expiry of every dataset within its window,
    then mark the erasures whose window has passed (by the wall clock) as complete. A step
    that fails for one dataset is reported in `failures`; the others still run."""
    report = MaintenanceReport(retention=apply_retention(catalog, now=now))
    report.failures += [f"{r.dataset}: retention: {r.error}" for r in report.retention if r.error]
    for name in catalog.names():
        try:
            table = catalog.table(name)
            if table.exists():
                report.vacuumed[name] = len(table.vacuum())
        except Exception as exc:  # reported; the other datasets are still vacuumed
            report.failures.append(f"{name}: vacuum: {first_line(exc)}")
    audit = AuditLog(catalog.project)
    records = audit.list()  # read once: the log only grows
    done = {r.get("completes") for r in records if r.get("kind") == "forget-compacted"}
    moment = time.time()  # vacuum goes by the wall clock, so completion does too
    for record in (r for r in records if r.get("kind") == "forget"):
        pending = [d for d in record.get("datasets", []) if d.get("compaction") == "pending"]
        if not pending or record["id"] in done:
            continue
        waiting = {
            "id": record["id"],
            "compact_after": max(d.get("compact_after") or 0 for d in pending),
        }
        try:
            compacted = all(_compacted(catalog, d, moment) for d in pending)
        except Exception as exc:
            report.failures.append(f"erasure {record['id']}: {first_line(exc)}")
            report.pending_erasures.append(waiting)
            continue
        if not compacted:
            report.pending_erasures.append(waiting)
        else:
            audit.write(
                "forget-compacted",
                {
                    "completes": record["id"],
                    "subject": record.get("subject"),
                    "datasets": [d["dataset"] for d in pending],
                },
            )
            report.completed_erasures.append(record["id"])
    return report


def _compacted(catalog: Catalog, entry: dict[str, Any], moment: float) -> bool:
    """The window has passed and the log no longer reaches back to the erasure's version
    (log entries older than it held the subject in file statistics and in the predicate)."""
    if (entry.get("compact_after") or 0) > moment:
        return False
    if entry["dataset"] not in catalog.specs:
        return True  # the dataset was removed from the spec
    oldest = catalog.table(entry["dataset"]).oldest_version()
    last = entry.get("version_after") or entry.get("version_before") or 0
    return oldest is None or oldest >= last


# --- SQL literals (delta-rs predicates) -------------------------------------------------
def _ident(column: str) -> str:
    return '"' + column.replace('"', '""') + '"'


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def _utc(when: datetime | None) -> datetime:
    if when is None:
        return datetime.now(UTC)
    return when if when.tzinfo else when.replace(tzinfo=UTC)
