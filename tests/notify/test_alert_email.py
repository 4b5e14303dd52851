from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import time
from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any

import pytest

from mizzen.notify import dispatch_run_alerts
from mizzen.storage.runs import RunRecord

aiosmtpd = pytest.importorskip("aiosmtpd")
from aiosmtpd.controller import Controller  # noqa: E402
from aiosmtpd.smtp import AuthResult  # noqa: E402


class Inbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content)))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    d = tmp_path_factory.mktemp("tls")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
         "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(d / "key.pem"), "-out", str(d / "cert.pem")],
        check=True, capture_output=True,
    )  # fmt: skip
    return d


@pytest.fixture(scope="module")
def smtp_server(tls_cert: Path) -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(tls_cert / "cert.pem", tls_cert / "key.pem")

    def auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        user, password = data.login.decode(), data.password.decode()
        inbox.logins.append((user, password))
        return AuthResult(success=(user, password) == ("alice", "pw-123"))

    port = _free_port()
    ctl = Controller(
        inbox,
        hostname="127.0.0.1",
        port=port,
        tls_context=ctx,
        require_starttls=True,
        authenticator=auth,
        auth_required=True,
    )
    ctl.start()
    yield inbox, port
    ctl.stop()


@pytest.fixture(scope="module")
def plain_smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = _free_port()
    ctl = Controller(inbox, hostname="127.0.0.1", port=port)
    ctl.start()
    yield inbox, port
    ctl.stop()


def failed_run() -> RunRecord:
    return RunRecord(
        id="20250101-000000-abcd",
        workload="train",
        kind="job",
        status="failed",
        started=time.time() - 5,
        ended=time.time(),
        reason="exit code 1",
    )


SECRETS = {("hooks", "user"): "alice", ("hooks", "password"): "pw-123"}


def test_email_over_starttls_with_login_from_the_secret(
    make_plan, smtp_server, tls_cert, monkeypatch, caplog
):
    inbox, port = smtp_server
    monkeypatch.setenv("SSL_CERT_FILE", str(tls_cert / "cert.pem"))
    plan = make_plan(
        f"  - on: [failed]\n    email: {{to: [ops@example.com], from: ml@example.com, smtp: '127.0.0.1:{port}', secret: hooks}}\n"
    )
    dispatch_run_alerts(plan, failed_run(), [], lambda n, k: SECRETS.get((n, k)))
    (rcpt, mail), *_ = inbox.messages
    assert rcpt == ["ops@example.com"] and mail["From"] == "ml@example.com"
    assert mail["Subject"] == "[demo] failed: train"
    assert "exit code 1" in mail.get_payload()
    assert inbox.logins[-1] == ("alice", "pw-123")
    assert "pw-123" not in caplog.text


def test_plain_smtp_without_starttls(make_plan, plain_smtp):
    inbox, port = plain_smtp
    plan = make_plan(
        f"  - on: [failed]\n    email: {{to: [a@example.com, b@example.com], smtp: '127.0.0.1:{port}', starttls: false}}\n"
    )
    dispatch_run_alerts(plan, failed_run(), [], lambda n, k: None)
    rcpt, mail = inbox.messages[-1]
    assert rcpt == ["a@example.com", "b@example.com"] and "exit code 1" in mail.get_payload()


def test_starttls_refused_by_the_server_is_logged_not_retried(make_plan, plain_smtp, caplog):
    inbox, port = plain_smtp
    before = len(inbox.messages)
    plan = make_plan(
        f"  - on: [failed]\n    email: {{to: [a@example.com], smtp: '127.0.0.1:{port}'}}\n"
    )
    dispatch_run_alerts(plan, failed_run(), [], lambda n, k: None)
    assert len(inbox.messages) == before
    assert "attempt 1/3" in caplog.text and "STARTTLS" in caplog.text
