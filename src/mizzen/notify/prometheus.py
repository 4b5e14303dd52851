"""A PrometheusRule for `failed` and `late` alerts, from kube-state-metrics series.

Teams with the Prometheus operator get these alerts without mizzen running. Jobs are
matched by the name the renderer gives them (`<project>-<job>`, see `targets.kubernetes.naming`):
the Job itself or one created from it with a suffix starting with a digit (a CronJob's
`drives-train-28391520`, a run's `drives-train-20261123-153012-7f3a`).
Pipelines run as Argo workflows, which kube-state-metrics does not describe: not covered.

Signal alerts become rules over the series of mizzen's signals exporter (`mizzen-signals`,
scraped through a ServiceMonitor): a threshold, the change vs the trailing mean, the distance
to the trailing median in scaled MADs, as mizzen itself judges them (`mizzen.signals.watch`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import pairwise
from typing import Any

from mizzen.notify.conditions import DEFAULT_LATE_AFTER, covers
from mizzen.plan.model import Job, Plan, Schedule
from mizzen.targets.kubernetes.naming import CRONJOB_NAME_LIMIT, object_name, project_labels

_REF = datetime(2025, 1, 6, tzinfo=UTC)  # a fixed start keeps the output reproducible


def cron_period(schedule: Schedule, fires: int = 64) -> float:
    """The longest gap between consecutive fires (seconds): the safe period to assume."""
    from zoneinfo import ZoneInfo

    from cronsim import CronSim

    tz = ZoneInfo(schedule.time_zone) if schedule.time_zone else UTC
    it = iter(CronSim(schedule.cron, _REF.astimezone(tz)))
    times = [next(it).timestamp() for _ in range(fires)]
    return max(b - a for a, b in pairwise(times))


def _sel(plan: Plan, **labels: str) -> str:
    parts = []
    if plan.kubernetes.namespace:
        parts.append(f'namespace="{plan.kubernetes.namespace}"')
    for key, value in labels.items():
        op = "=~" if key.endswith("_re") else "="
        parts.append(f'{key.removesuffix("_re")}{op}"{value}"')
    return "{" + ",".join(parts) + "}"


def _covered(plan: Plan, condition: str, jobs: list[Job]) -> list[Job]:
    alerts = [a for a in plan.alerts if condition in a.on]
    return [j for j in jobs if any(covers(a, [j.name]) for a in alerts)]


def failed_rule(plan: Plan) -> dict[str, Any] | None:
    jobs = _covered(plan, "failed", list(plan.jobs.values()))
    if not jobs:
        return None
    names = "|".join(sorted(object_name(plan.project, j.name) for j in jobs))
    expr = f"kube_job_failed{_sel(plan, condition='true', job_name_re=f'({names})(-[0-9][-0-9a-z]*)?')} == 1"
    return {
        "alert": "MizzenJobFailed",
        "expr": expr,
        "labels": {"severity": "warning", "mizzen_project": plan.project, "mizzen_alert": "failed"},
        "annotations": {
            "summary": "Job {{ $labels.job_name }} failed",
            "description": f"Job {{{{ $labels.job_name }}}} of mizzen project {plan.project} failed in namespace {{{{ $labels.namespace }}}}. `mizzen status` says why.",
        },
    }


def late_rule(plan: Plan, job: Job, window: float) -> dict[str, Any]:
    assert job.schedule is not None
    period = int(cron_period(job.schedule))
    sel = _sel(plan, cronjob=object_name(plan.project, job.name, limit=CRONJOB_NAME_LIMIT))
    due = f"(kube_cronjob_next_schedule_time{sel} - {period})"
    expr = f"(time() - {due}) > {int(window)}\nand\n{due} > kube_cronjob_status_last_successful_time{sel}"
    return {
        "alert": "MizzenScheduleLate",
        "expr": expr,
        "labels": {
            "severity": "warning",
            "mizzen_project": plan.project,
            "mizzen_workload": job.name,
            "mizzen_alert": "late",
        },
        "annotations": {
            "summary": f"{job.name} is late",
            "description": f"Scheduled job {job.name} ({job.schedule.cron}) of mizzen project {plan.project} has not succeeded within {int(window)}s of its scheduled time.",
        },
    }


SIGNAL_KEYS = "project, signal, dimension, segment, arm"


def _signal_series(metric: str, selector: dict[str, str]) -> str:
    """One series per signal/segment, whichever exporter pod (or scrape labels) it came from."""
    body = ",".join(f'{k}="{v}"' for k, v in selector.items())
    return f"max by ({SIGNAL_KEYS}) ({metric}{{{body}}})"


def signal_rules(plan: Plan) -> list[dict[str, Any]]:
    """A rule per alert of each signal, over the exporter's series."""
    from mizzen.signals.report import definitions

    out: list[dict[str, Any]] = []
    for signal in definitions(plan).values():
        for alert in signal.alerts:
            sel = {"project": plan.project, "signal": signal.name}
            if plan.kubernetes.namespace:
                sel["namespace"] = plan.kubernetes.namespace
            sel.update(dimension=alert.dimension or "", arm="")
            value = _signal_series("mizzen_signal_value", sel)
            if alert.condition == "threshold":
                expr = (
                    f"{value} < {alert.below!r}"
                    if alert.below is not None
                    else f"{value} > {alert.above!r}"
                )
            elif alert.condition == "change":
                window = {**sel, "window": str(alert.trailing)}
                mean = _signal_series("mizzen_signal_trailing_mean", window)
                moved = f"({value} - {mean}) / abs({mean}) * 100"
                expr = {
                    "up": f"{moved} >= {alert.percent!r}",
                    "down": f"{moved} <= -{alert.percent!r}",
                    "both": f"abs({moved}) >= {alert.percent!r}",
                }[alert.direction]
            else:
                window = {**sel, "window": str(alert.trailing)}
                median = _signal_series("mizzen_signal_trailing_median", window)
                mad = _signal_series("mizzen_signal_trailing_mad", window)
                expr = f"abs({value} - {median}) > {alert.k!r} * {mad}"
            where = " ({{ $labels.dimension }}={{ $labels.segment }})" if alert.dimension else ""
            measured = {
                "threshold": "the latest complete bucket's value is {{ $value }}",
                "change": 'the latest complete bucket moved {{ $value | printf "%.1f" }}% vs the trailing mean',
                "anomaly": "the latest complete bucket is {{ $value }} from the trailing median",
            }[alert.condition]
            out.append(
                {
                    "alert": "MizzenSignal" + alert.condition.capitalize(),
                    "expr": expr,
                    "labels": {
                        "severity": alert.severity,
                        "mizzen_project": plan.project,
                        "mizzen_signal": signal.name,
                        "mizzen_alert": alert.name,
                    },
                    "annotations": {
                        "summary": f"signal {signal.name}{where} {alert.describe()}",
                        "description": f"Signal {signal.name} of mizzen project {plan.project}{where}: {measured} (`mizzen signals show {signal.name}`).",
                    },
                }
            )
    return out


