"""`mizzen signals` as a user runs it: the computation is a recorded run of mizzen's own job
(scheduled like any job), `show`/`list` read what it wrote, `backfill` recomputes a range,
`sql` prints what runs, the exporter serves /metrics; mistakes exit 2 and say what to do."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from mizzen import spec as spec_mod
from mizzen.plan import compile_plan

MIZZEN = str(Path(sys.executable).parent / "mizzen")
SPEC = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: cli
stores: {lake: data/lake}
store: lake
datasets:
  drives:
    location: lake/tables/drives
    schema:
      started_at: timestamp
      predicted: string
      confidence: double
      corrected: string
      vehicle: string
      variant: string
jobs:
  ingest:
    command: [python, ingest.py]
    outputs: [drives]
signals:
  business-share:
    dataset: drives
    time: started_at
    ratio: {numerator: "predicted = 'business' AND confidence >= 0.9"}
    dimensions: [vehicle]
    arm: variant
    description: Share of drives auto-classified business
    owner: quality@example.com
  accuracy:
    dataset: drives
    time: started_at
    mean: "coalesce(corrected, predicted) = predicted"
    schedule: {cron: "15 1 * * *", timeZone: Europe/Paris}
    alerts: [{below: 0.99}]
"""
INGEST = """\
import datetime as dt, os, sys
sys.path.insert(0, os.environ["TESTS_ROOT"])
from tests.signals.conftest import day_rows
import pyarrow as pa, mizzen
first, days = int(os.environ.get("FIRST", "0")), int(os.environ.get("DAYS", "3"))
mizzen.dataset("drives").write(pa.concat_tables([day_rows(d).drop_columns(["drive_id", "day", "driver_id"]) for d in range(first, first + days)]))
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "mizzen.yaml").write_text(SPEC)
    (tmp_path / "ingest.py").write_text(INGEST)
    return tmp_path


def mizzen(root: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "TESTS_ROOT": str(Path(__file__).resolve().parents[2]),
        "NO_COLOR": "1",
        **env,
    }
    return subprocess.run(
        [MIZZEN, *argv], cwd=root, capture_output=True, text=True, timeout=300, env=environ
    )


def ok(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def test_computed_shown_and_backfilled_from_the_command_line(project: Path) -> None:
    ok(mizzen(project, "run", "ingest"))
    out = ok(mizzen(project, "signals", "compute", "business-share"))
    assert "3 bucket(s)" in out and "(first run)" in out
    runs = json.loads(ok(mizzen(project, "runs", "mizzen-signal-business-share", "-o", "json")))
    assert runs[0]["status"] == "succeeded"
    assert runs[0]["metrics"]["rows_read"] == 1200 and runs[0]["metrics"]["buckets"] == 3
    assert "up to date" in ok(mizzen(project, "signals", "compute", "business-share"))

    shown = json.loads(ok(mizzen(project, "signals", "show", "business-share", "-o", "json")))
    assert shown["definition"] == "sum(predicted = 'business' AND confidence >= 0.9) / sum(1)"
    assert len(shown["values"]) == 3 and all(p["complete"] for p in shown["values"])
    assert set(shown["segments"]["vehicle"]) == {"car", "van"} and set(shown["arms"]) == {"A", "B"}
    exp = shown["experiment"]
    assert exp["control"] == "A" and exp["arms"]["B"]["method"] == "wilson"
    assert exp["differences"][0]["arm"] == "B" and exp["differences"][0]["low"] is not None
    table = ok(mizzen(project, "signals", "show", "business-share"))
    assert "vehicle=van" in table and "variant=B" in table and "vs control" in table.lower()

    # more rows of day 1 arrive late: the schedule would not recompute day 1, a backfill does
    ok(mizzen(project, "run", "ingest", FIRST="1", DAYS="1"))
    before = {p["bucket"]: p["n"] for p in shown["values"]}
    out = ok(
        mizzen(
            project,
            "signals",
            "backfill",
            "business-share",
            "--from",
            "2025-03-04",
            "--to",
            "2025-03-04",
        )
    )
    assert "1 bucket(s)" in out and "(backfill)" in out
    after = {
        p["bucket"]: p["n"]
        for p in json.loads(ok(mizzen(project, "signals", "show", "business-share", "-o", "json")))[
            "values"
        ]
    }
    day1 = "2025-03-04T00:00:00+00:00"
    assert after[day1] == 2 * before[day1] and {k: v for k, v in after.items() if k != day1} == {
        k: v for k, v in before.items() if k != day1
    }

    listed = {
        s["name"]: s for s in json.loads(ok(mizzen(project, "signals", "list", "-o", "json")))
    }
    assert listed["business-share"]["buckets"] == 3 and listed["accuracy"]["buckets"] == 0
    ok(mizzen(project, "signals", "compute", "accuracy"))
    listed = {
        s["name"]: s for s in json.loads(ok(mizzen(project, "signals", "list", "-o", "json")))
    }
    assert listed["accuracy"]["firing"] == ["below-0.99"]


def test_the_sql_it_runs_and_mistakes(project: Path) -> None:
    sql = ok(
        mizzen(project, "signals", "sql", "accuracy", "--from", "2025-03-04", "--to", "2025-03-05")
    )
    assert "CAST('2025-03-03 23:00:00+00' AS TIMESTAMPTZ)" not in sql  # accuracy's buckets are UTC
    assert "\"started_at\" >= CAST('2025-03-04 00:00:00+00' AS TIMESTAMPTZ)" in sql
    assert "\"started_at\" < CAST('2025-03-06 00:00:00+00' AS TIMESTAMPTZ)" in sql  # --to included
    bad = mizzen(project, "signals", "show", "acuracy")
    assert (
        bad.returncode == 2
        and "no signal 'acuracy'" in bad.stderr
        and "did you mean 'accuracy'" in bad.stderr
    )
    bad = mizzen(
        project, "signals", "backfill", "accuracy", "--from", "2025-03-05", "--to", "2025-03-01"
    )
    assert bad.returncode == 2 and "is before --from" in bad.stderr
    bad = mizzen(
        project, "signals", "backfill", "accuracy", "--from", "yesterday", "--to", "2025-03-01"
    )
    assert bad.returncode == 2 and "--from 'yesterday': expected a date" in bad.stderr
    bad = mizzen(project, "signals", "compute", "accuracy", "--image", "x:1")
    assert bad.returncode == 2 and "--image does not apply" in bad.stderr


def test_mizzen_schedules_each_signal_like_a_job(project: Path) -> None:
    plan = compile_plan(spec_mod.load(project / "mizzen.yaml"), "local")
    share, acc = plan.jobs["mizzen-signal-business-share"], plan.jobs["mizzen-signal-accuracy"]
    assert share.kind == acc.kind == "sql"
    assert share.schedule is not None and share.schedule.cron == "30 0 * * *"
    assert acc.schedule is not None and (acc.schedule.cron, acc.schedule.time_zone) == (
        "15 1 * * *",
        "Europe/Paris",
    )
    assert share.inputs == ("drives",)
    assert "mizzen-signals" in plan.services  # accuracy has an alert: its exporter


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_the_exporter_serves_the_latest_values(project: Path) -> None:
    ok(mizzen(project, "run", "ingest"))
    ok(mizzen(project, "signals", "compute", "accuracy"))
    port = _free_port()
    proc = subprocess.Popen(
        [MIZZEN, "signals", "exporter", "--port", str(port)],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        text = _get(f"http://127.0.0.1:{port}/metrics", proc)
    finally:
        proc.terminate()
        proc.wait(10)
    line = next(
        x
        for x in text.splitlines()
        if x.startswith(
            'mizzen_signal_value{project="cli",signal="accuracy",dimension="",segment="",arm=""}'
        )
    )
    assert 0.8 < float(line.rsplit(" ", 1)[1]) < 1
    assert (
        'mizzen_signal_alert_firing{project="cli",signal="accuracy",alert="below-0.99",dimension="",segment=""} 1.0'
        in text
    )


def _get(url: str, proc: Any) -> str:
    for _ in range(100):
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                return str(r.read().decode())
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(proc.stdout.read()) from None
            time.sleep(0.2)
    raise AssertionError("the exporter did not answer")
