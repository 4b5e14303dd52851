"""One entry of the spec's `signals:` section: a named metric over a declared dataset
(pydantic only: `mizzen validate` imports it).

    signals:
      business-share:
        dataset: drives
        time: started_at                    # a date or timestamp column
        grain: day                          # hour | day | week
        ratio:                              # or mean / sum / count / expression / sql
          numerator: "predicted = 'business' AND confidence >= 0.9"
          denominator: "1"
        dimensions: [vehicle]               # segments, each sliced on its own
        filter: "source = 'app'"            # rows measured (a SQL predicate, or a list: AND)
        arm: variant                        # an experiment's arm column: per-arm values + CIs
        lateData: 2d                        # recompute this far back on every run
        alerts:
          - {below: 0.3, webhook: "${secrets.alerts.url}"}
          - {change: {trailing: 7, percent: 20}}
          - {anomaly: {trailing: 28, k: 3}}
        owner: quality@example.com
        description: Share of drives auto-classified business with confidence >= 0.9.

Checks that need the dataset's schema (columns, the time column's type) are in
`mizzen.spec.references`; this module checks each entry on its own.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from mizzen.kinds.sql import SqlSpark
from mizzen.spec.base import Model
from mizzen.spec.models import EmailSpec, Resources, ScheduleSpec
from mizzen.spec.types import Duration

GRAINS = ("hour", "day", "week")
AGGREGATES = ("mean", "ratio", "sum", "count", "expression", "sql")
# when a signal is computed unless `schedule:` says otherwise: just after each bucket ends
DEFAULT_CRON = {"hour": "5 * * * *", "day": "30 0 * * *", "week": "30 0 * * 1"}
NAME_LIMIT = 49  # its job is `mizzen-signal-<name>`, a DNS-1123 label of at most 63


class Ratio(Model):
    numerator: str = Field(description="A SQL expression per row, summed (true counts as 1)")
    denominator: str = Field(
        "1", description="A SQL expression per row, summed (default 1: the rows counted)"
    )

    @field_validator("numerator", "denominator", mode="before")
    @classmethod
    def _text(cls, value: Any) -> Any:
        return _sql_text(value)


class ChangeRule(Model):
    trailing: int = Field(
        7, ge=1, le=1000, description="Compared with the mean of this many buckets before"
    )
    percent: float = Field(gt=0, description="Fire when the value moved by at least this many %")
    direction: Literal["up", "down", "both"] = "both"


class AnomalyRule(Model):
    trailing: int = Field(28, ge=5, le=1000, description="The history the median and MAD come from")
    k: float = Field(3.0, gt=0, description="Fire when |value - median| > k * 1.4826 * MAD")


class SignalAlert(Model):
    """One condition on a signal's latest complete bucket, and where to send it."""

    name: str | None = Field(
        None, description="How the alert is named (default: the condition, e.g. below-0.3)"
    )
    below: float | None = Field(None, description="Fire when the value is below this")
    above: float | None = Field(None, description="Fire when the value is above this")
    change: ChangeRule | None = Field(None, description="Change vs the trailing N buckets")
    anomaly: AnomalyRule | None = Field(None, description="Robust anomaly: median ± k·MAD")
    dimension: str | None = Field(
        None, description="Watch each segment of this dimension (default: the whole signal)"
    )
    webhook: str | None = Field(None, description="URL; may be ${secrets.NAME.KEY}")
    format: Literal["json", "slack", "teams"] = "json"
    email: EmailSpec | None = None
    severity: str = Field("warning", description="The PrometheusRule's severity label")

    @model_validator(mode="after")
    def _one_condition(self) -> SignalAlert:
        kinds = [
            k
            for k, on in (
                ("threshold", self.below is not None or self.above is not None),
                ("change", self.change is not None),
                ("anomaly", self.anomaly is not None),
            )
            if on
        ]
        if len(kinds) != 1:
            got = ", ".join(kinds) if kinds else "none"
            raise ValueError(
                f"a signal alert needs exactly one condition: below/above, change or anomaly (got {got})"
            )
        if self.below is not None and self.above is not None and self.below <= self.above:
            raise ValueError(
                f"below ({self.below}) <= above ({self.above}) always fires; "
                "for a band use below: LOW_BOUND as its own alert and above: HIGH_BOUND as another"
            )
        if self.name is not None:
            from mizzen.spec.units import check_name

            check_name(self.name)
        return self

    @property
    def condition(self) -> str:
        if self.change is not None:
            return "change"
        if self.anomaly is not None:
            return "anomaly"
        return "threshold"

    @property
    def label(self) -> str:
        """The alert's name: given, or from its condition (`below-0.3`, `change-7`)."""
        if self.name:
            return self.name
        if self.change is not None:
            return f"change-{self.change.trailing}"
        if self.anomaly is not None:
            return f"anomaly-{self.anomaly.trailing}"
        if self.below is not None:
            return f"below-{self.below:g}"
        return f"above-{self.above:g}"


