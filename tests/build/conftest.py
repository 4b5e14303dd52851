"""Real builders and a real registry for the build tests.

One Debian `docker-registry` per session on a free 127.0.0.1 port (stopped by pid), and a
containers.conf / storage.conf pair under a temp dir so buildah and podman work on this kind
of machine (runc, host-sized ulimits) without touching the host's image store.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.build.build_helpers import GIT_ENV, need

CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=10000:10000", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def containers_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """CONTAINERS_CONF / CONTAINERS_STORAGE_CONF for the whole session (set in os.environ so
    the builders, which pass the environment through, use them)."""
    root = tmp_path_factory.mktemp("containers")
    (root / "containers.conf").write_text(CONTAINERS_CONF)
    (root / "auth.json").write_text('{"auths": {}}')
    (root / "storage.conf").write_text(
        f'[storage]\ndriver = "overlay"\ngraphroot = "{root}/graph"\nrunroot = "{root}/run"\n'
    )
    env = {
        "CONTAINERS_CONF": str(root / "containers.conf"),
        "CONTAINERS_STORAGE_CONF": str(root / "storage.conf"),
        "REGISTRY_AUTH_FILE": str(root / "auth.json"),
        **GIT_ENV,
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    unmount_under(root)


def unmount_under(root: Path) -> None:
    """Storage mounts a stopped engine may leave behind (so the temp dir can be removed)."""
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for point in sorted((m for m in mounts if m.startswith(str(root))), reverse=True):
        subprocess.run(["umount", "-l", point], check=False, capture_output=True)


@pytest.fixture(scope="session")
def docker_host(
    containers_env: dict[str, str], registry: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A Docker-compatible engine for the real docker CLI: `podman system service` on a unix
    socket, which (like a dockerd with insecure-registries) may push to the plain-HTTP registry."""
    need("docker")
    podman = need("podman")
    root = tmp_path_factory.mktemp("engine")
    (root / "registries.conf").write_text(
        f'[[registry]]\nlocation = "{registry}"\ninsecure = true\n'
    )
    sock = root / "podman.sock"
    log = (root / "service.log").open("wb")
    env = {**os.environ, "CONTAINERS_REGISTRIES_CONF": str(root / "registries.conf")}
    proc = subprocess.Popen(
        [podman, "system", "service", "--time=0", f"unix://{sock}"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(100):
            if sock.exists():
                break
            if proc.poll() is not None:
                pytest.fail(f"podman system service exited: {(root / 'service.log').read_text()}")
            time.sleep(0.1)
        yield f"unix://{sock}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """host:port of a plain-HTTP registry on 127.0.0.1."""
    binary = need("/usr/bin/docker-registry")
    root = tmp_path_factory.mktemp("registry")
    port = free_port()
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog: {level: error}\n"
        f"storage:\n  filesystem:\n    rootdirectory: {root}/data\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    log = (root / "registry.log").open("wb")
    # distribution reads REGISTRY_* variables as config overrides (REGISTRY_AUTH_FILE among them)
    env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}
    proc = subprocess.Popen(
        [binary, "serve", str(config)], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    host = f"127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://{host}/v2/", timeout=1):
                    break
            except OSError:
                if proc.poll() is not None:
                    pytest.fail(f"docker-registry exited: {(root / 'registry.log').read_text()}")
                time.sleep(0.1)
        yield host
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
