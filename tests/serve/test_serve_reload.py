"""Hot reload from the registry: a new `latest` is picked up while serving under load without a
failed request; a broken version is reported and the old one keeps serving."""

from __future__ import annotations

import threading
from collections import Counter
from pathlib import Path

import httpx

from conftest import Registry, Server, classifier, onnx_bytes, wait_until


def test_new_latest_is_swapped_in_under_load_without_failures(
    server: Server, registry: Registry
) -> None:
    seen: Counter[str] = Counter()
    failures: list[str] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            while not stop.is_set():
                try:
                    r = client.post(
                        "/v1/models/reload:predict", json={"instances": [[0.5, 1, -1, 2]]}
                    )
                except httpx.HTTPError as exc:
                    failures.append(repr(exc))
                    continue
                if r.status_code != 200:
                    failures.append(f"{r.status_code} {r.text}")
                else:
                    seen[r.headers["x-mizzen-model-version"]] += 1

    threads = [threading.Thread(target=load) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        wait_until(lambda: seen["1"] > 20, what="traffic on version 1")
        assert registry.publish("reload", classifier(seed=3)) == 2
        wait_until(lambda: seen["2"] > 20, what="traffic on version 2")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert failures == []
    assert (
        'mizzen_model_reloads_total{model="reload",ref="latest",result="ok"} 2' in server.metrics()
    )
    meta = server.client.get("/v2/models/reload").json()
    assert meta["versions"] == ["2"]


def test_broken_versions_are_reported_and_the_old_one_keeps_serving(
    server: Server, registry: Registry, tmp_path: Path
) -> None:
    garbage = tmp_path / "garbage"
    garbage.mkdir()
    (garbage / "model.onnx").write_bytes(b"this is not an onnx model")
    assert registry.publish_files("broken", garbage, {"format": "onnx"}) == 2
    wait_until(
        lambda: 'mizzen_model_load_errors_total{model="broken",version="2"} 1' in server.metrics(),
        what="load error for v2",
    )

    # v3 loads, but fails on its own example input (3 features for a 4-feature model)
    good = tmp_path / "good"
    good.mkdir()
    (good / "model.onnx").write_bytes(onnx_bytes(classifier()))
    assert (
        registry.publish_files(
            "broken", good, {"format": "onnx", "example": {"input": [[1.0, 2.0, 3.0]]}}
        )
        == 3
    )
    wait_until(
        lambda: 'mizzen_model_load_errors_total{model="broken",version="3"} 1' in server.metrics(),
        what="load error for v3",
    )

    r = server.client.post("/v1/models/broken:predict", json={"instances": [[1, 2, 3, 4]]})
    assert r.status_code == 200
    assert r.headers["x-mizzen-model-version"] == "1"
    assert server.client.get("/v2/health/ready").status_code == 200
    assert 'mizzen_model_version{model="broken",ref="latest"} 1' in server.metrics()
    wait_until(
        lambda: "failed on its example input" in server.log.read_text(),
        what="the failure in the log",
    )
    assert '"event":"model_load_failed"' in server.log.read_text()
