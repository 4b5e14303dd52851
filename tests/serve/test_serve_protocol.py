"""Open Inference Protocol v2 with a real third-party client, plain JSON with httpx, and the
400/404/413 answers a user gets for bad requests."""

from __future__ import annotations

import numpy as np
import pytest

from conftest import Server, expected, training_data, wait_until


def test_tritonclient_infers_with_binary_and_json_tensors(server: Server) -> None:
    httpclient = pytest.importorskip("tritonclient.http")
    client = httpclient.InferenceServerClient(url=server.hostport)
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("clf")
    meta = client.get_model_metadata("clf")
    assert meta["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert {o["name"] for o in meta["outputs"]} == {"label", "probabilities"}

    rows, _ = training_data(seed=5)
    rows = rows[:3]
    labels, probs = expected(rows)
    for binary in (True, False):
        tensor = httpclient.InferInput("input", [3, 4], "FP32")
        tensor.set_data_from_numpy(rows, binary_data=binary)
        outputs = [
            httpclient.InferRequestedOutput("label", binary_data=binary),
            httpclient.InferRequestedOutput("probabilities", binary_data=not binary),
        ]
        result = client.infer("clf", [tensor], outputs=outputs)
        np.testing.assert_array_equal(result.as_numpy("label"), labels)
        np.testing.assert_allclose(result.as_numpy("probabilities"), probs, rtol=1e-4, atol=1e-6)
        assert result.get_response()["model_version"] == "1"
    # no outputs named: the client asks for all of them in binary
    tensor = httpclient.InferInput("input", [3, 4], "FP32")
    tensor.set_data_from_numpy(rows)
    result = client.infer("clf", [tensor], model_version="1")
    np.testing.assert_array_equal(result.as_numpy("label"), labels)
    client.close()


def test_plain_json_predict_rows_and_single_row(server: Server) -> None:
    rows, _ = training_data(seed=6)
    labels, probs = expected(rows[:2])
    r = server.client.post("/v1/models/clf:predict", json={"instances": rows[:2].tolist()})
    assert r.status_code == 200, r.text
    assert r.headers["x-mizzen-model-version"] == "1"
    preds = r.json()["predictions"]
    assert [p["label"] for p in preds] == labels.tolist()
    np.testing.assert_allclose([p["probabilities"] for p in preds], probs, rtol=1e-4, atol=1e-6)

    one = server.client.post("/v1/models/clf:predict", json={"instances": rows[0].tolist()})
    assert one.status_code == 200 and one.json()["predictions"][0]["label"] == labels[0]
    cols = server.client.post(
        "/v1/models/clf:predict", json={"inputs": {"input": rows[:2].tolist()}}
    )
    assert [p["label"] for p in cols.json()["predictions"]] == labels.tolist()
    records = server.client.post(
        "/v1/models/clf:predict", json={"instances": [{"input": rows[0].tolist()}]}
    )
    assert records.json()["predictions"][0]["label"] == labels[0]


def test_predict_without_model_name_needs_a_single_model(server: Server) -> None:
    r = server.client.post("/predict", json={"instances": [[1, 2, 3, 4]]})
    assert r.status_code == 400
    assert "several models are served" in r.json()["error"]


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        (
            "/v2/models/clf/infer",
            {
                "inputs": [
                    {"name": "input", "shape": [1, 4], "datatype": "INT64", "data": [1, 2, 3, 4]}
                ]
            },
            "datatype INT64 does not match the model's FP32",
        ),
        (
            "/v2/models/clf/infer",
            {"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]},
            "shape [1, 3] does not match the model's [any, 4]",
        ),
        (
            "/v2/models/clf/infer",
            {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}]},
            "has no input 'x'; its inputs are 'input'",
        ),
        (
            "/v2/models/clf/infer",
            {
                "inputs": [
                    {"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [1, 2, 3, 4]}
                ]
            },
            "4 values do not fill shape [2, 4]",
        ),
        ("/v2/models/clf/infer", {"inputs": []}, 'expected "inputs"'),
        (
            "/v1/models/clf:predict",
            {"instances": [["a", "b", "c", "d"]]},
            "expected FP32 numbers, got strings",
        ),
        (
            "/v1/models/clf:predict",
            {"instances": [[1, 2], [3, 4, 5, 6]]},
            "not a rectangular array",
        ),
        ("/v1/models/clf:predict", {"rows": [[1, 2, 3, 4]]}, 'expected {"instances"'),
        (
            "/v1/models/clf:predict",
            {"instances": [{"a": 1}]},
            "records must be keyed by the model's input names",
        ),
    ],
)
def test_bad_inputs_get_400_saying_what_is_wrong(
    server: Server, path: str, body: dict, message: str
) -> None:
    r = server.client.post(path, json=body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


def test_non_json_body_is_400(server: Server) -> None:
    r = server.client.post(
        "/v2/models/clf/infer", content=b"not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 400
    assert "not valid JSON" in r.json()["error"]


def test_oversize_body_is_413(server: Server) -> None:
    big = {"instances": [[1.0, 2.0, 3.0, 4.0]] * 5000}  # > 64 KiB
    r = server.client.post("/v1/models/clf:predict", json=big)
    assert r.status_code == 413
    assert "larger than the limit of 65536 bytes" in r.json()["error"]


def test_unknown_model_and_version_are_404(server: Server) -> None:
    r = server.client.post("/v2/models/nope/infer", json={"inputs": []})
    assert r.status_code == 404 and "'nope' is not served here" in r.json()["error"]
    r = server.client.post("/v2/models/clf/versions/9/infer", json={"inputs": []})
    assert r.status_code == 404 and "version '9' is not served" in r.json()["error"]
    assert server.client.get("/v2/models/clf/versions/9").status_code == 404


def test_server_metadata_health_and_metrics(server: Server) -> None:
    assert server.client.get("/v2").json()["name"] == "mizzen"
    assert server.client.get("/v2/health/live").status_code == 200
    assert server.client.get("/v2/models/clf/versions/1/ready").status_code == 200
    server.client.post("/v1/models/clf:predict", json={"instances": [[1, 2, 3, 4]]})
    text = server.metrics()
    assert 'mizzen_requests_total{model="clf",version="1",protocol="v1",code="200"}' in text
    assert 'mizzen_request_duration_seconds_bucket{model="clf",version="1",le="+Inf"}' in text
    assert 'mizzen_batch_size_count{model="clf",version="1"}' in text
    assert 'mizzen_model_version{model="clf",ref="latest"} 1' in text


def test_access_log_lines_are_json(server: Server) -> None:
    import json

    server.client.post("/v1/models/clf:predict", json={"instances": [[1, 2, 3, 4]]})

    def logged() -> list[dict]:
        lines = [
            json.loads(line) for line in server.log.read_text().splitlines() if line.startswith("{")
        ]
        return [
            x for x in lines if x.get("path") == "/v1/models/clf:predict" and x.get("status") == 200
        ]

    entry = wait_until(logged, what="an access log line")[0]
    assert entry["model"] == "clf" and entry["version"] == "1" and entry["ms"] >= 0
