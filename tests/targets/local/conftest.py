from __future__ import annotations

import io
import json
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from mizzen.plan import compile_plan
from mizzen.spec import load
from mizzen.storage.base import open_store
from mizzen.storage.runs import RunRecord, RunStore
from mizzen.targets.base import Options
from mizzen.targets.local.console import Console
from mizzen.targets.local.target import LocalTarget

PY = json.dumps(sys.executable)


@dataclass
class Result:
    code: int
    record: RunRecord
    out: str
    err: str
    runs: RunStore

    def step(self, name: str) -> Any:
        return next(s for s in self.record.steps if s.name == name)

    def log(self, step: str) -> str:
        return self.runs.log(self.record, step).decode()


Make = Callable[..., Path]


@pytest.fixture
def project(tmp_path: Path) -> Make:
    """Write a project: mizzen.yaml (with $PY = this interpreter) plus extra files."""

    def make(spec: str, files: dict[str, str] | None = None) -> Path:
        root = tmp_path / "proj"
        root.mkdir(exist_ok=True)
        head = "apiVersion: mizzen.io/v1alpha1\nkind: Project\nname: demo\n"
        (root / "mizzen.yaml").write_text(head + textwrap.dedent(spec).replace("$PY", PY))
        for name, text in (files or {}).items():
            path = root / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(textwrap.dedent(text))
        return root

    return make


def plan_of(root: Path, env: str | None = None, target: str = "local") -> Any:
    return compile_plan(load(root / "mizzen.yaml", env), target)  # type: ignore[arg-type]


def run_local(
    root: Path, workload: str, *, env: str | None = None, grace: float = 10.0, **options: Any
) -> Result:
    plan = plan_of(root, env)
    out, err = io.StringIO(), io.StringIO()
    extra = {k: options.pop(k) for k in ("trigger", "stop") if k in options}
    code = LocalTarget(console=Console(out, err, color=False), grace=grace).run(
        plan, workload, Options(**options), **extra
    )
    runs = RunStore(open_store(plan.store.url))
    record = max(runs.list(workload, limit=5), key=lambda r: r.started)  # ids sort by the second
    return Result(code, record, out.getvalue(), err.getvalue(), runs)


def alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rfind(")") + 2] not in "ZX"
