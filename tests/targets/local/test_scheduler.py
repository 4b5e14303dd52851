"""The foreground scheduler: cron with time zones, due runs, restarts, concurrency policies.

Time is an injected clock, never a sleep; runs are plain callables recording their calls.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from mizzen import spec
from mizzen.errors import SpecError, UsageError
from mizzen.plan import compile_plan
from mizzen.plan.model import Plan, Schedule
from mizzen.targets.local.scheduler import Scheduler, Trigger, _exclusive, fires_between, next_fire

T0 = datetime(2025, 3, 10, 10, 2, tzinfo=UTC).timestamp()  # a Monday, 10:02 UTC


def at(hh: int, mm: int, day: int = 10) -> float:
    return datetime(2025, 3, day, hh, mm, tzinfo=UTC).timestamp()


def plan_for(tmp_path: Path, schedule: str) -> Plan:
    (tmp_path / "mizzen.yaml").write_text(
        f"""\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: sched
jobs:
  tick:
    command: [python, -c, "print('tick')"]
    schedule: {schedule}
  manual:
    command: [python, -c, "print('manual')"]
pipelines:
  nightly:
    schedule: {{cron: "0 3 * * *", timeZone: Europe/Paris}}
    steps: [tick]
"""
    )
    return compile_plan(spec.load(tmp_path / "mizzen.yaml"))


class Calls:
    """A run callable: records (workload, trigger); optionally blocks until released or cancelled."""

    def __init__(self, block: bool = False) -> None:
        self.calls: list[tuple[str, Trigger]] = []
        self.block = block
        self.release = threading.Event()
        self.started = threading.Semaphore(0)

    def __call__(self, workload: str, trigger: Trigger) -> int:
        self.calls.append((workload, trigger))
        self.started.release()
        if self.block:
            while not (self.release.is_set() or trigger.cancel.is_set()):
                self.release.wait(0.01)
        return 0


def test_next_fire_honours_the_time_zone() -> None:
    paris = Schedule(cron="0 3 * * *", time_zone="Europe/Paris")
    fire = next_fire(paris, at(0, 0))
    assert datetime.fromtimestamp(fire, ZoneInfo("Europe/Paris")).hour == 3
    assert fire == at(2, 0)  # 03:00 in Paris is 02:00 UTC in winter
    summer = next_fire(paris, datetime(2025, 7, 1, tzinfo=UTC).timestamp())
    assert datetime.fromtimestamp(summer, UTC).hour == 1  # and 01:00 UTC in summer


def test_macros_and_counting_fire_times() -> None:
    assert next_fire(Schedule(cron="@hourly"), at(10, 2)) == at(11, 0)
    count, latest = fires_between(Schedule(cron="*/15 * * * *"), at(10, 2), at(11, 0))
    assert (count, latest) == (4, at(11, 0))  # 10:15 10:30 10:45 11:00


def test_bad_cron_is_a_spec_error(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="cron"):
        plan_for(tmp_path, '"61 * * * *"')


def test_a_due_job_fires_once_and_is_recorded(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, '"*/5 * * * *"')
    calls = Calls()
    sched = Scheduler(plan, calls, clock=lambda: T0, log=lambda _: None)
    assert sorted(sched.schedules) == ["nightly", "tick"]
    assert sched.due(at(10, 4)) == []
    assert [d.workload for d in sched.due(at(10, 5))] == ["tick"]
    started = sched.tick(at(10, 5))
    sched.join()
    assert [(w, str(t)) for w, t in calls.calls] == [("tick", "schedule")]
    assert started[0].scheduled_for == at(10, 5)
    assert sched.tick(at(10, 6)) == []  # nothing new until 10:10
    state = json.loads(sched.state_path.read_text())["workloads"]["tick"]
    assert state["lastScheduled"] == at(10, 5) and state["lastExit"] == 0
    assert sched.seconds_until_next(at(10, 6)) == 240


def test_missed_runs_are_not_replayed_after_a_restart(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, '"*/5 * * * *"')
    first = Scheduler(plan, Calls(), clock=lambda: T0, log=lambda _: None)
    first.tick(at(10, 5))
    first.join()
    notes: list[str] = []
    calls = Calls()
    later = Scheduler(plan, calls, clock=lambda: at(11, 1), log=notes.append)
    assert later.due(at(11, 1)) == []
    assert any("11 run(s) missed" in n and "not replayed" in n for n in notes)
    later.tick(at(11, 5))
    later.join()
    assert [t.scheduled_for for _, t in calls.calls] == [at(11, 5)]


def test_catch_up_replays_the_latest_missed_run_once(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, '{cron: "*/5 * * * *", catchUp: true}')
    first = Scheduler(plan, Calls(), clock=lambda: T0, log=lambda _: None)
    first.tick(at(10, 5))
    first.join()
    calls = Calls()
    later = Scheduler(plan, calls, clock=lambda: at(11, 1), log=lambda _: None)
    (due,) = later.due(at(11, 1))
    assert (due.workload, due.scheduled_for, due.count) == ("tick", at(11, 0), 11)
    later.tick(at(11, 1))
    later.join()
    ((_, trigger),) = calls.calls
    assert (str(trigger), trigger.missed) == ("catch-up", 10)
    later.tick(at(11, 5))
    later.join()
    assert [str(t) for _, t in calls.calls] == ["catch-up", "schedule"]


def test_a_changed_schedule_starts_afresh(tmp_path: Path) -> None:
    Scheduler(
        plan_for(tmp_path, '{cron: "*/5 * * * *", catchUp: true}'),
        Calls(),
        clock=lambda: T0,
        log=lambda _: None,
    )
    plan = plan_for(tmp_path, '{cron: "*/10 * * * *", catchUp: true}')
    later = Scheduler(plan, Calls(), clock=lambda: at(12, 1), log=lambda _: None)
    assert later.due(at(12, 1)) == []


def test_forbid_skips_while_the_previous_run_is_going(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, '"*/5 * * * *"')
    calls = Calls(block=True)
    notes: list[str] = []
    sched = Scheduler(plan, calls, clock=lambda: T0, log=notes.append)
    sched.tick(at(10, 5))
    calls.started.acquire(timeout=10)
    assert sched.tick(at(10, 10)) == []
    assert any("concurrency: Forbid" in n for n in notes)
    calls.release.set()
    sched.join()
    assert len(calls.calls) == 1


def test_allow_runs_concurrently(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, '{cron: "*/5 * * * *", concurrency: Allow}')
    calls = Calls(block=True)
    sched = Scheduler(plan, calls, clock=lambda: T0, log=lambda _: None)
    sched.tick(at(10, 5))
    sched.tick(at(10, 10))
    assert calls.started.acquire(timeout=10) and calls.started.acquire(timeout=10)
    assert len(sched.active("tick")) == 2
    calls.release.set()
    sched.join()


def test_replace_cancels_the_running_run(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, '{cron: "*/5 * * * *", concurrency: Replace}')
    calls = Calls(block=True)
    sched = Scheduler(plan, calls, clock=lambda: T0, log=lambda _: None)
    (old,) = sched.tick(at(10, 5))
    calls.started.acquire(timeout=10)
    (new,) = sched.tick(at(10, 10))
    assert old.cancel.is_set() and not new.cancel.is_set()
    calls.release.set()
    sched.join()
    assert [t.scheduled_for for _, t in calls.calls] == [at(10, 5), at(10, 10)]


def test_run_forever_fires_and_stops(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, '"*/5 * * * *"')
    stop = threading.Event()
    times = iter([T0, at(10, 5), at(10, 5)])
    calls: list[str] = []

    def run(workload: str, trigger: Trigger) -> int:
        calls.append(workload)
        stop.set()
        return 0

    sched = Scheduler(plan, run, clock=lambda: next(times, at(10, 6)), log=lambda _: None)
    sched.run_forever(stop)
    assert calls == ["tick"]


def test_one_scheduler_per_project(tmp_path: Path) -> None:
    plan = plan_for(tmp_path, '"*/5 * * * *"')
    sched = Scheduler(plan, Calls(), clock=lambda: T0, log=lambda _: None)
    with _exclusive(sched.state_path.with_name("lock")), pytest.raises(UsageError, match="already"):
        sched.run_forever(threading.Event())
