"""Which alerts a run (or a missed schedule) triggers. Pure functions: no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any

from mizzen.plan.model import Alert, Job, Pipeline, Plan, Schedule
from mizzen.storage.runs import Metric, RunRecord

DEFAULT_LATE_AFTER = 3600.0


@dataclass(frozen=True)
class Event:
    """Something an alert fires on, with one plain sentence saying what happened."""

    condition: str  # failed | late | slow | metric
    workload: str
    summary: str
    run_id: str | None = None
    status: str = ""
    details: dict[str, Any] = field(default_factory=dict)


def covers(alert: Alert, names: list[str]) -> bool:
    """True if one of the alert's `jobs` globs matches one of `names`."""
    return any(fnmatchcase(name, pattern) for pattern in alert.jobs for name in names)


PIPELINE_LABEL = "mizzen.io/pipeline"  # a cluster step run's pipeline (set by `mizzen exec`)


def _names(record: RunRecord) -> list[str]:
    names = [record.workload, *(s.job for s in record.steps if s.job)]
    if record.labels.get(PIPELINE_LABEL):
        names.append(record.labels[PIPELINE_LABEL])
    return names


def _last_value(name: str, record: RunRecord, metrics: list[Metric]) -> float | None:
    values = [m for m in metrics if m.name == name]
    if values:
        return max(values, key=lambda m: (m.time, m.step or 0)).value
    value = record.metrics.get(name)
    return None if value is None else float(value)


def run_events(alert: Alert, record: RunRecord, metrics: list[Metric]) -> list[Event]:
    """The events of `alert` a finished run triggers (empty when it does not apply)."""
    if not covers(alert, _names(record)):
        return []
    base = {"workload": record.workload, "run_id": record.id, "status": record.status}
    out: list[Event] = []
    if "failed" in alert.on and record.status in ("failed", "lost"):
        failed = [s.name for s in record.steps if s.status in ("failed", "lost")]
        where = f" at step {', '.join(failed)}" if failed and record.kind == "pipeline" else ""
        reason = f": {record.reason}" if record.reason else ""
        what = "was lost" if record.status == "lost" else "failed"
        out.append(
            Event(
                "failed",
                summary=f"{record.workload} run {record.id} {what}{where}{reason}",
                details={"failed_steps": failed},
                **base,
            )
        )
    duration = record.duration
    if (
        "slow" in alert.on
        and alert.slower_than_seconds is not None
        and duration is not None
        and duration > alert.slower_than_seconds
    ):
        out.append(
            Event(
                "slow",
                summary=f"{record.workload} run {record.id} took {_human(duration)}, longer than {_human(alert.slower_than_seconds)}",
                details={
                    "duration_seconds": round(duration, 3),
                    "limit_seconds": alert.slower_than_seconds,
                },
                **base,
            )
        )
    if "metric" in alert.on and alert.metric:
        name = str(alert.metric["name"])
        value = _last_value(name, record, metrics)
        below, above = alert.metric.get("below"), alert.metric.get("above")
        if value is not None and (
            (below is not None and value < below) or (above is not None and value > above)
        ):
            bound = f"below {below}" if below is not None and value < below else f"above {above}"
            out.append(
                Event(
                    "metric",
                    summary=f"{record.workload} run {record.id}: {name} = {value:g}, {bound}",
                    details={"metric": name, "value": value, "below": below, "above": above},
                    **base,
                )
            )
    return out


@dataclass(frozen=True)
class LateRun:
    """A scheduled fire that did not end in a successful run within its window."""

    workload: str
    due: float  # the scheduled fire time (epoch seconds)
    deadline: float  # due + window
    last_success: float | None

    @property
    def key(self) -> tuple[str, float]:
        """What a scheduler remembers so that it notifies each late fire once."""
        return (self.workload, self.due)

    def event(self) -> Event:
        due = datetime.fromtimestamp(self.due, UTC).strftime("%Y-%m-%d %H:%M UTC")
        last = (
            "never succeeded"
            if self.last_success is None
            else "last success "
            + datetime.fromtimestamp(self.last_success, UTC).strftime("%Y-%m-%d %H:%M UTC")
        )
        return Event(
            "late",
            self.workload,
            summary=f"{self.workload} scheduled at {due} has not succeeded within {_human(self.deadline - self.due)} ({last})",
            details={"due": self.due, "deadline": self.deadline, "last_success": self.last_success},
        )


def previous_fire(schedule: Schedule, before: float) -> float:
    """The latest fire time of `schedule` at or before `before` (epoch seconds)."""
    from zoneinfo import ZoneInfo

    from cronsim import CronSim

    tz = ZoneInfo(schedule.time_zone) if schedule.time_zone else UTC
    start = datetime.fromtimestamp(before, tz)
    return next(iter(CronSim(schedule.cron, start, reverse=True))).timestamp()


def late_window(plan: Plan, workload: str) -> float | None:
    """The shortest `lateAfter` of the alerts watching `workload` for `late` (None: not watched)."""
    windows = [
        a.late_after_seconds or DEFAULT_LATE_AFTER
        for a in plan.alerts
        if "late" in a.on and covers(a, [workload])
    ]
    return min(windows) if windows else None


def late_runs(
    plan: Plan, runs: list[RunRecord], now: float, *, since: float | None = None
) -> list[LateRun]:
    """Scheduled jobs and pipelines whose latest due fire (at least its window ago) did not
    end in success by its deadline. `runs` are recent runs of those workloads; fires before
    `since` (e.g. when the scheduler started) are ignored."""
    out: list[LateRun] = []
    scheduled: list[Job | Pipeline] = [*plan.jobs.values(), *plan.pipelines.values()]
    for workload in scheduled:
        if workload.schedule is None:
            continue
        window = late_window(plan, workload.name)
        if window is None:
            continue
        due = previous_fire(workload.schedule, now - window)
        if since is not None and due < since:
            continue
        deadline = due + window
        mine = [
            r
            for r in runs
            if r.workload == workload.name and r.status == "succeeded" and r.ended is not None
        ]
        if any(r.ended is not None and r.started >= due - 60 and r.ended <= deadline for r in mine):
            continue
        last = max((r.ended for r in mine if r.ended is not None), default=None)
        out.append(LateRun(workload.name, due, deadline, last))
    return out


def _human(seconds: float) -> str:
    seconds = float(seconds)
    if seconds < 60:
        if seconds >= 1:
            return f"{seconds:.0f}s"
        return f"{seconds * 1000:.0f}ms" if seconds >= 0.001 else f"{seconds * 1e6:.0f}µs"
    minutes, sec = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{sec:02d}s" if sec else f"{minutes}m"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if minutes else f"{hours}h"
