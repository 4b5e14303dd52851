"""A PrometheusRule for `failed` and `late` alerts, from kube-state-metrics series.

Teams with the Prometheus operator get these alerts without mizzen running. Jobs are
matched by the name the renderer gives them (`<project>-<job>`, see `targets.kubernetes.naming`):
the Job itself or one created from it with a suffix starting with a digit (a CronJob's
`drives-train-28391520`, a run's `drives-train-20261123-153012-7f3a`).
Pipelines run as Argo workflows, which kube-state-metrics does not describe: not covered.
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


def prometheus_rule(plan: Plan) -> dict[str, Any] | None:
    """The PrometheusRule manifest for the plan's `failed`/`late` alerts (None: nothing to watch)."""
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
    if not rules:
        return None
    metadata: dict[str, Any] = {
        "name": f"{plan.project}-alerts",
        "labels": project_labels(plan.project),
    }
    if plan.kubernetes.namespace:
        metadata["namespace"] = plan.kubernetes.namespace
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": metadata,
        "spec": {"groups": [{"name": f"mizzen.{plan.project}", "rules": rules}]},
    }
