"""`mizzen up` notices late scheduled runs and notifies each late fire once."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from mizzen.storage.runs import RunRecord
from mizzen.targets.local.late import LateWatch

if TYPE_CHECKING:
    from conftest import Receiver


def at(hour: int, minute: int = 0, day: int = 23) -> float:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC).timestamp()


def test_a_late_fire_is_notified_once_and_a_timely_success_is_not(
    make_plan: Any, receiver: Receiver
) -> None:
    plan = make_plan(
        f"  - on: [late]\n    jobs: [nightly]\n    lateAfter: 30m\n    webhook: {receiver.url}/late\n"
    )
    runs: list[RunRecord] = []
    now = [at(4)]  # nightly fires at 03:00; by 04:00 its 30-minute window has passed
    watch = LateWatch(
        plan,
        lambda name: [r for r in runs if r.workload == name],
        lambda s, k: None,
        clock=lambda: now[0],
        since=at(0),
    )
    assert watch.active
    (late,) = watch.check()
    assert late.workload == "nightly" and late.due == at(3)
    assert [r["path"] for r in receiver.requests] == ["/late"]
    assert "nightly" in str(receiver.requests[0]["json"])
    assert watch.check() == [] and len(receiver.requests) == 1  # notified once

    # the next night the run succeeds at 03:10: nothing to say
    runs.append(
        RunRecord(
            id="r2",
            workload="nightly",
            kind="job",
            status="succeeded",
            started=at(3, 0, 24),
            ended=at(3, 10, 24),
        )
    )
    now[0] = at(4, 0, 24)
    assert watch.check() == [] and len(receiver.requests) == 1


def test_fires_before_the_scheduler_started_are_not_late(
    make_plan: Any, receiver: Receiver
) -> None:
    plan = make_plan(f"  - on: [late]\n    jobs: [nightly]\n    webhook: {receiver.url}/late\n")
    watch = LateWatch(plan, lambda name: [], lambda s, k: None, clock=lambda: at(5), since=at(4))
    assert watch.check() == [] and receiver.requests == []


def test_no_late_alert_means_no_watch(make_plan: Any, receiver: Receiver) -> None:
    plan = make_plan(f"  - on: [failed]\n    webhook: {receiver.url}/f\n")
    assert not LateWatch(plan, lambda name: [], lambda s, k: None).active
