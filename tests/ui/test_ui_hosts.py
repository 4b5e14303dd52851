"""DNS rebinding: `mizzen ui` answers only requests addressed to the names it listens on."""

from __future__ import annotations

import http.client
import os
import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit

import pytest

from mizzen.storage.runs import RunStore
from mizzen.ui.asgi import AllowedHosts


def fetch(url: str, path: str, host: str | None) -> tuple[int, str]:
    """GET `path` from the server at `url` with this `Host` header (None: no Host at all)."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        if host is None:
            conn.putrequest("GET", path, skip_host=True)
            conn.endheaders()
        else:
            conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, resp.read().decode()
    finally:
        conn.close()


def api_path(project: dict[str, Any]) -> str:
    rec = RunStore(project["store"]).list("train", limit=1)[0]
    return f"/api/runs/train/{rec.id}"


def test_a_foreign_host_gets_403_and_the_bound_names_get_the_run(server, project):
    port = urlsplit(server).port
    path = api_path(project)
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"[::1]:{port}", f"LOCALHOST.:{port}"):
        status, body = fetch(server, path, host)
        assert status == 200 and '"params"' in body, host
    for host in (
        f"evil.example:{port}",
        "evil.example",
        f"127.0.0.1:{port + 1}",
        f"localhost.evil.example:{port}",
        f"10.0.0.7:{port}",
        f"evil:{port}x",
    ):
        status, body = fetch(server, path, host)
        assert status == 403, host
        assert '"params"' not in body and "DNS rebinding" in body and "--allow-host" in body
    status, body = fetch(server, "/runs", f"evil.example:{port}")
    assert status == 403 and body.startswith("403 Forbidden: this dashboard answers to 127.0.0.1:")
    assert "--allow-host evil.example`" in body
    assert fetch(server, path, None)[0] == 200  # no Host at all: not a browser


def test_allow_host_and_the_environment_add_names(project, ui_process):
    env = {"MIZZEN_UI_ALLOW_HOSTS": "team.example, other.example:9999"}
    with ui_process(project["root"], "--allow-host", "dash.example", env=env) as url:
        port = urlsplit(url).port
        path = api_path(project)
        assert fetch(url, path, f"dash.example:{port}")[0] == 200
        assert fetch(url, path, "dash.example")[0] == 200  # behind a proxy on port 80
        assert fetch(url, path, f"team.example:{port}")[0] == 200
        assert fetch(url, path, "other.example:9999")[0] == 200
        assert fetch(url, path, f"other.example:{port}")[0] == 403  # only the port given
        assert fetch(url, path, f"evil.example:{port}")[0] == 403


def test_a_url_given_as_allow_host_is_refused(project):
    def ui(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mizzen.cli.main", "ui", *args],
            cwd=project["root"],
            env={**os.environ, **env},
            capture_output=True,
            text=True,
            timeout=60,
        )

    res = ui("--allow-host", "http://dash.example/")
    assert res.returncode == 2
    assert "--allow-host 'http://dash.example/' is not a host name" in res.stderr
    res = ui(MIZZEN_UI_ALLOW_HOSTS="a.example:x")
    assert res.returncode == 2 and "MIZZEN_UI_ALLOW_HOSTS 'a.example:x'" in res.stderr


@pytest.mark.parametrize(
    ("bind", "host", "ok"),
    [
        ("127.0.0.1", "localhost:8765", True),
        ("127.0.0.1", "192.168.1.5:8765", False),
        ("192.168.1.5", "192.168.1.5:8765", True),
        ("192.168.1.5", "10.0.0.1:8765", False),
        ("dash.lan", "dash.lan:8765", True),
        ("0.0.0.0", "10.0.0.1:8765", True),  # every interface: a browser sent an IP it was given
        ("0.0.0.0", "10.0.0.1:80", False),
        ("0.0.0.0", "evil.example:8765", False),
        ("::", "[fe80::1]:8765", True),
    ],
)
def test_the_bind_address_is_allowed(bind, host, ok):
    assert AllowedHosts.for_bind(bind, 8765).allows(host) is ok


def test_a_star_turns_the_check_off():
    assert AllowedHosts.for_bind("127.0.0.1", 8765, ["*"]).allows("evil.example")
