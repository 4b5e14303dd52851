"""Notebook jobs: papermill with injected parameters, the executed notebook kept as a run
output, and a failing cell failing the run with the cell's error shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("papermill", reason="needs mizzen[notebook]")
import nbformat

VENV_BIN = str(Path(sys.executable).parent)
SPEC = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: nb
volumes:
  data: {files: {claim: data}}
config:
  GREETING: hello
jobs:
  report:
    notebook: report.ipynb
    parameters: {days: 7, where: "${volumes.data}"}
  broken:
    notebook: broken.ipynb
"""


def notebook(path: Path, *sources: str) -> None:
    params = nbformat.v4.new_code_cell("days = 1\nwhere = ''")
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook()
    nb.cells = [params, *(nbformat.v4.new_code_cell(s) for s in sources)]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("nb")
    (root / "mizzen.yaml").write_text(SPEC)
    notebook(
        root / "report.ipynb",
        "import os, mizzen\nprint('days', days, os.environ['GREETING'], where == str(mizzen.volume('data')))",
    )
    notebook(
        root / "broken.ipynb", "print('before the error')", "{}['missing-key']", "print('never')"
    )
    return root


def mizzen(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "mizzen.cli.main", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def stored_outputs(root: Path, workload: str) -> list[Path]:
    return sorted((root / ".mizzen" / "store" / "runs" / workload).glob("*/outputs/*.ipynb"))


def test_parameters_are_injected_and_the_executed_notebook_is_kept(root: Path) -> None:
    result = mizzen(root, "run", "report")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "days 7 hello True" in result.stdout + result.stderr
    (executed,) = stored_outputs(root, "report")
    nb = nbformat.read(executed, as_version=4)
    injected = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert injected and "days = 7" in injected[0].source
    printed = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
    assert "days 7 hello True" in printed
    shown = mizzen(root, "runs", "show", executed.parent.parent.name, "-o", "json")
    assert "report.ipynb" in shown.stdout


def test_a_failing_cell_fails_the_run_with_its_error(root: Path) -> None:
    result = mizzen(root, "run", "broken")
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "KeyError: 'missing-key'" in out
    assert "notebook cell" in out and "before the error" in out
    assert "never" not in out.replace("'never'", "")
    assert "papermill/execute.py" not in out  # the cell's error, not papermill's traceback
    executed = stored_outputs(root, "broken")
    if executed:  # kept for inspection when the runner stores outputs of failed runs
        nb = nbformat.read(executed[0], as_version=4)
        assert any(o.get("ename") == "KeyError" for c in nb.cells for o in c.get("outputs", []))
    assert json.loads(mizzen(root, "runs", "broken", "-o", "json").stdout)[0]["status"] == "failed"
