"""What `mizzen status` and the waits say about real failures, each in one sentence, within
seconds: a pod killed by the OOM killer, a crash loop, a Secret that lost a key, an image
that cannot be pulled (and `release --wait` stopping with that sentence)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import Kube, Project

pytestmark = pytest.mark.cluster

SPEC = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: why
image: {repository: localhost/mizzen-test-drives}
secrets:
  db: {keys: [password], existingSecret: db-creds}
jobs:
  hog:
    command: [python, -c, "x = bytearray(400 * 2**20); print(len(x))"]
    resources: {cpu: 100m, memory: 64Mi}
services:
  crasher:
    command: [python, -c, "import sys; print('cannot reach the warehouse'); sys.exit(3)"]
    resources: {cpu: 50m, memory: 64Mi}
  reader:
    command: [python, -m, http.server, "8000"]
    secrets: [db]
    resources: {cpu: 50m, memory: 64Mi}
"""


def status(p: Project, ns: str) -> dict[str, Any]:
    out = p.mizzen("status", "-n", ns, "-o", "json", check=True)
    return {r["workload"]: r for r in json.loads(out.stdout)}


def eventually(p: Project, ns: str, workload: str, text: str, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    reason = ""
    while time.monotonic() < deadline:
        reason = status(p, ns)[workload]["reason"]
        if text in reason:
            return str(reason)
        time.sleep(2)
    raise AssertionError(f"{workload}: {text!r} never appeared; last reason: {reason!r}")


@pytest.fixture
def released(tmp_path: Path, kube: Kube, image: str) -> tuple[Project, str]:
    root = tmp_path / "why"
    root.mkdir()
    (root / "mizzen.yaml").write_text(SPEC)
    p = Project(root, kube, image)
    ns = kube.namespace("why")
    kube.kubectl("create", "secret", "generic", "db-creds", "--from-literal=password=pw", "-n", ns)
    p.mizzen("release", "-n", ns, "--image", image, "--no-wait", check=True)
    return p, ns


def test_reasons_of_real_failures(released: tuple[Project, str], kube: Kube) -> None:
    p, ns = released
    # OOM: the run fails, and says why as status does
    hog = p.mizzen("run", "hog", "--target", "kubernetes", "-n", ns, "--image", p.image)
    assert hog.returncode == 1, hog.stdout + hog.stderr
    # `mizzen exec` in the pod says it as status does (not "was killed by SIGKILL")
    assert "ran out of memory (OOMKilled) at its limit of 64Mi" in hog.stdout, hog.stdout
    assert "ran out of memory (OOMKilled) at its limit of 64Mi" in status(p, ns)["hog"]["reason"]
    # a crash loop, with its last log line
    crash = eventually(p, ns, "crasher", "keeps crashing")
    assert "exit code 3" in crash and "cannot reach the warehouse" in crash
    # a Secret that lost its key: the pod cannot start, and status names the key
    kube.kubectl(
        "patch",
        "secret",
        "db-creds",
        "-n",
        ns,
        "--type=json",
        "-p",
        '[{"op": "remove", "path": "/data/password"}]',
    )
    kube.kubectl("delete", "pod", "-n", ns, "-l", "mizzen.io/workload=reader", "--wait=false")
    missing = eventually(p, ns, "reader", "has no key")
    assert missing == "the Secret db-creds has no key password"


def test_release_wait_stops_with_the_reason(released: tuple[Project, str]) -> None:
    p, ns = released
    out = p.mizzen(
        "release", "-n", ns, "--image", "localhost/no-such-image:1", "--wait", "--timeout", "600"
    )
    assert out.returncode == 1, out.stdout + out.stderr
    # it stopped on each reason, not at the timeout ("not available after 10m00s")
    assert "gave up waiting: cannot pull the image localhost/no-such-image:1: " in out.stdout
    assert "not available after" not in out.stdout
