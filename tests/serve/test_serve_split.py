"""Traffic split by weight between versions, explicit pins, and metrics across worker processes."""

from __future__ import annotations

from collections import Counter

from conftest import Server


def test_traffic_is_split_by_weight(split_server: Server) -> None:
    n = 600
    seen: Counter[str] = Counter()
    for _ in range(n):
        r = split_server.client.post("/predict", json={"instances": [[1, 2, 3, 4]]})
        assert r.status_code == 200, r.text
        seen[r.headers["x-mizzen-model-version"]] += 1
    assert set(seen) == {"1", "2"}
    assert abs(seen["1"] / n - 0.70) < 0.08, seen


def test_a_request_can_pin_a_version(split_server: Server) -> None:
    body = {
        "inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]
    }
    for _ in range(20):
        r = split_server.client.post("/v2/models/split/versions/2/infer", json=body)
        assert r.status_code == 200 and r.json()["model_version"] == "2"
        r = split_server.client.post(
            "/v2/models/split/infer", json=body, headers={"x-mizzen-model-version": "1"}
        )
        assert r.headers["x-mizzen-model-version"] == "1"


def test_model_metadata_lists_the_routes(split_server: Server) -> None:
    meta = split_server.client.get("/v2/models/split").json()
    assert meta["versions"] == ["1", "2"]
    assert meta["parameters"]["routes"] == {
        "1": {"weight": 70, "version": 1},
        "2": {"weight": 30, "version": 2},
    }


def test_metrics_add_up_across_workers(split_server: Server) -> None:
    import re
    import time

    for _ in range(50):
        split_server.client.post("/predict", json={"instances": [[1, 2, 3, 4]]})
    time.sleep(1.2)  # workers write their snapshots every 0.5 s
    text = split_server.metrics()
    counts = re.findall(
        r'mizzen_requests_total\{model="split",version="\d",protocol="v1",code="200"\} (\d+)', text
    )
    assert sum(int(c) for c in counts) >= 650
