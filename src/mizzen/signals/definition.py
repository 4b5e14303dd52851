"""A signal as its computation sees it: the spec entry resolved against its dataset (the time
column's type), in a JSON form the plan hands to the computation's process."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from typing import Any

from mizzen.spec.units import parse_duration

DATASET = "mizzen-signals"  # the values table, in the project store
JOB_PREFIX = "mizzen-signal-"


@dataclass(frozen=True)
class AlertDef:
    name: str
    condition: str  # threshold | change | anomaly
    below: float | None = None
    above: float | None = None
    trailing: int | None = None
    percent: float | None = None
    direction: str = "both"
    k: float | None = None
    dimension: str | None = None
    webhook: str | None = None
    format: str = "json"
    email: dict[str, Any] | None = None
    severity: str = "warning"

    @property
    def notifies(self) -> bool:
        return bool(self.webhook or self.email)

    def describe(self) -> str:
        if self.condition == "change":
            sign = {"up": "rises", "down": "falls", "both": "moves"}[self.direction]
            return f"{sign} {self.percent:g}% or more vs the mean of the {self.trailing} buckets before"
        if self.condition == "anomaly":
            return (
                f"is more than {self.k:g}·MAD from the median of the {self.trailing} buckets before"
            )
        if self.below is not None:
            return f"is below {self.below:g}"
        return f"is above {self.above:g}"


@dataclass(frozen=True)
class Signal:
    name: str
    dataset: str
    time: str
    time_type: str  # date | timestamp | timestamp_ntz
    grain: str
    aggregate: str  # mean | ratio | sum | count | expression | sql
    time_zone: str = "UTC"
    x: str | None = None  # per-row value summed (mean, ratio, sum, count)
    y: str | None = None  # per-row weight summed (mean, ratio): the value is sum(x) / sum(y)
    expression: str | None = None  # an aggregate (`expression`)
    sql_file: str | None = None  # `sql`: a query over `source`
    dimensions: tuple[str, ...] = ()
    filters: tuple[str, ...] = ()
    arm: str | None = None
    control: str | None = None
    confidence: float = 0.95
    late_seconds: float = 0.0
    start: str | None = None  # ISO date
    alerts: tuple[AlertDef, ...] = ()
    engine: str = "duckdb"
    owner: str | None = None
    description: str = ""

    @property
    def job(self) -> str:
        return JOB_PREFIX + self.name

    @property
    def moments(self) -> bool:
        """Computed from per-row sums (so values combine across buckets, with intervals)."""
        return self.aggregate in ("mean", "ratio", "sum", "count")

    @property
    def averaged(self) -> bool:
        """A mean or a ratio: a value per row on average, compared across arms with an interval."""
        return self.aggregate in ("mean", "ratio")

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Signal:
        raw = json.loads(text)
        raw["alerts"] = tuple(AlertDef(**a) for a in raw.get("alerts", []))
        for key in ("dimensions", "filters"):
            raw[key] = tuple(raw.get(key, []))
        return cls(**raw)

    def digest(self, sql_text: str = "") -> str:
        """What the values depend on: a change recomputes the whole history."""
        keep = {
            k: v
            for k, v in asdict(self).items()
            if k
            in (
                "dataset",
                "time",
                "grain",
                "aggregate",
                "time_zone",
                "x",
                "y",
                "expression",
                "dimensions",
                "filters",
                "arm",
                "start",
            )
        }
        blob = json.dumps(keep, sort_keys=True) + "\0" + sql_text
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def compile_signal(project: Any, name: str, spec: Any) -> Signal:
    """The definition of signal `name` of a validated project."""
    dataset = project.datasets[spec.dataset]
    columns = {c: col.type for c, col in dataset.columns.items()}
    x: str | None = None
    y: str | None = None
    if spec.mean is not None:
        x, y = spec.mean, "1"
    elif spec.ratio is not None:
        x, y = spec.ratio.numerator, spec.ratio.denominator
    elif spec.sum is not None:
        x = spec.sum
    elif spec.count is not None:
        x = "1" if spec.count.strip() == "*" else f"CASE WHEN {spec.count} THEN 1 ELSE 0 END"
    alerts = tuple(
        AlertDef(
            name=a.label,
            condition=a.condition,
            below=a.below,
            above=a.above,
            trailing=(a.change or a.anomaly).trailing if (a.change or a.anomaly) else None,
            percent=a.change.percent if a.change else None,
            direction=a.change.direction if a.change else "both",
            k=a.anomaly.k if a.anomaly else None,
            dimension=a.dimension,
            webhook=a.webhook,
            format=a.format,
            email=a.email.model_dump(by_alias=True) if a.email else None,
            severity=a.severity,
        )
        for a in spec.alerts
    )
    return Signal(
        name=name,
        dataset=spec.dataset,
        time=spec.time,
        time_type=columns[spec.time],
        grain=spec.grain,
        aggregate=spec.aggregate,
        time_zone=spec.time_zone or "UTC",
        x=x,
        y=y,
        expression=spec.expression,
        sql_file=spec.sql,
        dimensions=tuple(spec.dimensions),
        filters=tuple(spec.filter),
        arm=spec.arm,
        control=spec.control,
        confidence=spec.confidence,
        late_seconds=parse_duration(spec.late_data),
        start=spec.start.isoformat() if spec.start else None,
        alerts=alerts,
        engine=spec.engine,
        owner=spec.owner,
        description=spec.description,
    )
