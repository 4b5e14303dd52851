"""An S3 server that fails for a while: writes outlast more server errors than botocore's
own retries (5 attempts in about 6 s), the failure seen on a busy SeaweedFS in CI; a client
error is not retried."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mizzen.storage.fsspec_store import S3Store

ERRORS = {
    500: b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code>'
    b"<Message>We encountered an internal error, please try again.</Message></Error>",
    403: b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code>'
    b"<Message>Access Denied</Message></Error>",
}


class _Flaky(http.server.ThreadingHTTPServer):
    failures = 0
    status = 500
    requests = 0
    puts: list[bytes]


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Flaky
    protocol_version = "HTTP/1.1"  # answers botocore's `Expect: 100-continue` itself

    def do_PUT(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.requests += 1
        if self.server.failures > 0:
            self.server.failures -= 1
            self._reply(self.server.status, ERRORS[self.server.status])
            return
        self.server.puts.append(body)
        self._reply(200, b"")

    def _reply(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", '"e"')
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def flaky() -> Iterator[_Flaky]:
    server = _Flaky(("127.0.0.1", 0), _Handler)
    server.puts = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()


def _store(server: _Flaky, **options: object) -> S3Store:
    return S3Store(
        "s3://bucket/proj",
        endpoint_url=f"http://127.0.0.1:{server.server_port}",
        key="k",
        secret="s",
        region="us-east-1",
        **options,
    )


def test_an_upload_survives_five_server_errors_in_a_row(flaky: _Flaky, tmp_path: Path) -> None:
    flaky.failures = 5
    (tmp_path / "n.txt").write_text("3")
    _store(flaky).put_file(str(tmp_path / "n.txt"), "counter/n.txt")
    assert flaky.failures == 0
    assert flaky.puts == [b"3"]


def test_a_client_error_is_not_retried(flaky: _Flaky) -> None:
    flaky.failures, flaky.status = 3, 403
    with pytest.raises(PermissionError):
        _store(flaky).write_bytes("n.txt", b"3")
    assert flaky.requests == 1 and flaky.puts == []
