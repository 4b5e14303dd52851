from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.servers import CHROMIUM, CHROMIUM_ARGS

from mizzen.storage.base import Store, open_store
from mizzen.ui.seed import pipeline_run, seed_runs

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "ui"

SPEC = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: shop
jobs:
  train: {command: [python, -c, pass]}
  features: {command: [python, -c, pass]}
  report: {command: [python, -c, pass]}
pipelines:
  nightly:
    schedule: "0 3 * * *"
    steps: [features, {job: train, after: [features]}, {job: report, after: [train]}]
services:
  classifier:
    model: churn
    versions: {"1": 80, "2": 20}
    port: %(port)d
"""

SEEDED = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def publish_models(store: Store, tmp: Path) -> None:
    from mizzen.storage.registry import ModelRegistry

    reg = ModelRegistry(store)
    model = tmp / "model.onnx"
    model.write_bytes(b"not really onnx")
    sig = {
        "inputs": [{"name": "features", "type": "float32", "shape": [None, 4]}],
        "outputs": [{"name": "label", "type": "int64", "shape": [None]}],
    }
    for acc, loss in ((0.81, 0.42), (0.87, 0.35)):
        reg.publish(
            "churn",
            model,
            {
                "signature": sig,
                "metrics": {"accuracy": acc, "loss": loss},
                "run_id": "20250101-000000-abcd",
                "workload": "train",
            },
        )
    reg.set_alias("churn", "prod", 1)
    reg.set_alias("churn", "candidate", 2)


@pytest.fixture(scope="session")
def project(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("shop")
    service_port = free_port()
    (root / "mizzen.yaml").write_text(SPEC % {"port": service_port})
    store = open_store((root / ".mizzen" / "store").as_uri())
    seed_runs(store, SEEDED)
    now = time.time()
    pipeline_run(
        store,
        "nightly",
        now - 80,
        {"features": "succeeded", "train": "failed", "report": "skipped"},
        {"train": ["features"], "report": ["train"]},
    )
    publish_models(store, root)
    return {"root": root, "store": store, "service_port": service_port}


@contextlib.contextmanager
def start_ui(root: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """`mizzen ui ARGS` itself, as a user starts it, on a free loopback port: its URL."""
    port = free_port()
    environ = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    environ.pop("MIZZEN_STORE", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mizzen.cli.main", "ui", "--port", str(port), *args],
        cwd=root,
        env=environ,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(url + "/healthz", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None:
                    raise RuntimeError(
                        f"mizzen ui exited: {proc.stdout.read().decode() if proc.stdout else ''}"
                    ) from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def ui_process() -> Any:
    """`start_ui`, for tests that start a dashboard with their own flags."""
    return start_ui


@pytest.fixture(scope="session")
def server(project: dict[str, Any]) -> Iterator[str]:
    with start_ui(project["root"]) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{CHROMIUM} is missing: scripts/setup.sh installs the chromium package")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900})
    pg = ctx.new_page()
    yield pg
    ctx.close()


@pytest.fixture(scope="session")
def shots() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def chart_lib() -> None:
    from mizzen.ui.app import CHART_LIB

    if CHART_LIB.exists():
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{CHART_LIB} is missing: it is committed (scripts/vendor-uplot.sh)")
    pytest.skip(f"{CHART_LIB} is missing: git checkout src/mizzen/ui/static/vendor")
