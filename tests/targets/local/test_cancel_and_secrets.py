"""Cancellation without orphans, and secrets: checked before anything starts, never shown."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mizzen.errors import SecretMissingError
from mizzen.targets.local.procs import Stop

from .conftest import Make, alive, run_local

FAMILY = "sh -c 'sleep 300 & echo $! > grandchild.pid; echo $$ > child.pid; wait'"


def _wait_for(path: Path, seconds: float = 30.0) -> int:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if path.exists() and path.read_text().strip():
            return int(path.read_text())
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


def test_ctrl_c_stops_child_and_grandchild_and_records_cancelled(project: Make) -> None:
    root = project(f'jobs:\n  family: {{command: [sh, -c, "{FAMILY}"]}}\n')
    mizzen = [sys.executable, "-m", "mizzen.cli.main", "run", "family"]
    proc = subprocess.Popen(
        mizzen, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        child, grandchild = _wait_for(root / "child.pid"), _wait_for(root / "grandchild.pid")
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert not alive(child) and not alive(grandchild)
    from mizzen.storage.base import open_store
    from mizzen.storage.runs import RunStore

    rec = RunStore(open_store((root / ".mizzen" / "store").as_uri())).list("family")[0]
    assert rec.status == "cancelled" and rec.reason == "cancelled by SIGINT"
    assert rec.steps[0].status == "cancelled"


def test_processes_ignoring_sigterm_are_killed_after_the_grace_period(project: Make) -> None:
    script = "trap '' TERM\nsleep 300 &\necho $! > grandchild.pid\necho $$ > child.pid\nwait\n"
    spec = "jobs:\n  stubborn: {command: [sh, stubborn.sh]}\npipelines:\n  p: {steps: [stubborn, {job: stubborn, name: later, after: [stubborn]}]}\n"
    root = project(spec, {"stubborn.sh": script})
    stop = Stop()

    def cancel() -> None:
        _wait_for(root / "grandchild.pid")
        stop.set("cancelled by SIGTERM")

    threading.Thread(target=cancel, daemon=True).start()
    res = run_local(root, "p", stop=stop, grace=0.5)
    assert res.code == 130
    assert not alive(int((root / "child.pid").read_text())) and not alive(
        int((root / "grandchild.pid").read_text())
    )
    assert res.step("stubborn").status == "cancelled"
    assert (res.step("later").status, res.step("later").reason) == (
        "skipped",
        "not run: cancelled by SIGTERM",
    )


SHOW = """
import os, pathlib, sys
value = os.environ["MIZZEN_SECRET_DB_PASSWORD"]
print("password is", value)
print("dsn", os.environ["DSN"])
pathlib.Path("cmdline").write_bytes(pathlib.Path(f"/proc/{os.getpid()}/cmdline").read_bytes())
import mizzen
assert mizzen.secret("db", "password") == value
sys.exit(2)
"""

SPEC = """
secrets:
  db: [password]
jobs:
  show:
    command: [$PY, show.py]
    secrets: [db]
    env: {DSN: "${secrets.db.password}"}
