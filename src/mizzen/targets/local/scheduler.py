"""The foreground scheduler of the local target: fires scheduled jobs and pipelines.

`mizzen up` runs it next to the services. Each scheduled workload keeps a cursor (the last
scheduled time accounted for) in `.mizzen/scheduler/state.json`, so a restart knows what it
missed. Missed runs are not replayed unless the schedule says `catchUp: true`, and then only
once (the latest missed time), as a Kubernetes CronJob does. Concurrency follows the CronJob
policies: Forbid skips a run while the previous one is going, Allow starts it anyway,
Replace cancels the running one first (the run callable is told through `trigger.cancel`).
"""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from mizzen.errors import UsageError
from mizzen.plan.model import Plan, Schedule

STATE_DIR = Path(".mizzen") / "scheduler"
MAX_STEPS = 100_000  # cron iterations per look-up (~69 days of a per-minute schedule)
MAX_SLEEP = 30.0


def _zone(schedule: Schedule) -> Any:
    from zoneinfo import ZoneInfo

    return ZoneInfo(schedule.time_zone or "UTC")


def fire_times(schedule: Schedule, after: float) -> Any:
    """An iterator of the fire times (epoch seconds) strictly after `after`."""
    from cronsim import CronSim

    from mizzen.spec.units import expand_cron

    start = datetime.fromtimestamp(after, _zone(schedule))
    for moment in CronSim(expand_cron(schedule.cron), start):
        yield moment.timestamp()


def next_fire(schedule: Schedule, after: float) -> float:
    """The first fire time strictly after `after` (epoch seconds)."""
    return float(next(iter(fire_times(schedule, after))))


def fires_between(schedule: Schedule, after: float, until: float) -> tuple[int, float | None]:
    """(how many fire times fall in (after, until], the latest of them)."""
    after = max(after, until - MAX_STEPS * 60.0)
    count, latest = 0, None
    for moment in fire_times(schedule, after):
        if moment > until:
            break
        count, latest = count + 1, moment
    return count, latest


@dataclass
class Trigger:
    """Why a run starts. `str(trigger)` is the kind; `cancel` is set when it must stop (Replace, shutdown)."""

    kind: str  # "schedule" or "catch-up"
    scheduled_for: float
    missed: int = 0  # earlier fire times folded into this run
    cancel: threading.Event = field(default_factory=threading.Event)

    def __str__(self) -> str:
        return self.kind


@dataclass
class Due:
    workload: str
    scheduled_for: float
    count: int  # fire times since the cursor (more than 1: coalesced)


@dataclass
class _Active:
    trigger: Trigger
    thread: threading.Thread
    exit_code: int | None = None


