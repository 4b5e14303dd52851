"""Overload and large requests: rows per request are bounded (413), a full queue is refused
before the body is even parsed (503), a large request runs in slices so a small one is
answered while it is in progress, and every row of a sliced request comes back in order.
Unknown model names do not create metrics series."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

from conftest import SIG_PY, Registry, Server, expected, start_server, training_data, wait_until


@pytest.fixture(scope="module")
def busy_server(registry: Registry, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`glacial` (1.5 s per call), `slow` (0.3 s per call), `batched` (ONNX); batching of 8,
    a queue of 4, at most 5000 rows per request."""
    from serve_slow_model import SlowModel

    folder = tmp_path_factory.mktemp("busy")
    model = SlowModel(1.5, started=str(folder / "glacial-started"))
    registry.publish("glacial", model, format="python", signature=SIG_PY)
    log = folder / "serve.log"
    args = [
        *("glacial", "slow", "batched", "--allow-python", "--workers", "1"),
        *("--max-queue", "4", "--max-batch-size", "8", "--max-rows", "5000"),
    ]
    srv = start_server(registry, args, log)
    yield srv
    srv.stop()


def _metric(server: Server, pattern: str) -> float:
    found = re.search(pattern + r" (\S+)", server.metrics())
    return float(found.group(1)) if found else 0.0


def test_rows_past_the_limit_are_413(busy_server: Server) -> None:
    rows, _ = training_data()
    big = np.resize(rows, (5001, 4)).round(3)
    r = busy_server.client.post("/v1/models/batched:predict", json={"instances": big.tolist()})
    assert r.status_code == 413, r.text
    assert "5001 rows" in r.json()["error"] and "at most 5000" in r.json()["error"]
    tensor = {"name": "input", "shape": [5001, 4], "datatype": "FP32", "data": big.ravel().tolist()}
    r = busy_server.client.post("/v2/models/batched/infer", json={"inputs": [tensor]})
    assert r.status_code == 413 and "5001 rows" in r.json()["error"]
    r = busy_server.client.post(
        "/v1/models/batched:predict", json={"instances": big[:5000].tolist()}
    )
    assert r.status_code == 200
    assert [p["label"] for p in r.json()["predictions"]] == expected(big[:5000])[0].tolist()
    assert (
        'mizzen_rejected_total{model="batched",reason="too_many_rows"} 2' in busy_server.metrics()
    )


def test_a_full_queue_is_refused_before_the_body_is_read(busy_server: Server) -> None:
    """One call runs (1.5 s), four wait: the next request gets 503 even though its body is
    not JSON at all: the refusal costs nothing."""
    one = {"instances": [[1, 1, 1, 1]]}
    started = busy_server.log.parent / "glacial-started"
    started.unlink(missing_ok=True)
    with ThreadPoolExecutor(5) as pool, httpx.Client(base_url=busy_server.url) as client:
        running = pool.submit(client.post, "/v1/models/glacial:predict", json=one, timeout=60)
        wait_until(started.exists, what="the first call to start")
        waiting = [
            pool.submit(client.post, "/v1/models/glacial:predict", json=one, timeout=60)
            for _ in range(4)
        ]
        wait_until(
            lambda: _metric(busy_server, r'mizzen_queue_depth\{model="glacial"\}') == 4,
            what="four waiting requests",
        )
        r = client.post("/v1/models/glacial:predict", content=b"not json", timeout=60)
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == "1" and "overloaded" in r.json()["error"]
        assert [f.result().status_code for f in [running, *waiting]] == [200] * 5


def test_a_small_request_is_answered_while_a_large_one_runs(busy_server: Server) -> None:
    """3000 rows on a model taking 0.3 s per call run as three slices; a one-row request sent
    once the first slice is done is answered before the large request."""
    done: list[str] = []
    calls = r'mizzen_batch_size_count\{model="slow",version="1"\}'
    before = _metric(busy_server, calls)
    rows = np.ones((3000, 4)).tolist()

    def large() -> None:
        with httpx.Client(base_url=busy_server.url, timeout=60) as client:
            r = client.post("/v1/models/slow:predict", json={"instances": rows})
            assert r.status_code == 200 and r.json()["predictions"] == [4.0] * 3000
            done.append("large")

    worker = threading.Thread(target=large)
    worker.start()
    wait_until(lambda: _metric(busy_server, calls) > before, what="the first slice")
    r = busy_server.client.post("/v1/models/slow:predict", json={"instances": [[1, 2, 3, 4]]})
    assert r.status_code == 200 and r.json()["predictions"] == [10.0]
    done.append("small")
    worker.join()
    assert done == ["small", "large"]
    assert _metric(busy_server, calls) - before == 4  # three slices and the small request


def test_large_requests_past_the_waiting_limit_get_503(busy_server: Server) -> None:
    """Large bodies take turns; with a queue of 4, eight sent at once cannot all wait."""
    rows = (np.ones((2000, 4)) * 1.23456789).tolist()  # 2 slices, about 90 KB

    def post(_: int) -> httpx.Response:
        with httpx.Client(base_url=busy_server.url, timeout=60) as client:
            return client.post("/v1/models/slow:predict", json={"instances": rows})

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(8)))
    codes = sorted(r.status_code for r in answers)
    assert set(codes) == {200, 503} and codes.count(200) >= 5, codes
    refused = next(r for r in answers if r.status_code == 503)
    assert "too many large requests" in refused.json()["error"]
    ok = next(r for r in answers if r.status_code == 200)
    assert ok.json()["predictions"] == [pytest.approx(4.9382716)] * 2000


def test_sliced_requests_answer_every_row_in_order(server: Server) -> None:
    httpclient = pytest.importorskip("tritonclient.http")
    rows = np.random.default_rng(3).normal(size=(3000, 4)).astype(np.float32)
    labels, probs = expected(rows)
    client = httpclient.InferenceServerClient(url=server.hostport)
    tensor = httpclient.InferInput("input", [3000, 4], "FP32")
    tensor.set_data_from_numpy(rows, binary_data=True)
    result = client.infer("clf", [tensor])
    np.testing.assert_array_equal(result.as_numpy("label"), labels)
    np.testing.assert_allclose(result.as_numpy("probabilities"), probs, rtol=1e-4, atol=1e-6)
    client.close()
    small = rows[:2200].astype(np.float64).round(2)  # under the server's 64 KiB body limit as JSON
    r = server.client.post("/v1/models/clf:predict", json={"instances": small.tolist()})
    assert r.status_code == 200
    predictions = r.json()["predictions"]
    assert [p["label"] for p in predictions] == expected(small)[0].tolist()


def test_unknown_model_names_do_not_create_metrics_series(server: Server) -> None:
    before = len(server.metrics())
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for i in range(1000):
            client.post(f"/v1/models/nosuch-{i}:predict", json={"instances": [[1, 2, 3, 4]]})
            client.post(f"/v2/models/nosuch-{i}/infer", json={"inputs": []})
            client.post(f"/v2/models/nosuch-{i}/versions/{i}/infer", content=b"x" * 70_000)
    text = server.metrics()
    assert "nosuch" not in text
    assert len(text) - before < 4096, len(text) - before
    assert 'mizzen_requests_total{model="_unknown",version="",protocol="v1",code="404"}' in text
    assert 'mizzen_rejected_total{model="_unknown",reason="too_large"}' in text
