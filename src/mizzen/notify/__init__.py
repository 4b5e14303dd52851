"""Alerts: evaluate a finished run against the spec's `alerts:` and notify (webhook, email)."""

from __future__ import annotations

from collections.abc import Callable

from mizzen.plan.model import Plan
from mizzen.storage.runs import Metric, RunRecord

SecretLookup = Callable[[str, str], str | None]


def dispatch_run_alerts(plan: Plan, record: RunRecord, metrics: list[Metric], secret: SecretLookup) -> None:
    """Send the alerts a finished run triggers. Never raises: a failed notification is
    retried and logged, and never fails the run. (Implemented with the alerts issue.)"""
    return None
