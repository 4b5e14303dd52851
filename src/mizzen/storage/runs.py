"""Run records in the project store: what ran, how it ended, its logs, params and metrics.

Layout (every run writes only under its own prefix, so writers never share an object):

    runs/<workload>/<run-id>/run.json       the record; rewritten while the run goes on
    runs/<workload>/<run-id>/logs/<step>.log
    runs/<workload>/<run-id>/metrics.jsonl  one {"name","value","step","time"} per line
    runs/<workload>/<run-id>/outputs/...    files the run kept (e.g. an executed notebook)
    runs/<workload>/<run-id>/_done          the commit marker, written last

A run without `_done` is still going (or its writer died: `heartbeat` tells which).
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from mizzen.storage.base import Store

Status = Literal["pending", "running", "succeeded", "failed", "cancelled", "skipped"]
FINAL: tuple[str, ...] = ("succeeded", "failed", "cancelled", "skipped")
DONE_MARKER = "_done"


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
    after: list[str] = field(default_factory=list)

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
    outputs: list[str] = field(default_factory=list)
    steps: list[StepRecord] = field(default_factory=list)
    heartbeat: float = field(default_factory=time.time)

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

    def put_metrics(self, record: RunRecord, metrics: list[Metric]) -> None:
        lines = "".join(json.dumps(asdict(m)) + "\n" for m in metrics)
        self.store.write_bytes(f"{record.prefix}/metrics.jsonl", lines.encode())

    def put_output(self, record: RunRecord, local_path: str, name: str) -> None:
        self.store.put_file(local_path, f"{record.prefix}/outputs/{name}")
        if name not in record.outputs:
            record.outputs.append(name)

    # --- reading ---------------------------------------------------------------------------
    def workloads(self) -> list[str]:
        return self.store.list_dirs("runs")

    def list(self, workload: str | None = None, *, limit: int | None = None) -> list[RunRecord]:
        """Newest first."""
        names = [workload] if workload else self.workloads()
        ids: list[tuple[str, str]] = []
        for name in names:
            ids += [(rid, name) for rid in self.store.list_dirs(f"runs/{name}")]
        ids.sort(reverse=True)
        if limit is not None:
            ids = ids[:limit]
        out = []
        for rid, name in ids:
            rec = self._load(name, rid)
            if rec is not None:
                out.append(rec)
        return out

    def _load(self, workload: str, run_id: str) -> RunRecord | None:
        try:
            return RunRecord.from_json(self.store.read_bytes(f"runs/{workload}/{run_id}/run.json"))
        except FileNotFoundError:
            return None

    def get(self, run_id: str) -> RunRecord:
        """A run by id (or a unique id prefix, or `workload/run-id`)."""
        if "/" in run_id:
            workload, rid = run_id.split("/", 1)
            rec = self._load(workload, rid)
            if rec is None:
                raise KeyError(run_id)
            return rec
        matches = [
            (w, r)
            for w in self.workloads()
            for r in self.store.list_dirs(f"runs/{w}")
            if r.startswith(run_id)
        ]
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

    def metrics(self, record: RunRecord) -> list[Metric]:
        try:
            data = self.store.read_bytes(f"{record.prefix}/metrics.jsonl")
        except FileNotFoundError:
            return []
        return [Metric(**json.loads(line)) for line in data.decode().splitlines() if line.strip()]
