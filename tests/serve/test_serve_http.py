"""The built-in HTTP/1.1 layer as a raw client meets it: pipelined requests answered in order,
chunked bodies, a 400 for what does not parse, a 413 that closes the connection; and the
`--http uvicorn` fallback serving the same routes."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
from test_serve_protocol import expected

from conftest import Registry, Server, start_server, training_data

BODY = b'{"instances": [[0.5, -1.25, 2.0, 0.75]]}'


def _exchange(
    server: Server, data: bytes, *, until: int
) -> list[tuple[int, dict[str, str], bytes]]:
    """Send raw bytes, read `until` responses (or up to EOF); (status, headers, body) each."""
    host, port = server.hostport.split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(data)
        buf = b""
        answers: list[tuple[int, dict[str, str], bytes]] = []
        while len(answers) < until:
            while b"\r\n\r\n" not in buf:
                chunk = sock.recv(65536)
                if not chunk:
                    return answers
                buf += chunk
            head, buf = buf.split(b"\r\n\r\n", 1)
            lines = head.decode().split("\r\n")
            headers = dict(line.lower().split(": ", 1) for line in lines[1:])
            size = int(headers["content-length"])
            while len(buf) < size:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                buf += chunk
            answers.append((int(lines[0].split()[1]), headers, buf[:size]))
            buf = buf[size:]
        return answers


def _post(path: str, body: bytes, extra: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{extra}\r\n".encode()
        + body
    )


def test_pipelined_requests_are_answered_in_order(server: Server) -> None:
    bad = b'{"instances": [["a", "b", "c", "d"]]}'
    data = (
        _post("/v1/models/clf:predict", BODY)
        + _post("/v1/models/clf:predict", bad)
        + b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
        + _post("/v1/models/reload:predict", BODY)
    )
    answers = _exchange(server, data, until=4)
    assert [a[0] for a in answers] == [200, 400, 200, 200]
    assert json.loads(answers[0][2])["model_name"] == "clf"
    assert "strings" in json.loads(answers[1][2])["error"]
    assert json.loads(answers[2][2]) == {"live": True}
    assert json.loads(answers[3][2])["model_name"] == "reload"


def test_chunked_request_bodies_are_read(server: Server) -> None:
    half = len(BODY) // 2
    chunked = b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n" % (
        half,
        BODY[:half],
        len(BODY) - half,
        BODY[half:],
    )
    data = (
        b"POST /v1/models/clf:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + chunked
    )
    [(status, headers, body)] = _exchange(server, data, until=1)
    assert status == 200 and headers["x-mizzen-model-version"] == "1"
    assert len(json.loads(body)["predictions"]) == 1


def test_unparsable_requests_get_400_and_the_connection_closes(server: Server) -> None:
    answers = _exchange(server, b"NOT HTTP AT ALL\r\n\r\n", until=2)
    assert len(answers) == 1
    status, headers, body = answers[0]
    assert status == 400 and headers["connection"] == "close"
    assert "malformed HTTP request" in json.loads(body)["error"]


def test_oversize_chunked_body_is_413_and_closes(server: Server) -> None:
    big = b"x" * 70_000  # the session server's limit is 64 KiB
    data = (
        b"POST /v1/models/clf:predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        + b"%x\r\n%s\r\n0\r\n\r\n" % (len(big), big)
        + b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
    )
    answers = _exchange(server, data, until=2)
    assert [a[0] for a in answers] == [413]
    assert answers[0][1]["connection"] == "close"


def test_uvicorn_fallback_serves_the_same_routes(registry: Registry, tmp_path: Path) -> None:
    srv = start_server(registry, ["clf", "--workers", "1", "--http", "uvicorn"], tmp_path / "s.log")
    try:
        r = srv.client.post("/predict", content=BODY)
        assert r.status_code == 200 and r.headers["x-mizzen-model-version"] == "1"
        r = srv.client.post("/predict", json={"instances": [["a", 1, 2, 3]]})
        assert r.status_code == 400
        assert 'protocol="v1",code="200"' in srv.metrics()
    finally:
        assert srv.stop() in (0, -15)
    assert '"http":"uvicorn"' in srv.log.read_text()


def test_pipelined_answers_wait_for_a_slow_one_before_them(slow_server: Server) -> None:
    data = (
        _post("/v1/models/slow:predict", BODY)
        + b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n"
        + _post("/v1/models/batched:predict", BODY)
    )
    answers = _exchange(slow_server, data, until=3)
    assert [a[0] for a in answers] == [200, 200, 200]
    assert json.loads(answers[0][2])["model_name"] == "slow"
    assert json.loads(answers[1][2]) == {"live": True}
    assert json.loads(answers[2][2])["model_name"] == "batched"


def test_concurrent_requests_each_get_their_own_rows(server: Server) -> None:
    """Requests arriving together may share one model call; each still gets its own answer."""
    from concurrent.futures import ThreadPoolExecutor

    import httpx

    rows, _ = training_data(seed=9)
    labels, probs = expected(rows)

    def ask(i: int) -> tuple[int, list]:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            out = []
            for k in range(i, len(rows), 8):
                n = 1 + k % 3
                r = client.post(
                    "/v1/models/clf:predict", json={"instances": rows[k : k + n].tolist()}
                )
                assert r.status_code == 200, r.text
                out.append((k, n, r.json()["predictions"]))
            return i, out

    with ThreadPoolExecutor(8) as pool:
        for _, answers in pool.map(ask, range(8)):
            for k, n, preds in answers:
                assert [p["label"] for p in preds] == labels[k : k + n].tolist()
                np.testing.assert_allclose(
                    [p["probabilities"] for p in preds], probs[k : k + n], rtol=1e-4, atol=1e-6
                )
