"""How the real servers of the test bed are started: shared by the test fixtures and bench/."""

from __future__ import annotations

import shutil
import socket
import sys
from pathlib import Path

# Debian's chromium, headless, with nothing reaching for the network (TESTBED.md).
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

WEED_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "admin.port",
    "admin.port.grpc",
)


def free_ports(count: int) -> list[int]:
    """Distinct free loopback ports (held open together so none repeats)."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def weed_binary() -> str:
    return shutil.which("weed") or str(Path(sys.executable).parent / "weed")


def weed_argv(data: Path) -> tuple[list[str], int]:
    """`weed mini` on 127.0.0.1 with every port chosen (it opens ~10): (argv, S3 port).
    The access keys come from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY in its environment."""
    ports = dict(zip(WEED_PORTS, free_ports(len(WEED_PORTS)), strict=True))
    argv = [
        weed_binary(),
        "mini",
        f"-dir={data}",
        "-ip=127.0.0.1",
        "-ip.bind=127.0.0.1",
        "-admin.ui=false",
        "-webdav=false",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-master.telemetry=false",
        "-volume.preStopSeconds=0",
        *(f"-{name}={port}" for name, port in ports.items()),
    ]
    return argv, ports["s3.port"]
