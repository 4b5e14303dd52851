from __future__ import annotations

import logging
import time

from mizzen.notify import dispatch_run_alerts
from mizzen.storage.runs import Metric, RunRecord


def secrets_for(url: str):
    values = {
        ("hooks", "url"): f"{url}/hooks/s3cr3t-token",
        ("hooks", "user"): "alice",
        ("hooks", "password"): "pw-123",
    }
    return lambda name, key: values.get((name, key))


def failed_run() -> RunRecord:
    return RunRecord(
        id="20250101-000000-abcd",
        workload="train",
        kind="job",
        status="failed",
        started=time.time() - 5,
        ended=time.time(),
        reason="exit code 1",
    )


def alerts(fmt: str = "json") -> str:
    return f"  - on: [failed]\n    webhook: ${{secrets.hooks.url}}\n    format: {fmt}\n"


def test_webhook_json_payload_with_secret_resolved_at_send_time(make_plan, receiver, caplog):
    plan = make_plan(alerts())
    assert plan.alerts[0].webhook == "${secrets.hooks.url}"
    caplog.set_level(logging.INFO, "mizzen.notify")
    dispatch_run_alerts(plan, failed_run(), [], secrets_for(receiver.url))
    (req,) = receiver.requests
    assert req["path"] == "/hooks/s3cr3t-token"
    body = req["json"]
    assert body["alert"] == "failed" and body["workload"] == "train" and body["project"] == "demo"
    assert body["run"] == "20250101-000000-abcd" and "exit code 1" in body["summary"]
    assert "sent" in caplog.text and "s3cr3t" not in caplog.text


def test_slack_and_teams_formats(make_plan, receiver):
    for fmt in ("slack", "teams"):
        dispatch_run_alerts(make_plan(alerts(fmt)), failed_run(), [], secrets_for(receiver.url))
    slack, teams = (r["json"] for r in receiver.requests)
    assert "train" in slack["text"] and slack["blocks"][0]["type"] == "header"
    card = teams["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert any("exit code 1" in b.get("text", "") for b in card["content"]["body"])


def test_a_dead_receiver_is_retried_logged_and_never_raises(make_plan, receiver, caplog):
    receiver.status = 503
    caplog.set_level(logging.INFO, "mizzen.notify")
    dispatch_run_alerts(make_plan(alerts()), failed_run(), [], secrets_for(receiver.url))
    assert len(receiver.requests) == 3  # bounded retries
    assert "attempt 3/3" in caplog.text and "s3cr3t" not in caplog.text

    caplog.clear()
    dispatch_run_alerts(
        make_plan(alerts()), failed_run(), [], secrets_for("http://127.0.0.1:9")
    )  # nothing listens
    assert "failed (attempt 3/3)" in caplog.text and "s3cr3t" not in caplog.text


def test_a_missing_secret_is_not_retried_and_names_the_secret(make_plan, receiver, caplog):
    dispatch_run_alerts(make_plan(alerts()), failed_run(), [], lambda n, k: None)
    assert receiver.requests == []
    assert "secrets.hooks.url is not set" in caplog.text and "attempt 1/3" in caplog.text


def test_successful_run_sends_nothing_unless_a_metric_crosses(make_plan, receiver):
    plan = make_plan(
        f"  - on: [failed, metric]\n    metric: {{name: accuracy, below: 0.8}}\n    webhook: {receiver.url}/m\n"
    )
    ok = RunRecord(id="r", workload="train", kind="job", status="succeeded", started=0.0, ended=1.0)
    dispatch_run_alerts(plan, ok, [Metric("accuracy", 0.91, None, 1.0)], secrets_for(""))
    assert receiver.requests == []
    dispatch_run_alerts(plan, ok, [Metric("accuracy", 0.62, None, 1.0)], secrets_for(""))
    assert receiver.requests[0]["json"]["alert"] == "metric"
    assert receiver.requests[0]["json"]["details"]["value"] == 0.62