class SignalSpec(Model):
    """A named metric over a declared dataset, computed by mizzen per time bucket."""

    dataset: str = Field(description="The dataset measured (declared under `datasets:`)")
    time: str = Field(description="Its date or timestamp column that places a row in a bucket")
    grain: Literal["hour", "day", "week"] = Field(
        "day", description="The bucket: hour, day or week"
    )
    time_zone: str | None = Field(
        None, description="IANA time zone the buckets start in (default UTC)"
    )
    mean: str | None = Field(None, description="Mean of a SQL expression per row")
    ratio: Ratio | None = Field(None, description="sum(numerator) / sum(denominator)")
    sum: str | None = Field(None, description="Sum of a SQL expression per row")
    count: str | None = Field(None, description="'*' (rows) or a SQL condition (rows where true)")
    expression: str | None = Field(
        None, description="Any SQL aggregate, e.g. count(DISTINCT driver_id) (no intervals)"
    )
    sql: str | None = Field(
        None,
        description="A SQL file (relative to the project): a query over `source` returning "
        "bucket, value (and n, the dimensions, the arm)",
    )
    dimensions: list[str] = Field(
        default_factory=list, description="Columns to slice by (segments), each on its own"
    )
    filter: list[str] = Field(
        default_factory=list, description="SQL conditions on the rows measured (ANDed)"
    )
    arm: str | None = Field(None, description="The column holding an experiment's arm")
    control: str | None = Field(
        None,
        description="The arm the others are compared with (default: 'control', else the first)",
    )
    confidence: float = Field(0.95, gt=0.5, lt=1, description="Of the confidence intervals")
    late_data: Duration = Field(
        "0s",
        description="How far back each run recomputes, for rows that arrive late (the last "
        "bucket computed is always recomputed)",
    )
    start: date | None = Field(
        None, description="The first bucket computed (default: the dataset's earliest row)"
    )
    schedule: ScheduleSpec | None = Field(
        None,
        description="When mizzen computes it (default: just after each bucket ends); null: "
        "only by hand (`mizzen signals compute`)",
    )
    engine: Literal["duckdb", "spark"] = Field("duckdb", description="duckdb or spark (Spark SQL)")
    spark: SqlSpark | None = Field(
        None, description="engine: spark: executors, driver, conf, image"
    )
    resources: Resources = Field(default_factory=Resources)
    alerts: list[SignalAlert] = Field(default_factory=list)
    owner: str | None = None
    description: str = ""

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        out = dict(data)
        if "schedule" not in out:
            grain = out.get("grain", "day")
            cron = DEFAULT_CRON.get(grain) if isinstance(grain, str) else None
            if cron is not None:
                tz = out.get("timeZone", out.get("time_zone"))
                out["schedule"] = {
                    "cron": cron,
                    **({"timeZone": tz} if isinstance(tz, str) else {}),
                }
        elif isinstance(out["schedule"], str):
            out["schedule"] = {"cron": out["schedule"]}
        if isinstance(out.get("filter"), str):
            out["filter"] = [out["filter"]]
        return out

    @field_validator("mean", "sum", "count", "expression", mode="before")
    @classmethod
    def _expr(cls, value: Any) -> Any:
        return _sql_text(value)

    @field_validator("filter", mode="before")
    @classmethod
    def _filters(cls, value: Any) -> Any:
        return [_sql_text(v) for v in value] if isinstance(value, list) else value

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        if value is not None:
            ScheduleSpec(cron="0 0 * * *", time_zone=value)  # the same check and hint
        return value

    @field_validator("dimensions")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for i, name in enumerate(value):
            if name in seen:
                raise ValueError(f"dimensions[{i}]: {name!r} is listed twice")
            seen.add(name)
        return value

    @model_validator(mode="after")
    def _shape(self) -> SignalSpec:
        given = [a for a in AGGREGATES if getattr(self, a) is not None]
        if len(given) != 1:
            got = ", ".join(given) if given else "none"
            raise ValueError(
                f"a signal needs exactly one aggregate: {', '.join(AGGREGATES)} (got {got})"
            )
        if self.spark is not None and self.engine != "spark":
            raise ValueError("`spark` sizes `engine: spark`; set it or remove `spark`")
        if self.control is not None and self.arm is None:
            raise ValueError("`control` names an arm: set `arm:` (the column holding the arms)")
        if self.arm is not None and self.arm in self.dimensions:
            raise ValueError(f"{self.arm!r} is the arm column; it cannot also be a dimension")
        for i, alert in enumerate(self.alerts):
            if alert.dimension is not None and alert.dimension not in self.dimensions:
                raise ValueError(
                    f"alerts[{i}].dimension: {alert.dimension!r} is not one of the signal's "
                    f"dimensions ({', '.join(self.dimensions) or 'none'})"
                )
        labels = [a.label for a in self.alerts]
        for i, label in enumerate(labels):
            if label in labels[:i]:
                raise ValueError(f"alerts[{i}]: two alerts are named {label!r}; give one a `name:`")
        return self

    @property
    def aggregate(self) -> str:
        return next(a for a in AGGREGATES if getattr(self, a) is not None)

    def columns(self) -> list[tuple[tuple[str | int, ...], str]]:
        """(field path, column) of every column the signal names by itself."""
        out: list[tuple[tuple[str | int, ...], str]] = [(("time",), self.time)]
        out += [(("dimensions", i), d) for i, d in enumerate(self.dimensions)]
        if self.arm is not None:
            out.append((("arm",), self.arm))
        return out

    def expressions(self) -> list[tuple[tuple[str | int, ...], str]]:
        """(field path, SQL text) of every expression in the spec."""
        out: list[tuple[tuple[str | int, ...], str]] = []
        for name in ("mean", "sum", "expression"):
            value = getattr(self, name)
            if value is not None:
                out.append(((name,), value))
        if self.count is not None and self.count.strip() != "*":
            out.append((("count",), self.count))
        if self.ratio is not None:
            out += [(("ratio", "numerator"), self.ratio.numerator)]
            out += [(("ratio", "denominator"), self.ratio.denominator)]
        out += [(("filter", i), f) for i, f in enumerate(self.filter)]
        return out


def _sql_text(value: Any) -> Any:
    """SQL given as a YAML number or boolean (`denominator: 1`) is taken as written."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str) and not value.strip():
        raise ValueError("an empty SQL expression")
    return value


def check_signal_name(name: str) -> str:
    from mizzen.spec.units import check_name

    check_name(name)
    if len(name) > NAME_LIMIT:
        raise ValueError(
            f"{name!r} is {len(name)} characters; a signal name has at most {NAME_LIMIT} "
            "(its computation job is mizzen-signal-<name>)"
        )
    return name
