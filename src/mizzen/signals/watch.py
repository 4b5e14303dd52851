"""Alerts on signals: each condition judged on the latest complete bucket of the whole signal
(or of each segment of one dimension), against a threshold, the mean of the trailing N
buckets, or a robust anomaly rule (|value - median| > k · 1.4826 · MAD of the trailing N).

A bucket is complete once its end has passed. Each (alert, segment, bucket) is notified once:
a marker in the project store (`signals/alerts/...`), written once it was delivered,
remembers it, so recomputing a bucket within the late-data window does not notify again. The same
conditions are rendered as PrometheusRule rules over the exporter's series
(`mizzen.notify.prometheus`)."""

from __future__ import annotations

import hashlib
import statistics
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mizzen.signals import buckets
from mizzen.signals.definition import AlertDef, Signal

if TYPE_CHECKING:
    import pyarrow as pa

    from mizzen.storage.base import Store

MAD_SCALE = 1.4826  # MAD of a normal distribution's sample -> its standard deviation
MARKERS = "signals/alerts"
MIN_CHANGE_HISTORY = 3
MIN_ANOMALY_HISTORY = 5  # earlier buckets a median and MAD need to mean anything


@dataclass(frozen=True)
class Point:
    bucket: datetime
    value: float


@dataclass(frozen=True)
class Verdict:
    """One alert on one series: its latest complete bucket, and whether it fires."""

    alert: str
    condition: str
    dimension: str
    segment: str
    bucket: datetime | None
    value: float | None
    firing: bool
    reference: float | None = None  # the threshold, the trailing mean or median
    spread: float | None = None  # the scaled MAD (anomaly)
    history: int = 0
    summary: str = ""  # the sentence a notification carries
    detail: str = ""  # what was measured

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["bucket"] = self.bucket.isoformat() if self.bucket else None
        return out


def series(rows: pa.Table, dimension: str = "", segment: str = "", arm: str = "") -> list[Point]:
    """One series of the values table (oldest first), buckets without a value left out."""
    data = rows.select(["bucket", "dimension", "segment", "arm", "value"]).to_pylist()
    out = [
        Point(_utc(r["bucket"]), float(r["value"]))
        for r in data
        if r["dimension"] == dimension
        and r["arm"] == arm
        and (not dimension or r["segment"] == segment)
        and r["value"] is not None
    ]
    return sorted(out, key=lambda p: p.bucket)


def complete(points: list[Point], grain: str, tz: str, now: datetime) -> list[Point]:
    return [p for p in points if buckets.step(p.bucket, grain, tz) <= now]


def judge(
    alert: AlertDef, points: list[Point], label: str = ""
) -> tuple[bool, float | None, float | None, int, str]:
    """(fires, reference, spread, history used, why) for the last of `points`."""
    if not points:
        return False, None, None, 0, "no complete bucket yet"
    last = points[-1].value
    before = [p.value for p in points[:-1]]
    if alert.condition == "threshold":
        if alert.below is not None:
            return (
                last < alert.below,
                alert.below,
                None,
                0,
                f"{last:.4g} {'<' if last < alert.below else '>='} {alert.below:g}",
            )
        assert alert.above is not None
        return (
            last > alert.above,
            alert.above,
            None,
            0,
            f"{last:.4g} {'>' if last > alert.above else '<='} {alert.above:g}",
        )
    window = before[-(alert.trailing or 1) :]
    if alert.condition == "change":
        if len(window) < min(alert.trailing or 1, MIN_CHANGE_HISTORY):
            return False, None, None, len(window), f"only {len(window)} earlier bucket(s)"
        mean = sum(window) / len(window)
        if mean == 0:
            moved = float("inf") if last != 0 else 0.0
        else:
            moved = (last - mean) / abs(mean) * 100
        assert alert.percent is not None
        fires = {
            "up": moved >= alert.percent,
            "down": -moved >= alert.percent,
            "both": abs(moved) >= alert.percent,
        }[alert.direction]
        return (
            fires,
            mean,
            None,
            len(window),
            f"{last:.4g} is {moved:+.1f}% vs the mean {mean:.4g} of {len(window)} bucket(s)",
        )
    if len(window) < MIN_ANOMALY_HISTORY:
        return (
            False,
            None,
            None,
            len(window),
            f"only {len(window)} earlier bucket(s), {MIN_ANOMALY_HISTORY} needed",
        )
    median = statistics.median(window)
    mad = statistics.median(abs(v - median) for v in window) * MAD_SCALE
    assert alert.k is not None
    distance = abs(last - median)
    fires = distance > alert.k * mad if mad > 0 else distance > 0
    score = f"{distance / mad:.1f}" if mad > 0 else ("inf" if distance else "0")
    return (
        fires,
        median,
        mad,
        len(window),
        f"{last:.4g} is {score} scaled MADs from the median {median:.4g} of {len(window)} bucket(s)",
    )


