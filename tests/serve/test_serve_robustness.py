"""Overload answers 503 with Retry-After, batching merges concurrent requests and answers each
correctly, SIGTERM drains in-flight requests, and the command refuses bad arguments."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import httpx
import numpy as np

from conftest import Registry, Server, classifier, start_server, training_data, wait_until


def _post_all(url: str, path: str, bodies: list[dict]) -> list[httpx.Response]:
    results: list[httpx.Response] = [None] * len(bodies)  # type: ignore[list-item]

    def one(i: int) -> None:
        with httpx.Client(base_url=url, timeout=60) as client:
            results[i] = client.post(path, json=bodies[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_overload_answers_503_with_retry_after(slow_server: Server) -> None:
    body = {"instances": [[1, 2, 3, 4]]}
    answers = _post_all(slow_server.url, "/v1/models/slow:predict", [body] * 24)
    codes = [r.status_code for r in answers]
    assert set(codes) <= {200, 503}
    assert codes.count(200) >= 1 and codes.count(503) >= 1, codes
    refused = next(r for r in answers if r.status_code == 503)
    assert refused.headers["retry-after"] == "1"
    assert "overloaded" in refused.json()["error"]
    ok = next(r for r in answers if r.status_code == 200)
    assert ok.json()["predictions"] == [10.0]
    assert 'mizzen_rejected_total{model="slow",reason="overloaded"}' in slow_server.metrics()


def test_batching_answers_each_request_with_its_own_rows(slow_server: Server) -> None:
    rows, _ = training_data(seed=9)
    expected = classifier().predict(rows[:40])
    for _ in range(10):
        bodies = [{"instances": rows[i : i + 1].tolist()} for i in range(4)]
        answers = _post_all(slow_server.url, "/v1/models/batched:predict", bodies)
        for i, r in enumerate(answers):
            assert r.status_code == 200, r.text
            assert r.json()["predictions"][0]["label"] == expected[i]
    assert 'mizzen_batch_size_count{model="batched",version="1"}' in slow_server.metrics()


def test_python_models_are_marked_slower(slow_server: Server) -> None:
    meta = slow_server.client.get("/v2/models/slow").json()
    assert meta["platform"] == "python_pickle"
    assert "slower than ONNX" in meta["parameters"]["warning"]


def test_python_models_are_refused_without_allow_python(registry: Registry, tmp_path: Path) -> None:
    server = start_server(registry, ["slow", "--workers", "1"], tmp_path / "serve.log", ready=False)
    assert server.proc.wait(timeout=60) != 0
    assert "--allow-python" in server.log.read_text()


def test_sigterm_drains_in_flight_requests(registry: Registry, tmp_path: Path) -> None:
    server = start_server(
        registry, ["slow", "--allow-python", "--workers", "1"], tmp_path / "serve.log"
    )
    answers: list[httpx.Response] = []
    worker = threading.Thread(
        target=lambda: answers.extend(
            _post_all(server.url, "/v1/models/slow:predict", [{"instances": [[1, 1, 1, 1]]}] * 2)
        )
    )
    worker.start()
    # one request running, one waiting in the queue
    wait_until(
        lambda: 'mizzen_queue_depth{model="slow"} 1' in server.metrics(), what="requests in flight"
    )
    assert server.stop() in (0, -15)  # uvicorn re-raises SIGTERM after draining
    worker.join()
    assert [r.status_code for r in answers] == [200, 200]
    assert [r.json()["predictions"] for r in answers] == [[4.0], [4.0]]


def _mizzen(*args: str, store: str) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "MIZZEN_STORE": store}
    return subprocess.run(
        [sys.executable, "-m", "mizzen.cli.main", "serve", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_cli_refuses_bad_arguments(registry: Registry) -> None:
    cases = [
        (["clf", "--versions", "{nope"], "--versions is not valid JSON"),
        (["clf", "split", "--versions", '{"1": 100}'], "--versions applies to a single MODEL"),
        (["clf@1", "--versions", '{"1": 100}'], "give MODEL@1 or --versions, not both"),
        (["clf", "--max-latency", "2ms"], "--max-latency only applies with --max-batch-size"),
        (["clf", "--max-body", "lots"], "is not a size"),
        (["nosuchmodel", "--workers", "1"], "has no published version"),
        (["clf@7", "--workers", "1"], "has no version 7"),
    ]
    for args, message in cases:
        done = _mizzen(*args, store=registry.url)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr, (args, done.stderr)


def test_several_models_in_one_process(server: Server) -> None:
    for name in ("clf", "reload", "broken"):
        r = server.client.post(f"/v1/models/{name}:predict", json={"instances": [[1, 2, 3, 4]]})
        assert r.status_code == 200
    assert np.isfinite(
        server.client.post("/v1/models/clf:predict", json={"instances": [[1, 2, 3, 4]]}).json()[
            "predictions"
        ][0]["probabilities"]
    ).all()
