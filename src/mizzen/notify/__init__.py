"""Alerts: evaluate a finished run against the spec's `alerts:` and notify (webhook, email)."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING

from mizzen.notify.conditions import Event, LateRun, covers, late_runs, run_events
from mizzen.plan.model import Alert, Plan
from mizzen.storage.runs import Metric, RunRecord

if TYPE_CHECKING:
    from mizzen.notify.notifiers import Notifier

__all__ = ["Event", "LateRun", "dispatch_late_alerts", "dispatch_run_alerts", "late_runs"]

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


def dispatch_events(plan: Plan, alert: Alert, events: list[Event], secret: SecretLookup) -> int:
    """Send `events` through the notifiers of `alert`; returns how many deliveries succeeded."""
    from mizzen.notify.notifiers import deliver, message_of

    sent = 0
    for event in events:
        message = message_of(
            event,
            project=plan.project,
            env=plan.env,
            target=plan.target,
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
    if not plan.alerts:
        return
    try:
        for alert in plan.alerts:
            events = run_events(alert, record, metrics)
            if events:
                dispatch_events(plan, alert, events, secret)
    except Exception:
        log.exception("alerts for run %s could not be evaluated", record.id)


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
