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


PASSWORD = 'hunter2-"Zq9"/x'  # a quote: JSON (the .ipynb) escapes it
LEAKY_SPEC = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: leaky
secrets:
  db: [password]
jobs:
  leaky:
    notebook: leaky.ipynb
    secrets: [db]
  aliased:
    command: [python, -c, "import mizzen, os; mizzen.log_param('dsn', 'pg://ada:' + os.environ['DSN'] + '@db'); print('ok')"]
    env: {DSN: "${secrets.db.password}"}
"""
LEAKY_CELLS = (
    "import base64, json, mizzen\npw = mizzen.secret('db', 'password')\nprint('plain', pw)",
    "print('b64', base64.b64encode(pw.encode()).decode())\n"
    "print('basic', base64.b64encode(('ada:' + pw).encode()).decode())\n"
    "print('urlsafe', base64.urlsafe_b64encode(b'>' + pw.encode()).decode())\n"
    "print('reversed', pw[::-1])\nprint('hex', pw.encode().hex())",
    "mizzen.log_param('password', pw)\nmizzen.log_param('conn', {'user': 'ada', 'pw': pw})\n"
    "mizzen.log_metric('loss_' + pw, 0.5)",
    "out = mizzen.outputs_dir()\n(out / 'creds.txt').write_text('the password is ' + pw)\n"
    "(out / 'conf.json').write_text(json.dumps({'password': pw, 'n': 1}))\n"
    "(out / 'model.bin').write_bytes(bytes([0, 255]) + pw.encode())",
    "pw  # the cell's result, shown as output too",
)


def disguises(value: str) -> list[bytes]:
    import base64

    raw = value.encode()
    return [
        raw,
        json.dumps(value)[1:-1].encode(),  # as a JSON string holds it
        base64.b64encode(raw),
        base64.b64encode(b"ada:" + raw)[4:-4],
        base64.urlsafe_b64encode(b">" + raw)[4:-4],
        raw[::-1],
        raw.hex().encode(),
    ]


def test_secret_values_are_masked_in_notebook_outputs_params_metrics_and_files(
    tmp_path: Path,
) -> None:
    (tmp_path / "mizzen.yaml").write_text(LEAKY_SPEC)
    notebook(tmp_path / "leaky.ipynb", *LEAKY_CELLS)
    env = {
        **os.environ,
        "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
        "NO_COLOR": "1",
        "MIZZEN_SECRET_DB_PASSWORD": PASSWORD,
    }

    def run(job: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "mizzen.cli.main", "run", job],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=240,
        )

    leaky, aliased = run("leaky"), run("aliased")
    out = leaky.stdout + leaky.stderr + aliased.stdout + aliased.stderr
    assert leaky.returncode == 0 and aliased.returncode == 0, out
    for shown in disguises(PASSWORD):
        assert shown.decode() not in out, shown
    assert "log_param('password', ...): the value holds the value of a secret" in out
    assert "warning: output model.bin is a binary file that holds the value of a secret" in out
    assert "warning: param 'dsn' held the value of a secret: recorded as ***" in out

    store = tmp_path / ".mizzen" / "store"
    for file in store.rglob("*"):
        if file.is_file() and file.name != "model.bin":  # binary: kept as is, with the warning
            data = file.read_bytes()
            for shown in disguises(PASSWORD):
                assert shown not in data, (file, shown)
    (executed,) = stored_outputs(tmp_path, "leaky")
    nb = nbformat.read(executed, as_version=4)  # still a valid notebook
    printed = "".join(
        o.get("text", "") + json.dumps(o.get("data", {})) for c in nb.cells for o in c.outputs
    )
    assert "plain ***" in printed and "b64 ***" in printed and "reversed ***" in printed
    record = json.loads(next(store.glob("runs/leaky/*/run.json")).read_text())
    assert record["params"] == {"password": "***", "conn": {"user": "ada", "pw": "***"}}
    assert list(record["metrics"]) == ["loss_***"]
    kept = executed.parent
    assert (kept / "creds.txt").read_text() == "the password is ***"
    assert json.loads((kept / "conf.json").read_text()) == {"password": "***", "n": 1}
    dsn = json.loads(next(store.glob("runs/aliased/*/run.json")).read_text())["params"]
    assert dsn == {"dsn": "pg://ada:***@db"}
