from __future__ import annotations

from datetime import UTC, datetime

from mizzen.notify import late_runs
from mizzen.notify.conditions import run_events
from mizzen.storage.runs import Metric, RunRecord, StepRecord

ALERTS = """\
  - on: [failed, slow, metric]
    jobs: ["tr*"]
    slowerThan: 10m
    metric: {name: accuracy, below: 0.8}
    webhook: http://127.0.0.1:9/hook
"""


def _run(status: str = "succeeded", seconds: float = 60, **kw: object) -> RunRecord:
    return RunRecord(
        id="20250101-000000-abcd",
        workload="train",
        kind="job",
        status=status,
        started=1000.0,
        ended=1000.0 + seconds,
        **kw,
    )  # type: ignore[arg-type]


def test_failed_slow_and_metric_fire_only_when_true(make_plan):
    alert = make_plan(ALERTS).alerts[0]
    assert run_events(alert, _run(), []) == []
    events = run_events(
        alert,
        _run("failed", 900, reason="exit code 3"),
        [Metric("accuracy", 0.7, 1, 1.0), Metric("accuracy", 0.75, 2, 2.0)],
    )
    kinds = {e.condition: e for e in events}
    assert set(kinds) == {"failed", "slow", "metric"}
    assert "failed: exit code 3" in kinds["failed"].summary
    assert "15m" in kinds["slow"].summary and "10m" in kinds["slow"].summary
    assert kinds["metric"].details["value"] == 0.75  # the last value logged
    assert (
        run_events(
            alert, _run(), [Metric("accuracy", 0.5, 1, 1.0), Metric("accuracy", 0.9, 2, 2.0)]
        )
        == []
    )


def test_globs_match_the_workload_or_a_pipeline_step(make_plan):
    alert = make_plan(ALERTS).alerts[0]
    other = RunRecord(
        id="r1", workload="report", kind="job", status="failed", started=0.0, ended=1.0
    )
    assert run_events(alert, other, []) == []
    flow = RunRecord(
        id="r2",
        workload="flow",
        kind="pipeline",
        status="failed",
        started=0.0,
        ended=1.0,
        steps=[StepRecord("train", "train", "failed"), StepRecord("nightly", "nightly", "skipped")],
    )
    (event,) = run_events(alert, flow, [])
    assert "at step train" in event.summary


def test_late_when_no_success_within_the_window(make_plan):
    plan = make_plan(
        "  - on: [late]\n    jobs: [nightly]\n    lateAfter: 30m\n    webhook: http://127.0.0.1:9/hook\n"
    )
    due = datetime(2025, 3, 4, 3, 0, tzinfo=UTC).timestamp()
    now = due + 45 * 60
    (late,) = late_runs(plan, [], now)
    assert late.workload == "nightly" and late.due == due and late.deadline == due + 1800
    assert "never succeeded" in late.event().summary
    ok = RunRecord(
        id="x", workload="nightly", kind="job", status="succeeded", started=due + 5, ended=due + 600
    )
    assert late_runs(plan, [ok], now) == []
    failed = RunRecord(
        id="y", workload="nightly", kind="job", status="failed", started=due + 5, ended=due + 600
    )
    assert [r.workload for r in late_runs(plan, [failed], now)] == ["nightly"]
    assert (
        late_runs(plan, [], due + 20 * 60) != []
        and late_runs(plan, [], due + 20 * 60)[0].due == due - 86400
    )
    assert late_runs(plan, [], now, since=due + 1) == []  # the scheduler was not up then
