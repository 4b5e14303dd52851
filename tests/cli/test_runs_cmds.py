"""`mizzen runs`, `mizzen runs show`, `mizzen logs [-f]`."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mizzen.cli.main import main

HEAD = "apiVersion: mizzen.io/v1alpha1\nkind: Project\nname: demo\n"
SPEC = """
jobs:
  train:
    command: [$PY, -c, "import mizzen; mizzen.log_metric('acc', 0.75); mizzen.log_param('lr', 0.1); (mizzen.outputs_dir() / 'model.txt').write_text('m'); print('trained')"]
  bad: {command: [sh, -c, "echo oops; exit 2"]}
  slow: {command: [sh, -c, "echo first; while [ ! -f go ]; do sleep 0.1; done; echo second"]}
pipelines:
  p: {steps: [train, {job: bad, after: [train]}]}
"""


def _mizzen(*args: str) -> int:
    with pytest.raises(SystemExit) as info:
        main(list(args))
    return int(info.value.code or 0)


@pytest.fixture
def proj(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Path:
    (tmp_path / "mizzen.yaml").write_text(HEAD + SPEC.replace("$PY", json.dumps(sys.executable)))
    monkeypatch.chdir(tmp_path)
    assert _mizzen("run", "train") == 0
    assert _mizzen("run", "p") == 1
    capsys.readouterr()
    return tmp_path


def test_runs_lists_newest_first_with_filters(
    proj: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _mizzen("runs") == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split("\t")[:3] == ["RUN", "WORKLOAD", "STATUS"]
    assert [line.split("\t")[1:3] for line in lines[1:]] == [
        ["p", "failed"],
        ["train", "succeeded"],
    ]
    assert _mizzen("runs", "train", "-o", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert [(r["workload"], r["metrics"], r["params"]) for r in data] == [
        ("train", {"acc": 0.75}, {"lr": 0.1})
    ]
    assert _mizzen("runs", "--status", "failed", "--limit", "5", "-o", "json") == 0
    assert [r["workload"] for r in json.loads(capsys.readouterr().out)] == ["p"]


def test_runs_show_steps_params_metrics_outputs(
    proj: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _mizzen("runs", "show", "train") == 0
    out = capsys.readouterr().out
    assert "status    succeeded" in out and "lr = 0.1" in out and "acc = 0.75" in out
    assert "model.txt  file://" in out
    assert _mizzen("runs", "show", "p", "-o", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert [(s["name"], s["status"], s["reason"]) for s in data["steps"]] == [
        ("train", "succeeded", ""),
        ("bad", "failed", "exited with code 2"),
    ]
    assert _mizzen("runs", "show", "nope") == 2


def test_logs_of_a_run_or_the_latest_run_of_a_workload(
    proj: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _mizzen("logs", "p") == 0
    assert capsys.readouterr().out.splitlines() == ["train | trained", "bad | oops"]
    assert _mizzen("logs", "p", "--step", "bad") == 0
    assert capsys.readouterr().out.splitlines() == ["oops"]
    assert _mizzen("logs", "p", "--step", "zzz") == 2


def test_logs_follow_a_live_run(proj: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = subprocess.Popen(
        [sys.executable, "-m", "mizzen.cli.main", "run", "slow"],
        cwd=proj,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        logs = proj / ".mizzen" / "store" / "runs" / "slow"
        end = time.monotonic() + 60
        while time.monotonic() < end:  # the live log is uploaded while the run goes on
            found = list(logs.glob("*/logs/slow.log"))
            if found and b"first" in found[0].read_bytes():
                break
            time.sleep(0.1)
        else:
            raise AssertionError("the live log was never uploaded")
        (proj / "go").write_text("")
        assert _mizzen("logs", "slow", "-f") == 0
        assert capsys.readouterr().out.splitlines() == ["first", "second"]
    finally:
        run.wait(60)
    assert run.returncode == 0


def test_a_run_whose_runner_stopped_heartbeating_is_lost_everywhere_with_an_end_time(
    proj: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from mizzen.storage.base import open_store
    from mizzen.ui.seed import silent_run

    store = open_store((proj / ".mizzen" / "store").as_uri())
    beat = time.time() - 600
    rec = silent_run(store, "slow", beat, 60)
    assert _mizzen("runs", "--status", "lost", "-o", "json") == 0
    (data,) = json.loads(capsys.readouterr().out)
    assert (data["id"], data["status"], data["ended"]) == (rec.id, "lost", beat)
    assert data["duration"] == pytest.approx(60) and data["steps"][0]["status"] == "lost"
    assert _mizzen("runs", "show", rec.id) == 0
    out = capsys.readouterr().out
    assert "status    lost: its runner (pid 4242 on laptop) stopped at " in out
    assert "duration 1m00s" in out and "ended " in out
    assert _mizzen("runs", "show", rec.id, "-o", "json") == 0
    assert json.loads(capsys.readouterr().out)["ended"] == beat
    assert _mizzen("logs", rec.id, "-f") == 0  # ends, instead of following a dead run
    assert capsys.readouterr().out.splitlines() == ["first"]
    raw = json.loads(store.read_bytes(f"{rec.prefix}/run.json"))
    assert raw["status"] == "running"  # readers show it lost; they do not write