def evaluate(signal: Signal, rows: pa.Table, now: datetime | None = None) -> list[Verdict]:
    """Every alert of `signal` on every series it watches."""
    now = now or datetime.now(UTC)
    out: list[Verdict] = []
    for alert in signal.alerts:
        if alert.dimension is None:
            targets = [("", "")]
        else:
            segs = sorted(
                {
                    r["segment"]
                    for r in rows.select(["dimension", "segment", "arm"]).to_pylist()
                    if r["dimension"] == alert.dimension and r["arm"] == ""
                }
            )
            targets = [(alert.dimension, s) for s in segs]
        for dimension, segment in targets:
            points = complete(series(rows, dimension, segment), signal.grain, signal.time_zone, now)
            fires, ref, spread, history, why = judge(alert, points)
            last = points[-1] if points else None
            where = f" ({dimension}={segment})" if dimension else ""
            when = f" in the bucket of {last.bucket:%Y-%m-%d %H:%M} UTC" if last else ""
            out.append(
                Verdict(
                    alert.name,
                    alert.condition,
                    dimension,
                    segment,
                    last.bucket if last else None,
                    last.value if last else None,
                    fires,
                    ref,
                    spread,
                    history,
                    summary=f"signal {signal.name}{where} {alert.describe()}: {why}{when}",
                    detail=f"{why}{when}",
                )
            )
    return out


def marker(signal: str, verdict: Verdict) -> str:
    where = hashlib.sha256(f"{verdict.dimension}\0{verdict.segment}".encode()).hexdigest()[:12]
    assert verdict.bucket is not None
    stamp = verdict.bucket.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{MARKERS}/{signal}/{verdict.alert}/{where}/{stamp}.json"


def notify(
    signal: Signal,
    verdicts: list[Verdict],
    project: Store,
    origin: Any,
    secret: Callable[[str, str], str | None],
    *,
    run_id: str | None = None,
) -> list[Verdict]:
    """Send the firing verdicts not sent before; returns those sent. A delivery that failed
    (after the notifier's retries) is tried again by the next run. Never raises."""
    import json
    import logging

    from mizzen.notify import dispatch_events
    from mizzen.notify.conditions import Event
    from mizzen.plan.model import Alert

    log = logging.getLogger("mizzen.notify")
    sent: list[Verdict] = []
    by_name = {a.name: a for a in signal.alerts}
    for verdict in verdicts:
        alert = by_name[verdict.alert]
        if not verdict.firing or verdict.bucket is None or not alert.notifies:
            continue
        try:
            key = marker(signal.name, verdict)
            if project.exists(key):
                continue  # sent by an earlier run
            target = Alert(
                on=("signal",),
                jobs=(),
                slower_than_seconds=None,
                late_after_seconds=None,
                metric=None,
                webhook=alert.webhook,
                format=alert.format,
                email=alert.email,
            )
            event = Event(
                "signal",
                workload=signal.name,
                summary=verdict.summary,
                run_id=run_id,
                status="firing",
                details={"signal": signal.name, **verdict.to_dict()},
            )
            if dispatch_events(origin, target, [event], secret):  # else: the next run retries
                project.create(key, json.dumps(verdict.to_dict(), sort_keys=True).encode())
                sent.append(verdict)
        except Exception:
            log.exception("alert %s of signal %s could not be sent", verdict.alert, signal.name)
    return sent


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
