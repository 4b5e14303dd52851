"""A 200-workload spec validates, and compiles for both targets."""

from __future__ import annotations

from pathlib import Path

from big_spec import big_spec

from mizzen import spec
from mizzen.plan import compile_plan


def test_big_spec_validates_and_compiles(tmp_path: Path) -> None:
    path = tmp_path / "mizzen.yaml"
    path.write_text(big_spec())
    loaded = spec.load(path)
    assert len(loaded.project.workload_names()) == 200
    for target in ("local", "kubernetes"):
        plan = compile_plan(loaded, target)  # type: ignore[arg-type]
        assert len(plan.workloads) == 200
    prod = compile_plan(spec.load(path, "prod"), "kubernetes")
    assert prod.jobs["job-1"].process.resources.gpu == 1
