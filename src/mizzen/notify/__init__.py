"""Alerts: evaluate a finished run against the spec's `alerts:` and notify (webhook, email)."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mizzen.notify.conditions import Event, LateRun, covers, late_runs, run_events
from mizzen.plan.model import Alert, Plan
from mizzen.storage.runs import Metric, RunRecord

if TYPE_CHECKING:
    from mizzen.notify.notifiers import Notifier

__all__ = [
    "Event",
    "LateRun",
    "Origin",
    "alerts_from_json",
    "alerts_to_json",
    "dispatch_late_alerts",
    "dispatch_run_alerts",
    "late_runs",
    "send_run_alerts",
]

SecretLookup = Callable[[str, str], str | None]

log = logging.getLogger("mizzen.notify")


def notifiers_of(alert: Alert, secret: SecretLookup) -> list[Notifier]:
    from mizzen.notify.notifiers import Email, Webhook

    out: list[Notifier] = []
    if alert.webhook:
        out.append(Webhook(alert.webhook, alert.format, secret))
    if alert.email:
        out.append(Email(alert.email, secret))
    return out


def run_url(workload: str, run_id: str | None) -> str | None:
    """A link to the run in the dashboard, when `MIZZEN_UI_URL` says where it is."""
    base = os.environ.get("MIZZEN_UI_URL")
    if not base or not run_id:
        return None
    return f"{base.rstrip('/')}/runs/{workload}/{run_id}"


@dataclass(frozen=True)
class Origin:
    """Where a run happened, for the message: project, environment, target."""

    project: str
    env: str | None
    target: str

    @classmethod
    def of(cls, plan: Plan) -> Origin:
        return cls(plan.project, plan.env, plan.target)


def dispatch_events(
    origin: Plan | Origin, alert: Alert, events: list[Event], secret: SecretLookup
) -> int:
    """Send `events` through the notifiers of `alert`; returns how many deliveries succeeded."""
    from mizzen.notify.notifiers import deliver, message_of

    where = origin if isinstance(origin, Origin) else Origin.of(origin)
    sent = 0
    for event in events:
        message = message_of(
            event,
            project=where.project,
            env=where.env,
            target=where.target,
            url=run_url(event.workload, event.run_id),
        )
        for notifier in notifiers_of(alert, secret):
            sent += deliver(notifier, message)
    return sent


def dispatch_run_alerts(
    plan: Plan, record: RunRecord, metrics: list[Metric], secret: SecretLookup
) -> None:
    """Send the alerts a finished run triggers. Never raises: a failed notification is
    retried and logged, and never fails the run."""
    send_run_alerts(plan.alerts, Origin.of(plan), record, metrics, secret)


def send_run_alerts(
    alerts: tuple[Alert, ...] | list[Alert],
    origin: Origin,
    record: RunRecord,
    metrics: list[Metric],
    secret: SecretLookup,
) -> None:
    """`dispatch_run_alerts` without a Plan: what `mizzen exec` uses inside a pod."""
    if not alerts:
        return
    try:
        for alert in alerts:
            events = run_events(alert, record, metrics)
            if events:
                dispatch_events(origin, alert, events, secret)
    except Exception:
        log.exception("alerts for run %s could not be evaluated", record.id)


RUN_CONDITIONS = ("failed", "slow", "metric")


def alerts_to_json(alerts: tuple[Alert, ...] | list[Alert]) -> str:
    """The run-level alerts, as the renderer hands them to pods (`MIZZEN_ALERTS`)."""
    from dataclasses import asdict

    keep = [asdict(a) for a in alerts if set(a.on) & set(RUN_CONDITIONS)]
    return json.dumps(keep, sort_keys=True, separators=(",", ":")) if keep else ""


def alerts_from_json(text: str) -> list[Alert]:
    out = []
    for raw in json.loads(text or "[]"):
        raw["on"], raw["jobs"] = tuple(raw["on"]), tuple(raw["jobs"])
        out.append(Alert(**raw))
    return out


def alert_secret_refs(alert: Alert) -> list[tuple[str, str]]:
    """(secret, key) pairs an alert reads when it sends: its webhook URL, its SMTP login."""
    from mizzen.spec.interpolate import refs

    found = [(r.parts[0], r.parts[1]) for r in refs(alert.webhook or "") if r.root == "secrets"]
    email_secret = (alert.email or {}).get("secret")
    if email_secret:
        found += [(email_secret, "user"), (email_secret, "password")]
    return found


def dispatch_late_alerts(plan: Plan, late: list[LateRun], secret: SecretLookup) -> None:
    """Notify `late` fires (from `conditions.late_runs`) through every alert watching them.
    The caller remembers `LateRun.key` so each late fire is notified once. Never raises."""
    try:
        for item in late:
            for alert in plan.alerts:
                if "late" in alert.on and covers(alert, [item.workload]):
                    dispatch_events(plan, alert, [item.event()], secret)
    except Exception:
        log.exception("late alerts could not be sent")