"""


def test_secret_values_never_reach_logs_records_or_argv(
    project: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    value = "hunter2-Zq9"
    root = project(SPEC, {"show.py": SHOW})
    monkeypatch.setenv("MIZZEN_SECRET_DB_PASSWORD", value)
    res = run_local(root, "show")
    assert res.code == 1
    assert "password is ***" in res.out and "dsn ***" in res.out
    assert value not in res.out + res.err
    assert value.encode() not in (root / "cmdline").read_bytes()
    for file in (root / ".mizzen" / "store").rglob("*"):
        if file.is_file():
            assert value.encode() not in file.read_bytes(), file


def test_secrets_come_from_the_env_file_of_the_environment(project: Make) -> None:
    root = project(SPEC + "environments:\n  prod: {}\n", {"show.py": SHOW})
    folder = root / ".mizzen" / "secrets"
    folder.mkdir(parents=True)
    (folder / "local.env").write_text("# local\nMIZZEN_SECRET_DB_PASSWORD=from-local-file\n")
    (folder / "prod.env").write_text("export MIZZEN_SECRET_DB_PASSWORD='from-prod-file'\n")
    os.environ.pop("MIZZEN_SECRET_DB_PASSWORD", None)
    assert run_local(root, "show").out.count("***") == 2
    res = run_local(root, "show", env="prod")
    assert "from-prod-file" not in res.out and "password is ***" in res.out


def test_a_missing_secret_fails_before_any_step_starts(
    project: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MIZZEN_SECRET_DB_PASSWORD", raising=False)
    root = project(
        SPEC
        + "  first:\n    command: [sh, -c, 'touch started']\npipelines:\n  p: {steps: [first, {job: show, after: [first]}]}\n",
        {"show.py": SHOW},
    )
    with pytest.raises(SecretMissingError) as info:
        run_local(root, "p")
    assert info.value.missing == [("db", "password")]
    assert "MIZZEN_SECRET_DB_PASSWORD" in str(info.value) and ".mizzen/secrets/local.env" in str(
        info.value
    )
    assert not (root / "started").exists()
    assert not (root / ".mizzen" / "store" / "runs").exists()


def test_short_secret_values_are_masked_as_words_not_inside_every_word() -> None:
    from mizzen.targets.local.console import Redactor

    mask = Redactor(["s", "42", "hunter2"])
    assert mask("this is s, 42 and 421; hunter2x") == "this is ***, *** and 421; ***x"
    mask.add(["ab"])
    assert mask("ab s 42 xab") == "*** *** *** xab"


def _gone(*pids: int, seconds: float = 30.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if not any(alive(p) for p in pids):
            return True
        time.sleep(0.05)
    return False


def _start_run(root: Path, job: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "mizzen.cli.main", "run", job],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _cli(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mizzen.cli.main", *args],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_kill_9_of_mizzen_run_takes_its_processes_down_and_the_next_run_records_it_lost(
    project: Make,
) -> None:
    import json

    from tests.notify.conftest import Receiver

    from mizzen.storage.base import open_store
    from mizzen.storage.runs import RunStore

    receiver = Receiver()
    root = project(
        f'jobs:\n  family: {{command: [sh, -c, "{FAMILY}"]}}\n'
        "  quick: {command: [sh, -c, 'echo hi']}\n"
        f"alerts:\n  - {{on: [failed], jobs: [family], webhook: '{receiver.url}/lost'}}\n"
    )
    proc = _start_run(root, "family")
    try:
        child, grandchild = _wait_for(root / "child.pid"), _wait_for(root / "grandchild.pid")
        runs = RunStore(open_store((root / ".mizzen" / "store").as_uri()))
        (rec,) = runs.list("family")  # the first upload happens before the step starts
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert _gone(child, grandchild), "the step (or its child) outlived a kill -9 of mizzen run"
    staging = root / ".mizzen" / "runs-staging" / rec.id
    assert staging.is_dir() and runs.get(rec.id).status == "running"  # heartbeat still fresh

    quick = _cli(root, "run", "quick")
    assert quick.returncode == 0, quick.stderr
    assert f"run {rec.id}" in quick.stderr and "recorded as lost" in quick.stderr
    assert not staging.exists()
    lost = runs.get(rec.id)
    assert lost.status == "lost" and lost.ended is not None and lost.ended >= lost.started
    assert f"pid {proc.pid} on " in lost.reason and lost.steps[0].status == "lost"
    assert runs.is_done(lost)
    shown = json.loads(_cli(root, "runs", "show", rec.id, "-o", "json").stdout)
    assert (shown["status"], shown["ended"]) == ("lost", lost.ended)
    assert shown["duration"] == lost.ended - lost.started
    listed = _cli(root, "runs", "--status", "lost").stdout
    assert rec.id in listed and "lost" in listed
    # its `failed` alert, which its killed runner never sent, is sent once it is recorded
    receiver.close()
    (sent,) = [r["json"] for r in receiver.requests]
    assert (sent["alert"], sent["run"], sent["status"]) == ("failed", rec.id, "lost")
    assert f"family run {rec.id} was lost: its runner (pid {proc.pid}" in sent["summary"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_the_step_dies_with_mizzen_run_even_when_its_keeper_is_gone(project: Make) -> None:
    root = project("jobs:\n  sleepy: {command: [sh, -c, 'echo $$ > child.pid; sleep 300; true']}\n")
    proc = _start_run(root, "sleepy")
    try:
        child = _wait_for(root / "child.pid")
        kids = [
            int(pid)
            for task in Path(f"/proc/{proc.pid}/task").iterdir()
            for pid in (task / "children").read_text().split()
        ]
        (keeper,) = [k for k in kids if b"keeper.py" in Path(f"/proc/{k}/cmdline").read_bytes()]
        os.kill(keeper, signal.SIGKILL)
        assert _gone(keeper)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    assert _gone(child), "the step outlived mizzen run: no parent-death signal"


def test_disguised_secret_values_are_masked_too() -> None:
    import base64
    import urllib.parse

    from mizzen.targets.local.console import Redactor

    value = "s3cr3t/Value+42"
    mask = Redactor([value])
    raw = value.encode()
    for text in (
        base64.b64encode(raw).decode(),
        base64.b64encode(raw).decode().rstrip("="),
        base64.urlsafe_b64encode(raw).decode(),
        base64.b64encode(b"user:" + raw).decode(),  # HTTP basic auth
        base64.b64encode(b"{'k': '" + raw + b"'}").decode(),
        raw.hex(),
        raw.hex().upper(),
        value[::-1],
        urllib.parse.quote(value, safe=""),
    ):
        assert mask(f"x {text} y").count("***") == 1, text
        assert value not in mask(text) and text not in mask(text), text
    assert mask(value[:7] + " " + value[7:]) == value[:7] + " " + value[7:]  # split: not caught
    assert Redactor(["abc12"])("YWJjMTI=") == "YWJjMTI="  # too short to mask its disguises
