"""A plain command job is exactly one process, labelled with the job name."""

from __future__ import annotations

from pathlib import Path

from mizzen import spec
from mizzen.kinds import launches
from mizzen.plan import compile_plan


def test_a_plain_job_is_one_launch(tmp_path: Path) -> None:
    (tmp_path / "mizzen.yaml").write_text(
        "apiVersion: mizzen.io/v1alpha1\nkind: Project\nname: p\njobs:\n  hello:\n    command: [python, -c, print(1)]\n"
    )
    job = compile_plan(spec.load(tmp_path / "mizzen.yaml")).jobs["hello"]
    (only,) = launches(job, ["python", "-c", "print(1)"], {"A": "1"}, tmp_path / "run")
    assert (only.argv, only.label, only.env) == (["python", "-c", "print(1)"], "hello", {})
