"""The contract every workload kind passes: its example validates as that kind, compiles for
both targets, renders objects the Kubernetes schemas (and the operators' CRDs) accept, also
in its one-off form, and runs on this machine (a job or a pipeline as a recorded run, a
service under `mizzen up` until it answers its health check). The same examples run on the
real cluster in tests/cluster/test_kinds.py."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml

from mizzen import spec as spec_mod
from mizzen.kinds import workload_kinds
from mizzen.kinds.base import WorkloadKind
from mizzen.plan import compile_plan
from mizzen.targets.kubernetes.render import render
from mizzen.targets.kubernetes.target import one_off

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kubernetes"))
from k8s_schemas import validate

MIZZEN = str(Path(sys.executable).parent / "mizzen")
KINDS = {k.name: k for k in workload_kinds()}
JOB_LIKE = {name for name, k in KINDS.items() if k.section in ("jobs", "pipelines")}
IMAGE = "registry.example.com/team/kinds@sha256:" + "0" * 64


def project(root: Path, kind: WorkloadKind, lake: str) -> Path:
    """A project whose workload `probe` is the kind's example (beside the jobs it needs)."""
    root.mkdir(parents=True, exist_ok=True)
    probe = dict(kind.example)
    if kind.section == "jobs":
        probe["resources"] = {"cpu": "250m", "memory": "2Gi"}
    jobs = {name: {**job, "resources": {"cpu": "250m"}} for name, job in kind.example_jobs.items()}
    sections: dict[str, Any] = {"jobs": jobs} if jobs else {}
    sections.setdefault(kind.section, {})["probe"] = probe
    spec = {
        "apiVersion": "mizzen.io/v1alpha1",
        "kind": "Project",
        "name": "kinds",
        "image": {"repository": "localhost/mizzen-test-kinds"},
        "stores": {"lake": lake},
        "store": "lake",
        "volumes": {"out": {"blob": "lake/out"}},
        **sections,
    }
    (root / "mizzen.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    for name, text in kind.example_files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root / "mizzen.yaml"


def needs(kind: WorkloadKind) -> None:
    """Skip (locally) or fail (CI) when this machine lacks what the kind runs with."""
    import importlib.util

    missing = {
        "spark": "pyspark",
        "notebook": "papermill",
        "sql": "duckdb",
        "model-service": "onnxruntime",
    }.get(kind.name)
    if missing and importlib.util.find_spec(missing) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing} is required in CI")
        pytest.skip(f"{missing} is not installed")
    if kind.name == "spark" and shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java runtime")


def health_url(kind: WorkloadKind, host: str = "127.0.0.1") -> str:
    """Where the example service answers once it is ready."""
    port = kind.example.get("port", 8080)
    path = (kind.example.get("health") or {}).get("path", "/v2/health/ready")
    return f"http://{host}:{port}{path}"


def get(url: str, timeout: float) -> int:
    """The status of GET `url`, retried until it answers or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return int(answer.status)
        except OSError as exc:
            if time.monotonic() > deadline:
                raise AssertionError(f"{url} did not answer in {timeout:.0f} s: {exc}") from None
            time.sleep(0.3)


def mizzen(root: Path, *argv: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MIZZEN, *argv],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **env},
    )


def prepare(root: Path, kind: WorkloadKind) -> None:
    """What must exist before the example runs: a model service's model is published."""
    for job in kind.example_jobs if kind.section == "services" else ():
        done = mizzen(root, "run", job)
        assert done.returncode == 0, done.stdout + done.stderr


@contextmanager
def up(root: Path, service: str) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        [MIZZEN, "up", service],
        cwd=root,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


@pytest.mark.parametrize("name", sorted(KINDS))
def test_the_example_validates_as_its_kind(name: str, tmp_path: Path) -> None:
    kind = KINDS[name]
    loaded = spec_mod.load(project(tmp_path, kind, "lake"))
    plan = compile_plan(loaded, "local")
    assert plan.workload("probe").kind == name


@pytest.mark.parametrize("name", sorted(KINDS))
def test_it_renders_objects_the_cluster_accepts(name: str, tmp_path: Path) -> None:
    kind = KINDS[name]
    loaded = spec_mod.load(project(tmp_path, kind, "s3://lake/kinds"))
    plan = compile_plan(loaded, "kubernetes", image=IMAGE, environ={})
    objects = render(plan)
    mine = [
        o for o in objects if o["metadata"].get("labels", {}).get("mizzen.io/workload") == "probe"
    ]
    assert mine, "the kind rendered nothing for its workload"
    problems = [p for o in objects for p in validate(o)]
    if name in JOB_LIKE:
        problems += validate(one_off(plan, "probe", "r1"))
    assert problems == []
    assert any(c[1] == mine[0]["kind"] for c in kind.controllers)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_it_runs_on_this_machine(name: str, tmp_path: Path) -> None:
    kind = KINDS[name]
    needs(kind)
    root = project(tmp_path / "p", kind, "lake").parent
    if name not in JOB_LIKE:
        prepare(root, kind)
        url = health_url(kind)
        if not _port_free(int(url.split(":")[2].split("/")[0])):
            pytest.skip(f"{url} is taken on this machine")
        with up(root, "probe") as proc:
            assert get(url, timeout=120) == 200, proc.stdout
        return
    out = mizzen(root, "run", "probe")
    assert out.returncode == 0, out.stdout + out.stderr
    runs = json.loads(mizzen(root, "runs", "-o", "json").stdout)
    recorded = "pipeline" if kind.section == "pipelines" else "job"
    assert [(r["workload"], r["kind"], r["status"]) for r in runs] == [
        ("probe", recorded, "succeeded")
    ]
    steps = [(s["name"], s["status"]) for s in runs[0].get("steps") or []]
    ran = [*kind.example_jobs] if kind.section == "pipelines" else ["probe"]
    assert steps == [(step, "succeeded") for step in ran]
