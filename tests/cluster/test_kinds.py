"""The kinds' contract suite on the real cluster: each kind's example released; a job run as
a pod with `mizzen run --target kubernetes`, recorded like a local run, a service waited for
by the release until ready and then answering its health check at its pod's address —
unless the kind needs an operator the test cluster does not run (its objects are validated
against the operator's CRD in tests/kinds/)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import MIZZEN, Kube

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kinds"))
from test_kinds_contract import JOB_LIKE, KINDS, get, health_url, prepare, project

pytestmark = pytest.mark.cluster


@pytest.fixture(scope="module")
def kinds_image(kube: Kube, tmp_path_factory: pytest.TempPathFactory) -> str:
    """One image for every kind: each kind's example files (their names never clash; a pod
    reads its workload from the run-time contract, not from the image's mizzen.yaml)."""
    from image import build_and_import

    root = tmp_path_factory.mktemp("kinds") / "app"
    for kind in KINDS.values():
        if not kind.operator:
            project(root, kind, "file:///lake")
    return build_and_import(root, "mizzen-test-kinds")


@pytest.mark.parametrize("name", sorted(KINDS))
def test_the_kind_runs_on_the_real_cluster(
    name: str, tmp_path: Path, kube: Kube, kinds_image: str
) -> None:
    kind = KINDS[name]
    if kind.operator:
        pytest.skip(
            f"{kind.label}s need the {kind.operator} operator, which the test cluster does not run"
        )
    spec_file = project(tmp_path / "p", kind, f"file://{tmp_path / 'lake'}")
    ns = kube.namespace("kinds")
    env = {**os.environ, "KUBECONFIG": str(kube.admin)}

    def mizzen(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [MIZZEN, *argv],
            cwd=spec_file.parent,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    if name not in JOB_LIKE:
        prepare(spec_file.parent, kind)  # the pods read the same file:// store
        released = mizzen("release", "-n", ns, "--image", kinds_image, "--wait")
        assert released.returncode == 0, released.stdout + released.stderr
        pods = kube.get("pods", None, ns, selector="mizzen.io/workload=probe")["items"]
        running = [p["status"]["podIP"] for p in pods if p["status"].get("phase") == "Running"]
        assert len(running) == 1, (released.stdout, [p["status"] for p in pods])
        (ip,) = running
        assert get(health_url(kind, ip), timeout=60) == 200
        return
    released = mizzen("release", "-n", ns, "--image", kinds_image, "--no-wait")
    assert released.returncode == 0, released.stderr
    ran = mizzen("run", "probe", "--target", "kubernetes", "-n", ns, "--image", kinds_image)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    runs = json.loads(mizzen("runs", "probe", "-o", "json").stdout)
    assert [(r["status"], r["target"]) for r in runs] == [("succeeded", "kubernetes")]
