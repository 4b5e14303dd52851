"""`mizzen exec` (the container entry point) and `mizzen up` (supervised services)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from mizzen.storage.base import open_store
from mizzen.storage.runs import RunStore
from mizzen.targets.local.console import Console
from mizzen.targets.local.procs import Stop
from mizzen.targets.local.services import Supervisor, up

from .conftest import Make, alive, plan_of

JOB = "import mizzen, os, sys; mizzen.log_metric('acc', 0.9); (mizzen.outputs_dir() / 'o.txt').write_text('x'); print('token', os.environ['MIZZEN_SECRET_API_TOKEN'], sys.argv[1]); sys.exit(7)"


def _exec(tmp_path: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    argv = [
        sys.executable,
        "-m",
        "mizzen.cli.main",
        "exec",
        "--workload",
        "train",
        "--",
        sys.executable,
        "-c",
        JOB,
        "${run.id}",
    ]
    base = {k: v for k, v in os.environ.items() if not k.startswith("MIZZEN_")}
    return subprocess.run(
        argv,
        cwd=tmp_path,
        env={**base, "MIZZEN_SECRET_API_TOKEN": "tok-123456", **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_exec_records_a_cluster_run_and_exits_with_the_childs_code(tmp_path: Path) -> None:
    store = (tmp_path / "store").as_uri()
    done = _exec(
        tmp_path,
        {
            "MIZZEN_STORE": store,
            "MIZZEN_STORE_OPTIONS": "{}",
            "MIZZEN_TARGET": "kubernetes",
            "MIZZEN_RUN_ID": "20260101-000000-abcd",
            "MIZZEN_PROJECT": "demo",
        },
    )
    assert done.returncode == 7, done.stderr
    assert "token *** 20260101-000000-abcd" in done.stdout
    runs = RunStore(open_store(store))
    rec = runs.get("20260101-000000-abcd")
    assert (rec.workload, rec.trigger, rec.target, rec.status, rec.project) == (
        "train",
        "cluster",
        "kubernetes",
        "failed",
        "demo",
    )
    assert rec.reason == "train exited with code 7"
    assert rec.metrics == {"acc": 0.9} and rec.outputs == ["o.txt"]
    assert b"tok-123456" not in runs.log(rec, "train") and runs.is_done(rec)


def test_exec_without_a_store_runs_unrecorded_with_a_warning(tmp_path: Path) -> None:
    done = _exec(tmp_path, {})
    assert done.returncode == 7
    assert "MIZZEN_STORE is not set" in done.stderr
    assert "token ***" in done.stdout


CRASHER = (
    "import pathlib\nwith open('starts.txt', 'a') as f: f.write('start\\n')\nraise SystemExit(1)\n"
)


def test_up_restarts_a_crashing_service_with_backoff_and_stops_cleanly(project: Make) -> None:
    root = project(
        "services:\n  web: {command: [sh, -c, 'sleep 300 & echo $! > sleeper.pid; wait'], restartDelay: 50ms}\n  crash: {command: [$PY, crash.py], restartDelay: 50ms}\n",
        {"crash.py": CRASHER},
    )
    stop = Stop()
    out, err = io.StringIO(), io.StringIO()
    thread = threading.Thread(
        target=up,
        args=(plan_of(root), ()),
        kwargs={"console": Console(out, err, color=False), "stop": stop, "grace": 1.0},
    )
    thread.start()
    try:
        end = time.monotonic() + 60
        while time.monotonic() < end:
            starts = root / "starts.txt"
            if (
                starts.exists()
                and len(starts.read_text().splitlines()) >= 3
                and (root / "sleeper.pid").exists()
            ):
                break
            time.sleep(0.05)
    finally:
        stop.set("stopped")
        thread.join(60)
    assert not thread.is_alive()
    assert len((root / "starts.txt").read_text().splitlines()) >= 3
    assert "crash exited with code 1; restarting in 50ms" in err.getvalue()
    assert "restarting in 100ms" in err.getvalue()
    assert not alive(int((root / "sleeper.pid").read_text()))


def test_supervisor_backoff_doubles_caps_and_resets_after_healthy_running(tmp_path: Path) -> None:
    stop = Stop()
    sup = Supervisor(
        name="s",
        argv=["sh", "-c", "exit 1"],
        env=dict(os.environ),
        cwd=tmp_path,
        console=Console(io.StringIO(), io.StringIO()),
        stop=stop,
        delay=0.01,
        max_delay=0.04,
    )

    def stop_after_five() -> None:
        while len(sup.waits) < 5:
            time.sleep(0.01)
        stop.set("stopped")

    threading.Thread(target=stop_after_five, daemon=True).start()
    sup.run()
    assert sup.waits[:5] == [0.01, 0.02, 0.04, 0.04, 0.04]

    healthy = Supervisor(
        name="h",
        argv=["sh", "-c", "exit 0"],
        env=dict(os.environ),
        cwd=tmp_path,
        console=Console(io.StringIO(), io.StringIO()),
        stop=Stop(),
        delay=0.01,
        healthy_after=0.0,
    )
    threading.Thread(
        target=lambda: (time.sleep(1.0), healthy.stop.set("stopped")), daemon=True
    ).start()
    healthy.run()
    assert set(healthy.waits) == {0.01}


def test_up_cli_stops_on_ctrl_c(project: Make) -> None:
    root = project("services:\n  web: {command: [sh, -c, 'echo $$ > web.pid; exec sleep 300']}\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "mizzen.cli.main", "up"],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        end = time.monotonic() + 60
        while not (root / "web.pid").exists() and time.monotonic() < end:
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "up: stopped" in err
    assert not alive(int((root / "web.pid").read_text()))


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_health_probe_reports_ready_and_restarts_an_unhealthy_service(tmp_path: Path) -> None:
    from mizzen.targets.local.services import HealthProbe

    port = _free_port()
    (tmp_path / "ok").write_text("fine")
    err = io.StringIO()
    healthy = Supervisor(
        name="web",
        argv=[sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        env=dict(os.environ),
        cwd=tmp_path,
        console=Console(io.StringIO(), err, color=False),
        stop=Stop(),
        grace=1.0,
        probe=HealthProbe(f"http://127.0.0.1:{port}/ok", initial_delay=0.2, period=0.1),
    )
    thread = threading.Thread(target=healthy.run, daemon=True)
    thread.start()
    end = time.monotonic() + 30
    while "web: ready" not in err.getvalue() and time.monotonic() < end:
        time.sleep(0.05)
    healthy.stop.set("stopped")
    thread.join(30)
    assert f"web: ready (http://127.0.0.1:{port}/ok)" in err.getvalue()
    assert healthy.restarts == 0

    err = io.StringIO()
    deaf = Supervisor(  # runs, but never answers on its health port
        name="deaf",
        argv=["sh", "-c", "sleep 300"],
        env=dict(os.environ),
        cwd=tmp_path,
        console=Console(io.StringIO(), err, color=False),
        stop=Stop(),
        delay=0.05,
        grace=1.0,
        probe=HealthProbe(
            f"http://127.0.0.1:{_free_port()}/", initial_delay=0.1, startup_timeout=0.3, period=0.05
        ),
    )
    thread = threading.Thread(target=deaf.run, daemon=True)
    thread.start()
    end = time.monotonic() + 30
    while deaf.restarts < 1 and time.monotonic() < end:
        time.sleep(0.05)
    deaf.stop.set("stopped")
    thread.join(30)
    assert deaf.restarts >= 1
    assert "deaf: health check failed 3 times" in err.getvalue()
    assert "and was not ready within 0.3s; restarting it" in err.getvalue()

    # a slow start (a model loading) is not restarted while within its startup timeout
    err = io.StringIO()
    slow = Supervisor(
        name="slow",
        argv=["sh", "-c", "sleep 300"],
        env=dict(os.environ),
        cwd=tmp_path,
        console=Console(io.StringIO(), err, color=False),
        stop=Stop(),
        delay=0.05,
        grace=1.0,
        probe=HealthProbe(f"http://127.0.0.1:{_free_port()}/", initial_delay=0.1, period=0.05),
    )
    thread = threading.Thread(target=slow.run, daemon=True)
    thread.start()
    time.sleep(1.0)  # twenty failed checks, far more than the three that restart a ready one
    slow.stop.set("stopped")
    thread.join(30)
    assert slow.restarts == 0 and "restarting" not in err.getvalue()


def test_up_says_replicas_and_autoscale_are_for_the_cluster(project: Make) -> None:
    root = project(
        "services:\n  web: {command: [sleep, '30'], replicas: 3, autoscale: {min: 2, max: 5}}\n"
    )
    stop = Stop()
    stop.set("stopped")  # start nothing: only what `up` says before starting matters here
    out, err = io.StringIO(), io.StringIO()
    up(plan_of(root), (), console=Console(out, err, color=False), stop=stop, grace=1.0)
    said = err.getvalue()
    assert "web: replicas 3 -> 1 on the local target" in said
    assert "web: autoscale (min 2, max 5) applies in the cluster only" in said
