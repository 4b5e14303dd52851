"""Run records in the project store: what ran, how it ended, its logs, params and metrics.

Layout (every run writes only under its own prefix, so writers never share an object):

    runs/<workload>/<run-id>/run.json       the record; rewritten while the run goes on
    runs/<workload>/<run-id>/logs/<step>.log
    runs/<workload>/<run-id>/metrics.jsonl  one {"name","value","step","time"} per line
    runs/<workload>/<run-id>/outputs/...    files the run kept (e.g. an executed notebook)
    runs/<workload>/<run-id>/_done          the commit marker, written last

A run without `_done` is still going, or its writer died: a `running` record whose
`heartbeat` is older than LOST_AFTER is shown as `lost` (`seen`), ended at its last
heartbeat; the next run in the same project also writes it so (`recorder.sweep_staging`).

Listing stays fast with thousands of runs: `list` costs one LIST per workload (the run ids)
plus reads of the records not yet in the compacted index

    _index/runs/<workload>/<seq>.json       every finished run's record, as one JSON array

Finished records never change, so folding them into one object is safe. An index object is
never rewritten: a reader that had to read at least COMPACT_EVERY finished records itself
creates `<seq+1>.json` with a conditional create (If-None-Match / O_EXCL) and drops `<seq>`.
Two readers racing produce the same content; one create wins, the other is discarded. This
needs only the `create` primitive every store has (no compare-and-swap on etags), never
blocks writers (runs still write only under their own prefix) and tolerates writers that
bypass `RunStore` (run ids come from the run folders, not from the index). Running runs are
always read fresh.
"""

from __future__ import annotations

import builtins
import copy
import json
import secrets
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from mizzen.storage.base import Store

Status = Literal["pending", "running", "succeeded", "failed", "cancelled", "skipped", "lost"]
FINAL: tuple[str, ...] = ("succeeded", "failed", "cancelled", "skipped", "lost")
LOST_AFTER = 120.0  # a running record whose heartbeat is older than this lost its writer
DONE_MARKER = "_done"
INDEX = "_index/runs"  # compacted summaries of finished runs, per workload
COMPACT_EVERY = 32  # fold finished runs into a new index object once this many were read


def new_run_id(now: float | None = None) -> str:
    """Sortable by time, unique enough for concurrent starts: 20261123-153012-7f3a."""
    stamp = datetime.fromtimestamp(now if now is not None else time.time(), UTC).strftime(
        "%Y%m%d-%H%M%S"
    )
    return f"{stamp}-{secrets.token_hex(2)}"


@dataclass
class StepRecord:
    name: str
    job: str
    status: Status = "pending"
    started: float | None = None
    ended: float | None = None
    exit_code: int | None = None
    attempts: int = 0
    reason: str = ""
    after: builtins.list[str] = field(default_factory=list)

    @property
    def duration(self) -> float | None:
        if self.started is None:
            return None
        return (self.ended or time.time()) - self.started


@dataclass
class RunRecord:
    id: str
    workload: str
    kind: str  # job | pipeline | service
    status: Status = "running"
    started: float = field(default_factory=time.time)
    ended: float | None = None
    trigger: str = "manual"  # manual | schedule | cluster
    target: str = "local"
    env: str | None = None
    git_sha: str | None = None
    spec_digest: str | None = None
    project: str = ""
    user: str = ""
    host: str = ""
    image: str | None = None
    reason: str = ""  # one plain sentence when it did not succeed
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)  # last value of each metric
    labels: dict[str, str] = field(default_factory=dict)
    outputs: builtins.list[str] = field(default_factory=list)
    steps: builtins.list[StepRecord] = field(default_factory=list)
    heartbeat: float = field(default_factory=time.time)
    pid: int | None = None  # of the runner (`mizzen run` or `mizzen exec`), on `host`

    @property
    def duration(self) -> float | None:
        return (self.ended or time.time()) - self.started

    @property
    def prefix(self) -> str:
        return f"runs/{self.workload}/{self.id}"

    def to_json(self) -> bytes:
        return json.dumps(asdict(self), sort_keys=True, indent=1).encode()

    @classmethod
    def from_json(cls, data: bytes) -> RunRecord:
        raw = json.loads(data)
        steps = [StepRecord(**s) for s in raw.pop("steps", [])]
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in raw.items() if k in known}, steps=steps)


