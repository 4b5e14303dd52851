from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mizzen.plan import compile_plan
from mizzen.plan.model import Plan
from mizzen.spec import load


def _plan(tmp_path: Path, alerts: str, jobs: str = "") -> Plan:
    text = (
        "apiVersion: mizzen.io/v1alpha1\nkind: Project\nname: demo\n"
        "secrets:\n  hooks: [url, user, password]\n"
        "jobs:\n"
        "  train:\n    command: [python, -c, pass]\n"
        "  nightly:\n    command: [python, -c, pass]\n    schedule: '0 3 * * *'\n"
        f"{jobs}"
        "pipelines:\n  flow:\n    steps: [train, {job: nightly, after: [train]}]\n"
        f"alerts:\n{alerts}"
    )
    (tmp_path / "mizzen.yaml").write_text(text)
    return compile_plan(load(tmp_path / "mizzen.yaml"), "local")


class Receiver:
    """A real HTTP server on 127.0.0.1 that records what it is sent."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "json": json.loads(body)}
                )
                self.send_response(outer.status)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def _receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.close()


@pytest.fixture
def receiver(_receiver: Receiver) -> Receiver:
    _receiver.requests.clear()
    _receiver.status = 200
    return _receiver


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    from mizzen.notify import notifiers

    monkeypatch.setattr(notifiers, "BACKOFF_SECONDS", 0.05)
    monkeypatch.setattr(notifiers, "TIMEOUT_SECONDS", 5.0)


@pytest.fixture
def make_plan(tmp_path: Path) -> Any:
    """make_plan(alerts_yaml) -> Plan of a small project with jobs train, nightly and pipeline flow."""
    return lambda alerts, jobs="": _plan(tmp_path, alerts, jobs)
