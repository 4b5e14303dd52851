"""`late` alerts on the local target: while `mizzen up` runs the schedules, notice scheduled
runs that did not succeed within their window and notify each late fire once."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mizzen.notify.conditions import LateRun
    from mizzen.plan.model import Plan
    from mizzen.storage.runs import RunRecord

CHECK_EVERY = 30.0
RECENT_RUNS = 20


class LateWatch:
    def __init__(
        self,
        plan: Plan,
        runs: Callable[[str], list[RunRecord]],
        secret: Callable[[str, str], str | None],
        *,
        clock: Callable[[], float] = time.time,
        since: float | None = None,
        only: list[str] | None = None,
    ) -> None:
        self.plan = plan
        self.runs = runs  # workload -> its recent runs
        self.secret = secret
        self.clock = clock
        self.since = clock() if since is None else since
        self.sent: set[tuple[str, float]] = set()
        self.watched = [
            name
            for table in (plan.jobs, plan.pipelines)
            for name, w in table.items()
            if w.schedule is not None and (only is None or name in only)
        ]

    @property
    def active(self) -> bool:
        return bool(self.watched) and any("late" in a.on for a in self.plan.alerts)

    def check(self) -> list[LateRun]:
        """Notify the late fires not notified yet; returns them."""
        from mizzen.notify import dispatch_late_alerts, late_runs

        records = [r for name in self.watched for r in self.runs(name)]
        fresh = [
            item
            for item in late_runs(self.plan, records, self.clock(), since=self.since)
            if item.key not in self.sent
        ]
        if fresh:
            dispatch_late_alerts(self.plan, fresh, self.secret)
            self.sent.update(item.key for item in fresh)
        return fresh

    def run_forever(self, stop: threading.Event, every: float = CHECK_EVERY) -> None:
        while not stop.wait(every):
            try:
                self.check()
            except Exception as exc:  # a store hiccup must not stop `up`
                print(f"scheduler | late alerts not checked: {exc}", flush=True)