def mark_lost(record: RunRecord) -> None:
    """Ended at its last heartbeat: running steps `lost`, steps not started `skipped`."""
    end = max(record.heartbeat, record.started)
    runner = f"pid {record.pid} on {record.host}" if record.pid else record.host or "its runner"
    when = datetime.fromtimestamp(end).strftime("%Y-%m-%d %H:%M:%S")
    record.status, record.ended = "lost", end
    record.reason = (
        f"its runner ({runner}) stopped at {when} without finishing "
        "(killed, or its machine went down)"
    )
    for step in record.steps:
        if step.status == "running":
            step.status, step.ended = "lost", max(end, step.started or end)
            step.reason = "lost with its runner"
        elif step.status == "pending":
            step.status, step.reason = "skipped", "not run: the run was lost"


def seen(record: RunRecord, now: float | None = None) -> RunRecord:
    """The record as every reader shows it: a running one whose heartbeat stopped more than
    LOST_AFTER ago is `lost` (a copy; the stored record is left alone)."""
    if record.status not in ("running", "pending"):
        return record
    if (now if now is not None else time.time()) - record.heartbeat <= LOST_AFTER:
        return record
    lost = copy.deepcopy(record)
    mark_lost(lost)
    return lost


@dataclass(frozen=True)
class Metric:
    name: str
    value: float
    step: int | None
    time: float