def service_monitor(plan: Plan) -> dict[str, Any] | None:
    """Prometheus scrapes the signals exporter (when the plan has it)."""
    from mizzen.signals.builtin import EXPORTER
    from mizzen.targets.kubernetes.naming import PROJECT, WORKLOAD

    if EXPORTER not in plan.services:
        return None
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": _metadata(plan, object_name(plan.project, EXPORTER)),
        "spec": {
            "selector": {"matchLabels": {PROJECT: plan.project, WORKLOAD: EXPORTER}},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": "60s"}],
        },
    }


def monitoring(plan: Plan) -> list[dict[str, Any]]:
    """What the Prometheus operator gets: the rules, and what it scrapes."""
    return [o for o in (prometheus_rule(plan), service_monitor(plan)) if o is not None]


def prometheus_rule(plan: Plan) -> dict[str, Any] | None:
    """The PrometheusRule manifest for the plan's `failed`/`late` alerts and its signals'
    alerts (None: nothing to watch)."""
    rules: list[dict[str, Any]] = []
    failed = failed_rule(plan)
    if failed:
        rules.append(failed)
    scheduled = [j for j in plan.jobs.values() if j.schedule is not None]
    for job in sorted(_covered(plan, "late", scheduled), key=lambda j: j.name):
        windows = [
            a.late_after_seconds or DEFAULT_LATE_AFTER
            for a in plan.alerts
            if "late" in a.on and covers(a, [job.name])
        ]
        rules.append(late_rule(plan, job, min(windows)))
    signals = signal_rules(plan)
    if not rules and not signals:
        return None
    groups = [{"name": f"mizzen.{plan.project}", "rules": rules}] if rules else []
    if signals:
        groups.append({"name": f"mizzen.{plan.project}.signals", "rules": signals})
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": _metadata(plan, f"{plan.project}-alerts"),
        "spec": {"groups": groups},
    }


def _metadata(plan: Plan, name: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "labels": project_labels(plan.project)}
    if plan.kubernetes.namespace:
        metadata["namespace"] = plan.kubernetes.namespace
    return metadata