class Scheduler:
    def __init__(
        self,
        plan: Plan,
        run: Callable[[str, Trigger], int],
        clock: Callable[[], float] = time.time,
        *,
        log: Callable[[str], None] | None = None,
    ) -> None:
        self.plan = plan
        self.run = run
        self.clock = clock
        self.log = log or _stderr
        self.schedules: dict[str, Schedule] = {}
        for table in (plan.jobs, plan.pipelines):
            for name, workload in table.items():
                if workload.schedule is not None:
                    self.schedules[name] = workload.schedule
        suffix = f"-{plan.env}" if plan.env else ""
        self.state_path = Path(plan.root) / STATE_DIR / f"state{suffix}.json"
        self._lock = threading.Lock()
        self._io_lock = threading.Lock()
        self._active: dict[str, list[_Active]] = {}
        self._state = self._load()
        self._cursor: dict[str, float] = {}
        self._catch_up: set[str] = set()
        self._claimed: _exclusive | None = None
        self._start(clock())

    def claim(self) -> None:
        """Take this project's scheduler lock now, so a second `mizzen up` is refused up
        front (UsageError) rather than from inside a background thread."""
        if self._claimed is None and self.schedules:
            self._claimed = _exclusive(self.state_path.with_name("lock")).__enter__()

    # --- state -------------------------------------------------------------------------------

    def _load(self) -> dict[str, dict[str, Any]]:
        try:
            data = json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return {}
        workloads = data.get("workloads") if isinstance(data, dict) else None
        return workloads if isinstance(workloads, dict) else {}

    def _save(self) -> None:
        with self._io_lock:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.state_path.with_suffix(f".{os.getpid()}.tmp")
            tmp.write_text(
                json.dumps({"version": 1, "workloads": self._state}, indent=2, sort_keys=True)
            )
            os.replace(tmp, self.state_path)

    def _start(self, now: float) -> None:
        for name, schedule in self.schedules.items():
            saved = self._state.get(name) or {}
            same = (
                saved.get("cron") == schedule.cron and saved.get("timeZone") == schedule.time_zone
            )
            cursor = saved.get("cursor") if same else None
            if not isinstance(cursor, int | float):
                self._cursor[name] = now
            elif schedule.catch_up:
                self._cursor[name] = float(cursor)
                if fires_between(schedule, float(cursor), now)[0]:
                    self._catch_up.add(name)
            else:
                missed, _ = fires_between(schedule, float(cursor), now)
                if missed:
                    self.log(
                        f"{name}: {missed} run(s) missed while the scheduler was down, not replayed (catchUp: false)"
                    )
                self._cursor[name] = now
            self._state[name] = {
                **(saved if same else {}),
                "cron": schedule.cron,
                "timeZone": schedule.time_zone,
                "cursor": self._cursor[name],
            }
        if self.schedules:
            self._save()

    # --- the schedule --------------------------------------------------------------------------

    def next_fire(self, name: str) -> float:
        return next_fire(self.schedules[name], self._cursor[name])

    def due(self, now: float) -> list[Due]:
        """The workloads whose next fire time has come (several missed times fold into one)."""
        out = []
        for name, schedule in self.schedules.items():
            count, latest = fires_between(schedule, self._cursor[name], now)
            if latest is not None:
                out.append(Due(name, latest, count))
        return out

    def seconds_until_next(self, now: float) -> float | None:
        if not self.schedules:
            return None
        return max(0.0, min(self.next_fire(n) for n in self.schedules) - now)

    def tick(self, now: float) -> list[Trigger]:
        """Start what is due at `now` (each run in its own thread); return the triggers started."""
        started = []
        for due in self.due(now):
            name = due.workload
            schedule = self.schedules[name]
            kind = "catch-up" if name in self._catch_up else "schedule"
            self._catch_up.discard(name)
            self._cursor[name] = now
            record = self._state.setdefault(name, {})
            record["cursor"] = now
            running = self.active(name)
            if running and schedule.concurrency == "Forbid":
                self.log(
                    f"{name}: skipped the {_fmt(due.scheduled_for, schedule)} run, the previous one is still going (concurrency: Forbid)"
                )
                record["lastSkipped"] = due.scheduled_for
                self._save()
                continue
            if running and schedule.concurrency == "Replace":
                self.log(
                    f"{name}: cancelling the running run to start the {_fmt(due.scheduled_for, schedule)} one (concurrency: Replace)"
                )
                for active in running:
                    active.trigger.cancel.set()
            trigger = Trigger(kind=kind, scheduled_for=due.scheduled_for, missed=due.count - 1)
            record["lastScheduled"] = due.scheduled_for
            record["lastFired"] = now
            self._save()
            self.log(f"{name}: starting the {_fmt(due.scheduled_for, schedule)} run ({kind})")
            self._launch(name, trigger)
            started.append(trigger)
        return started

    def _launch(self, name: str, trigger: Trigger) -> None:
        active = _Active(trigger=trigger, thread=threading.Thread(target=lambda: None))

        def body() -> None:
            try:
                code = self.run(name, trigger)
            except Exception as exc:  # a scheduler outlives one broken run
                self.log(f"{name}: run failed to start: {exc}")
                code = 1
            active.exit_code = code
            self._state.setdefault(name, {})["lastExit"] = code
            self._save()

        active.thread = threading.Thread(target=body, name=f"mizzen-schedule-{name}", daemon=True)
        with self._lock:
            self._active.setdefault(name, []).append(active)
        active.thread.start()

    def active(self, name: str) -> list[_Active]:
        with self._lock:
            alive = [a for a in self._active.get(name, []) if a.thread.is_alive()]
            self._active[name] = alive
        return alive

    def join(self, timeout: float | None = None) -> None:
        """Wait for the runs started so far."""
        with self._lock:
            threads = [a.thread for runs in self._active.values() for a in runs]
        for thread in threads:
            thread.join(timeout)

    def stop(self, timeout: float | None = 30.0) -> None:
        """Cancel the running runs and wait for them."""
        with self._lock:
            runs = [a for items in self._active.values() for a in items]
        for active in runs:
            active.trigger.cancel.set()
        self.join(timeout)

    def run_forever(self, stop: threading.Event) -> None:
        """Tick until `stop` is set (one scheduler per project: a second one is refused)."""
        if not self.schedules:
            return
        self.claim()
        try:
            for name in self.schedules:
                self.log(
                    f"{name}: {self.schedules[name].cron} ({self.schedules[name].time_zone or 'UTC'}), next at {_fmt(self.next_fire(name), self.schedules[name])}"
                )
            while not stop.is_set():
                self.tick(self.clock())
                wait = self.seconds_until_next(self.clock())
                stop.wait(min(MAX_SLEEP, wait if wait is not None else MAX_SLEEP) + 0.01)
            self.stop()
        finally:
            if self._claimed is not None:
                self._claimed.close()
                self._claimed = None


class _exclusive:
    """An advisory lock file held while the scheduler runs."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None

    def __enter__(self) -> _exclusive:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = os.read(self.fd, 32).decode(errors="replace").strip() or "another process"
            os.close(self.fd)
            raise UsageError(
                f"the schedules of this project are already being run (pid {holder})",
                hint="stop the other `mizzen up` first",
            ) from None
        os.ftruncate(self.fd, 0)
        os.write(self.fd, str(os.getpid()).encode())
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def _fmt(ts: float, schedule: Schedule) -> str:
    return datetime.fromtimestamp(ts, _zone(schedule)).strftime("%Y-%m-%d %H:%M %Z")


def _stderr(message: str) -> None:
    print(f"scheduler | {message}", file=sys.stderr, flush=True)