class RunStore:
    """Read and write run records in a project store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- writing ---------------------------------------------------------------------------
    def save(self, record: RunRecord) -> None:
        record.heartbeat = time.time()
        self.store.write_bytes(f"{record.prefix}/run.json", record.to_json())

    def finish(self, record: RunRecord) -> None:
        """Write the final record, then the marker: readers never see half a run."""
        if record.ended is None:
            record.ended = time.time()
        self.save(record)
        self.store.write_bytes(f"{record.prefix}/{DONE_MARKER}", b"")

    def put_log(self, record: RunRecord, step: str, data: bytes) -> None:
        self.store.write_bytes(f"{record.prefix}/logs/{step}.log", data)

    def put_metrics(self, record: RunRecord, metrics: builtins.list[Metric]) -> None:
        lines = "".join(json.dumps(asdict(m)) + "\n" for m in metrics)
        self.store.write_bytes(f"{record.prefix}/metrics.jsonl", lines.encode())

    def put_output(self, record: RunRecord, local_path: str, name: str) -> None:
        self.store.put_file(local_path, f"{record.prefix}/outputs/{name}")
        if name not in record.outputs:
            record.outputs.append(name)

    # --- reading ---------------------------------------------------------------------------
    def workloads(self) -> builtins.list[str]:
        return self.store.list_dirs("runs")

    def run_ids(self, workload: str | None = None) -> builtins.list[tuple[str, str]]:
        """(run id, workload), newest first: one LIST call per workload."""
        names = [workload] if workload else self.workloads()
        ids = [(rid, name) for name in names for rid in self.store.list_dirs(f"runs/{name}")]
        ids.sort(reverse=True)
        return ids

    def list(
        self, workload: str | None = None, *, limit: int | None = None
    ) -> builtins.list[RunRecord]:
        """Newest first. Finished runs come from the compacted index; the rest are read."""
        ids = self.run_ids(workload)
        if limit is not None:
            ids = ids[:limit]
        by_workload: dict[str, builtins.list[str]] = {}
        for rid, name in ids:
            by_workload.setdefault(name, []).append(rid)
        found: dict[tuple[str, str], RunRecord] = {}
        for name, rids in by_workload.items():
            found.update({(r.id, name): r for r in self._records(name, rids)})
        now = time.time()
        return [seen(found[key], now) for key in ids if key in found]

    def _records(self, workload: str, rids: builtins.list[str]) -> builtins.list[RunRecord]:
        seq, compact = self._compact(workload)
        out = [compact[rid] for rid in rids if rid in compact]
        missing = [rid for rid in rids if rid not in compact]
        fresh = [
            r for r in _parallel(lambda rid: self._load(workload, rid), missing) if r is not None
        ]
        out += fresh
        finished = [r for r in fresh if r.status in FINAL and r.ended is not None]
        if len(finished) >= COMPACT_EVERY:
            self._write_compact(workload, seq, compact, finished)
        return out

    def _compact(self, workload: str) -> tuple[int, dict[str, RunRecord]]:
        """The newest compacted index of `workload`: (sequence number, finished records)."""
        for info in sorted(
            self.store.list(f"{INDEX}/{workload}"), key=lambda i: i.key, reverse=True
        ):
            stem = info.key.rsplit("/", 1)[-1].removesuffix(".json")
            if not stem.isdigit():
                continue
            try:
                raw = json.loads(self.store.read_bytes(info.key))
            except FileNotFoundError:  # replaced meanwhile by a newer one
                continue
            return int(stem), {r["id"]: RunRecord.from_json(json.dumps(r).encode()) for r in raw}
        return 0, {}

    def _write_compact(
        self, workload: str, seq: int, compact: dict[str, RunRecord], new: builtins.list[RunRecord]
    ) -> None:
        merged = {**compact, **{r.id: r for r in new}}
        body = json.dumps([asdict(r) for r in merged.values()], sort_keys=True).encode()
        key = f"{INDEX}/{workload}/{seq + 1:010d}.json"
        if self.store.create(key, body) and seq:
            self.store.delete(f"{INDEX}/{workload}/{seq:010d}.json")

    def _load(self, workload: str, run_id: str) -> RunRecord | None:
        try:
            return RunRecord.from_json(self.store.read_bytes(f"runs/{workload}/{run_id}/run.json"))
        except FileNotFoundError:
            return None

    def get(self, run_id: str) -> RunRecord:
        """A run by id (or a unique id prefix, or `workload/run-id`), as readers see it."""
        return seen(self.stored(run_id))

    def stored(self, run_id: str) -> RunRecord:
        """`get`, as the record is stored (a lost run may still say `running`)."""
        if "/" in run_id:
            workload, rid = run_id.split("/", 1)
            rec = self._load(workload, rid)
            if rec is None:
                raise KeyError(run_id)
            return rec
        matches = [(w, r) for r, w in self.run_ids() if r.startswith(run_id)]
        if len(matches) != 1:
            raise (
                KeyError(run_id)
                if not matches
                else LookupError(f"{run_id!r} matches {len(matches)} runs")
            )
        rec = self._load(*matches[0])
        if rec is None:
            raise KeyError(run_id)
        return rec

    def is_done(self, record: RunRecord) -> bool:
        return self.store.exists(f"{record.prefix}/{DONE_MARKER}")

    def log(self, record: RunRecord, step: str) -> bytes:
        try:
            return self.store.read_bytes(f"{record.prefix}/logs/{step}.log")
        except FileNotFoundError:
            return b""

    def metrics(self, record: RunRecord) -> builtins.list[Metric]:
        try:
            data = self.store.read_bytes(f"{record.prefix}/metrics.jsonl")
        except FileNotFoundError:
            return []
        return [Metric(**json.loads(line)) for line in data.decode().splitlines() if line.strip()]


def _parallel(
    fn: Callable[[str], RunRecord | None], items: Iterable[str]
) -> list[RunRecord | None]:
    items = list(items)
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(16, len(items))) as pool:
        return list(pool.map(fn, items))
