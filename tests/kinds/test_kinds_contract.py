"""The contract every job kind passes: its example validates as that kind, compiles for both
targets, renders objects the Kubernetes schemas (and the operators' CRDs) accept, also in
its one-off form, and runs on this machine as a recorded run. The same examples run as pods
on the real cluster in tests/cluster/test_kinds.py."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mizzen import spec as spec_mod
from mizzen.kinds import job_kinds
from mizzen.kinds.base import JobKind
from mizzen.plan import compile_plan
from mizzen.targets.kubernetes.render import render
from mizzen.targets.kubernetes.target import one_off

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kubernetes"))
from k8s_schemas import validate

MIZZEN = str(Path(sys.executable).parent / "mizzen")
KINDS = {k.name: k for k in job_kinds()}
IMAGE = "registry.example.com/team/kinds@sha256:" + "0" * 64


def project(root: Path, kind: JobKind, lake: str) -> Path:
    """A project whose job `probe` is the kind's example."""
    root.mkdir(parents=True, exist_ok=True)
    spec = {
        "apiVersion": "mizzen.io/v1alpha1",
        "kind": "Project",
        "name": "kinds",
        "image": {"repository": "localhost/mizzen-test-kinds"},
        "stores": {"lake": lake},
        "store": "lake",
        "volumes": {"out": {"blob": "lake/out"}},
        "jobs": {"probe": {**kind.example, "resources": {"cpu": "250m", "memory": "2Gi"}}},
    }
    (root / "mizzen.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    for name, text in kind.example_files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root / "mizzen.yaml"


def needs(kind: JobKind) -> None:
    """Skip (locally) or fail (CI) when this machine lacks what the kind runs with."""
    import importlib.util

    missing = {"spark": "pyspark", "notebook": "papermill", "sql": "duckdb"}.get(kind.name)
    if missing and importlib.util.find_spec(missing) is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{missing} is required in CI")
        pytest.skip(f"{missing} is not installed")
    if kind.name == "spark" and shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        pytest.skip("no Java runtime")


@pytest.mark.parametrize("name", sorted(KINDS))
def test_the_example_validates_as_its_kind(name: str, tmp_path: Path) -> None:
    kind = KINDS[name]
    loaded = spec_mod.load(project(tmp_path, kind, "lake"))
    plan = compile_plan(loaded, "local")
    assert plan.jobs["probe"].kind == name


@pytest.mark.parametrize("name", sorted(KINDS))
def test_it_renders_objects_the_cluster_accepts(name: str, tmp_path: Path) -> None:
    kind = KINDS[name]
    loaded = spec_mod.load(project(tmp_path, kind, "s3://lake/kinds"))
    plan = compile_plan(loaded, "kubernetes", image=IMAGE, environ={})
    objects = render(plan)
    mine = [
        o for o in objects if o["metadata"].get("labels", {}).get("mizzen.io/workload") == "probe"
    ]
    assert mine, "the kind rendered nothing for its job"
    problems = [p for o in objects for p in validate(o)]
    problems += validate(one_off(plan, "probe", "r1"))
    assert problems == []
    assert any(c[1] == mine[0]["kind"] for c in kind.controllers)


@pytest.mark.parametrize("name", sorted(KINDS))
def test_it_runs_on_this_machine_as_a_recorded_run(name: str, tmp_path: Path) -> None:
    kind = KINDS[name]
    needs(kind)
    spec_file = project(tmp_path / "p", kind, "lake")
    out = subprocess.run(
        [MIZZEN, "run", "probe"], cwd=spec_file.parent, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout + out.stderr
    runs = json.loads(
        subprocess.run(
            [MIZZEN, "runs", "probe", "-o", "json"],
            cwd=spec_file.parent,
            capture_output=True,
            text=True,
        ).stdout
    )
    assert [r["status"] for r in runs] == ["succeeded"]
