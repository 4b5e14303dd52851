"""Real model servers for the serve tests: `mizzen serve` subprocesses on free loopback ports,
reading models published through the real registry in a local store. One server per
configuration for the whole session; each is stopped by its pid."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

HERE = Path(__file__).resolve().parent
SIG_PY = {
    "inputs": [{"name": "input", "dtype": "float32", "shape": [None, 4]}],
    "outputs": [{"name": "output", "dtype": "float32", "shape": [None]}],
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def training_data(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    return x, y


def classifier(seed: int = 0, c: float = 1.0) -> Any:
    """A 4-feature logistic regression, like the example project's classifier."""
    from sklearn.linear_model import LogisticRegression

    x, y = training_data(seed)
    return LogisticRegression(C=c).fit(x, y)


def expected(rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """What the `classifier()` model answers for `rows`: labels and probabilities."""
    model = classifier()
    return model.predict(rows), model.predict_proba(rows).astype(np.float32)


def onnx_bytes(model: Any) -> bytes:
    from skl2onnx import convert_sklearn
    from skl2onnx.common.data_types import FloatTensorType

    types = [("input", FloatTensorType([None, 4]))]
    return convert_sklearn(
        model, initial_types=types, options={id(model): {"zipmap": False}}
    ).SerializeToString()


@dataclass
class Registry:
    url: str

    @property
    def store(self) -> Any:
        from mizzen.storage.base import open_store

        return open_store(self.url)

    def publish(self, name: str, model: Any, **kwargs: Any) -> int:
        from mizzen.storage.registry import publish_model

        x, _ = training_data()
        kwargs.setdefault("example", x[:2])
        return publish_model(name, model, store=self.store, **kwargs).version

    def publish_files(self, name: str, folder: Path, meta: dict[str, Any]) -> int:
        from mizzen.storage.registry import ModelRegistry

        return ModelRegistry(self.store).publish(name, folder, meta).version


@dataclass
class Server:
    url: str
    pid: int
    proc: subprocess.Popen[bytes]
    log: Path
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.url, timeout=30)

    @property
    def hostport(self) -> str:
        return self.url.removeprefix("http://")

    def metrics(self) -> str:
        return self.client.get("/metrics").text

    def stop(self) -> int:
        self.client.close()
        if self.proc.poll() is None:
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        return int(self.proc.returncode)


def start_server(registry: Registry, args: list[str], log: Path, *, ready: bool = True) -> Server:
    port = free_port()
    env = {
        **os.environ,
        "MIZZEN_STORE": registry.url,
        "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]),
    }
    env.pop("MIZZEN_STORE_OPTIONS", None)
    argv = [
        sys.executable,
        "-m",
        "mizzen.cli.main",
        "serve",
        *args,
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            cwd=log.parent,
        )
    server = Server(f"http://127.0.0.1:{port}", proc.pid, proc, log)
    if ready:
        wait_ready(server)
    return server


def wait_ready(server: Server, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            raise RuntimeError(
                f"mizzen serve exited with {server.proc.returncode}:\n{server.log.read_text()[-3000:]}"
            )
        try:
            if server.client.get("/v2/health/ready").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(
        f"mizzen serve not ready within {timeout}s:\n{server.log.read_text()[-3000:]}"
    )


def wait_until(check: Any, timeout: float = 30.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"gave up waiting for {what}")


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    pytest.importorskip("skl2onnx")
    reg = Registry((tmp_path_factory.mktemp("serve") / "store").as_uri())
    from serve_slow_model import SlowModel

    for name in ("clf", "reload", "broken"):
        reg.publish(name, classifier())
    reg.publish("split", classifier(seed=1))
    reg.publish("split", classifier(seed=2, c=0.1))
    reg.publish("slow", SlowModel(0.3), format="python", signature=SIG_PY)
    reg.publish("batched", classifier())
    return reg


@pytest.fixture(scope="session")
def server(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """clf, reload and broken following `latest`, polled every 0.2 s; 64 KiB body limit."""
    log = tmp_path_factory.mktemp("server") / "serve.log"
    srv = start_server(
        registry,
        ["clf", "reload", "broken", "--workers", "1", "--poll", "0.2s", "--max-body", "64Ki"],
        log,
    )
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def split_server(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """70/30 between versions 1 and 2, two worker processes."""
    log = tmp_path_factory.mktemp("split") / "serve.log"
    srv = start_server(
        registry, ["split", "--versions", '{"1": 70, "2": 30}', "--workers", "2"], log
    )
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def slow_server(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A slow python model with a queue of 4, and an ONNX model with batching on."""
    log = tmp_path_factory.mktemp("slow") / "serve.log"
    args = [
        "slow",
        "batched",
        "--allow-python",
        "--workers",
        "1",
        "--max-queue",
        "4",
        "--max-batch-size",
        "8",
        "--max-latency",
        "5ms",
    ]
    srv = start_server(registry, args, log)
    yield srv
    srv.stop()
