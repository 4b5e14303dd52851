"""A signal as `mizzen signals` and the dashboard show it: its definition (from the compiled
plan, what its job computes), its values (from the values table), freshness, experiment
arms with intervals, and the state of its alerts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mizzen.errors import UsageError
from mizzen.signals.definition import JOB_PREFIX, Signal
from mizzen.signals.stats import Difference, Estimate, Moments, choose_control, difference, estimate

if TYPE_CHECKING:
    import pyarrow as pa

    from mizzen.plan.model import Plan
    from mizzen.signals.watch import Verdict
    from mizzen.storage.base import Store

SPARKS = "▁▂▃▄▅▆▇█"


def definitions(plan: Plan) -> dict[str, Signal]:
    """The signals of a compiled plan, as their computation jobs carry them."""
    from mizzen.signals.builtin import RUNNER

    out: dict[str, Signal] = {}
    for name, job in plan.jobs.items():
        spec = job.spec
        if name.startswith(JOB_PREFIX) and getattr(spec, "runner", None) == RUNNER:
            signal = Signal.from_json(spec.parameters["signal"])
            out[signal.name] = signal
    return out


def find(plan: Plan, name: str) -> Signal:
    found = definitions(plan)
    if name not in found:
        from mizzen.spec.problems import suggest

        hint = suggest(name, list(found)) or (
            f"signals: {', '.join(found)}"
            if found
            else "declare one under `signals:` in mizzen.yaml"
        )
        raise UsageError(f"no signal {name!r} in this project", hint=hint)
    return found[name]


def sparkline(values: list[float | None]) -> str:
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = high - low
    out = []
    for v in values:
        if v is None:
            out.append(" ")
        else:
            out.append(SPARKS[0 if span == 0 else min(int((v - low) / span * 7.999), 7)])
    return "".join(out)


@dataclass
class View:
    signal: Signal
    rows: pa.Table
    table_version: int | None = None
    now: datetime | None = None

    @classmethod
    def load(cls, signal: Signal, project: Store, now: datetime | None = None) -> View:
        from mizzen.signals import values

        table = values.table(project)
        version = table.version()
        rows = values.read(table, signal.name)
        return cls(signal, rows, version, now)

    @property
    def records(self) -> list[dict[str, Any]]:
        if not hasattr(self, "_records"):
            self._records = self.rows.to_pylist()
            for r in self._records:
                r["bucket"] = _utc(r["bucket"])
                r["computed_at"] = _utc(r["computed_at"])
        return self._records

    def clock(self) -> datetime:
        return self.now or datetime.now(UTC)

    def segments(self) -> dict[str, list[str]]:
        out: dict[str, set[str]] = {}
        for r in self.records:
            if r["dimension"]:
                out.setdefault(r["dimension"], set()).add(r["segment"])
        return {d: sorted(out.get(d, set())) for d in self.signal.dimensions}

    def arms(self) -> list[str]:
        return sorted({r["arm"] for r in self.records if r["arm"]})

    def series(self, dimension: str = "", segment: str = "", arm: str = "") -> list[dict[str, Any]]:
        """Rows of one series (oldest first), each marked complete or not."""
        from mizzen.signals import buckets

        now = self.clock()
        out = []
        for r in self.records:
            if r["dimension"] != dimension or r["arm"] != arm:
                continue
            if dimension and r["segment"] != segment:
                continue
            end = buckets.step(r["bucket"], self.signal.grain, self.signal.time_zone)
            out.append({**r, "complete": end <= now})
        return out

    def freshness(self) -> dict[str, Any]:
        if not self.records:
            return {
                "computed_at": None,
                "last_bucket": None,
                "source_version": None,
                "run_id": None,
                "buckets": 0,
            }
        latest = max(self.records, key=lambda r: r["computed_at"])
        return {
            "computed_at": latest["computed_at"],
            "last_bucket": max(r["bucket"] for r in self.records),
            "source_version": latest["source_version"],
            "run_id": latest["run_id"],
            "buckets": len({r["bucket"] for r in self.records}),
        }

    def experiment(
        self,
        start: datetime | None = None,
        end: datetime | None = None,
        dimension: str = "",
        segment: str = "",
    ) -> dict[str, Any] | None:
        """Per-arm values with intervals over the buckets start..end (all when None), and
        each arm against the control; None when the signal has no arm."""
        if self.signal.arm is None:
            return None
        arms = self.arms()
        pooled: dict[str, Moments] = {}
        for arm in arms:
            rows = [
                r
                for r in self.series(dimension, segment, arm)
                if (start is None or r["bucket"] >= start) and (end is None or r["bucket"] < end)
            ]
            parts = [Moments.of(r) for r in rows]
            if any(p is None for p in parts):
                pooled = {}
                break
            pooled[arm] = Moments.total(p for p in parts if p is not None)
        control = choose_control(arms, self.signal.control)
        estimates: dict[str, Estimate] = {}
        diffs: list[Difference] = []
        if self.signal.averaged and pooled:
            estimates = {a: estimate(m, self.signal.confidence) for a, m in pooled.items()}
            if control in pooled:
                diffs = [
                    difference(a, m, control, pooled[control], self.signal.confidence)
                    for a, m in pooled.items()
                    if a != control
                ]
        elif pooled:
            estimates = {
                a: Estimate(m.sx if not self.signal.averaged else m.value, None, None, m.n, "none")
                for a, m in pooled.items()
            }
        return {
            "arm_column": self.signal.arm,
            "control": control,
            "confidence": self.signal.confidence,
            "arms": {a: e.to_dict() for a, e in estimates.items()},
            "differences": [d.to_dict() for d in diffs],
            "intervals": self.signal.averaged and bool(pooled),
        }

    def verdicts(self) -> list[Verdict]:
        from mizzen.signals.watch import evaluate

        return evaluate(self.signal, self.rows, self.clock())

    def to_dict(self, last: int | None = None) -> dict[str, Any]:
        def points(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
            keep = rows[-last:] if last else rows
            return [
                {
                    "bucket": r["bucket"].isoformat(),
                    "value": r["value"],
                    "n": r["n"],
                    "complete": r["complete"],
                }
                for r in keep
            ]

        s = self.signal
        segments = {
            d: {seg: points(self.series(d, seg)) for seg in segs}
            for d, segs in self.segments().items()
        }
        fresh = self.freshness()
        return {
            "name": s.name,
            "description": s.description,
            "owner": s.owner,
            "dataset": s.dataset,
            "time": s.time,
            "grain": s.grain,
            "time_zone": s.time_zone,
            "aggregate": s.aggregate,
            "definition": definition_text(s),
            "dimensions": list(s.dimensions),
            "arm": s.arm,
            "freshness": {
                k: v.isoformat() if isinstance(v, datetime) else v for k, v in fresh.items()
            },
            "values": points(self.series()),
            "segments": segments,
            "arms": {a: points(self.series(arm=a)) for a in self.arms()},
            "experiment": self.experiment(),
            "alerts": [v.to_dict() for v in self.verdicts()],
        }


def definition_text(s: Signal) -> str:
    """The signal's aggregate as a user reads it."""
    if s.aggregate == "ratio":
        return f"sum({s.x}) / sum({s.y})"
    if s.aggregate == "mean":
        return f"avg({s.x})"
    if s.aggregate in ("sum", "count"):
        return f"sum({s.x})"
    if s.aggregate == "expression":
        return s.expression or ""
    return f"SQL file {s.sql_file}"


def _utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value
