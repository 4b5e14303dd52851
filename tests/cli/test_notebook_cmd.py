"""`mizzen notebook`: a real JupyterLab on 127.0.0.1 whose kernels see a job's environment."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("jupyterlab", reason="needs mizzen[notebook]")

SPEC = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: nbc
stores:
  lake: data/lake
volumes:
  raw: {blob: lake/raw, readOnly: true}
  tmp: {scratch: {}}
config:
  GREETING: hello
secrets:
  db: [password]
jobs:
  job:
    command: [python, -c, "1", "${volumes.raw}", "${volumes.tmp}"]
"""
CODE = "import mizzen; print('|'.join([(mizzen.volume('raw') / 'a.txt').read_text(), mizzen.config('GREETING'), mizzen.secret('db', 'password'), str(mizzen.volume('tmp').is_dir())]))"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_kernels_see_volumes_config_and_secrets(tmp_path: Path) -> None:
    from jupyter_client import BlockingKernelClient

    root = tmp_path / "proj"
    (root / "data" / "lake" / "raw").mkdir(parents=True)
    (root / "data" / "lake" / "raw" / "a.txt").write_text("from-the-store")
    (root / "mizzen.yaml").write_text(SPEC)
    (root / ".mizzen" / "secrets").mkdir(parents=True)
    (root / ".mizzen" / "secrets" / "local.env").write_text("MIZZEN_SECRET_DB_PASSWORD=s3cret\n")
    runtime = tmp_path / "runtime"
    port, token = free_port(), "t0ken"
    env = {
        **os.environ,
        "JUPYTER_RUNTIME_DIR": str(runtime),
        "JUPYTER_TOKEN": token,
        "HOME": str(tmp_path),
    }
    log = (tmp_path / "jupyter.log").open("w")
    server = subprocess.Popen(
        [sys.executable, "-m", "mizzen.cli.main", "notebook", "--no-browser", "--port", str(port)],
        cwd=root,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(600):
            try:
                urllib.request.urlopen(f"{base}/api/status?token={token}", timeout=1)
                break
            except OSError:
                assert server.poll() is None, (tmp_path / "jupyter.log").read_text()
                time.sleep(0.1)
        request = urllib.request.Request(
            f"{base}/api/kernels?token={token}",
            b"{}",
            {"content-type": "application/json"},
            method="POST",
        )
        kernel = json.load(urllib.request.urlopen(request, timeout=60))
        client = BlockingKernelClient(connection_file=str(runtime / f"kernel-{kernel['id']}.json"))
        client.load_connection_file()
        client.start_channels()
        try:
            client.wait_for_ready(timeout=60)
            printed: list[str] = []
            client.execute_interactive(
                CODE, timeout=60, output_hook=lambda m: printed.append(m["content"].get("text", ""))
            )
        finally:
            client.stop_channels()
        assert "".join(printed).strip() == "from-the-store|hello|s3cret|True"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)
        log.close()
    assert not list((root / ".mizzen" / "scratch").glob("*/tmp"))  # the session's scratch is gone
