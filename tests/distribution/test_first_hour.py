"""A new user's first hour with the built wheel, installed the way CLIs are installed (an
environment of its own, not on PATH): init, validate, run the starter job whatever `python`
PATH has (another Python without mizzen, or none), the image's and CI's install line, the
dashboard's charts."""

from __future__ import annotations

import json
import re
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from tests.distribution.conftest import Installed, clean_env, venv
from tests.servers import free_ports

from mizzen import __version__

NO_PYTHON = "/nonexistent"


@pytest.fixture
def project(installed: Installed, tmp_path: Path) -> Path:
    out = installed.run(tmp_path, "init", "first")
    assert f"wheels/: copied {installed.wheel.name}, which mizzen was installed from" in (
        out.stdout
    )
    root = tmp_path / "first"
    assert (root / "wheels" / installed.wheel.name).read_bytes() == installed.wheel.read_bytes()
    return root


def run_hello(installed: Installed, root: Path, **env: str) -> dict[str, object]:
    run = installed.run(root, "run", "hello", env=env)
    assert "hello from first (3/3)" in run.stdout, run.stdout + run.stderr
    found = re.search(r"run (\S+) succeeded", run.stdout + run.stderr)
    assert found, run.stdout + run.stderr
    shown = installed.run(root, "runs", "show", found.group(1), "-o", "json", env=env)
    return dict(json.loads(shown.stdout))


def test_version_init_validate(installed: Installed, project: Path) -> None:
    version = installed.run(project, "--version", env={"PATH": NO_PYTHON})
    assert version.stdout.strip() == f"mizzen, version {__version__}"
    checked = installed.run(project, "validate", "-o", "json", env={"PATH": NO_PYTHON})
    assert json.loads(checked.stdout)["ok"] is True


def test_run_hello_with_another_python_first_on_path(
    installed: Installed, project: Path, python_without_mizzen: Path
) -> None:
    shown = run_hello(installed, project, PATH=f"{python_without_mizzen}:/usr/bin:/bin")
    assert shown["params"] == {"times": 3}
    assert shown["metrics"]["greetings"] == 3.0  # type: ignore[index]


def test_run_hello_with_no_python_on_path(installed: Installed, project: Path) -> None:
    shown = run_hello(installed, project, PATH=NO_PYTHON)
    assert shown["params"] == {"times": 3}


def test_run_hello_in_an_active_virtualenv_without_mizzen(
    installed: Installed, project: Path, python_without_mizzen: Path
) -> None:
    """An activated project environment is the job's Python; mizzen's SDK is lent to it."""
    env = python_without_mizzen.parent
    (project / "jobs" / "where.py").write_text(
        "import sys, mizzen\nmizzen.log_param('prefix', sys.prefix)\n"
        "mizzen.log_param('sdk', mizzen.__file__)\n"
    )
    spec = project / "mizzen.yaml"
    spec.write_text(
        spec.read_text().replace(
            "jobs:\n", "jobs:\n  where:\n    command: [python, jobs/where.py]\n"
        )
    )
    active = {"PATH": f"{python_without_mizzen}:{NO_PYTHON}", "VIRTUAL_ENV": str(env)}
    run = installed.run(project, "run", "where", env=active)
    found = re.search(r"run (\S+) succeeded", run.stdout + run.stderr)
    assert found, run.stdout + run.stderr
    shown = json.loads(installed.run(project, "runs", "show", found.group(1), "-o", "json").stdout)
    assert shown["params"]["prefix"] == str(env)
    assert shown["params"]["sdk"].startswith(str(installed.prefix))


@pytest.mark.slow
def test_the_ci_install_line_installs_the_wheel_from_wheels(
    installed: Installed, project: Path, tmp_path: Path
) -> None:
    """The scaffolded workflow's own `pip install` line, run by a real pip in a fresh
    environment: mizzen comes from wheels/ (the package index has none)."""
    flow = yaml.safe_load((project / ".github/workflows/mizzen.yml").read_text())
    line = next(s["run"] for s in flow["jobs"]["validate"]["steps"] if "pip" in s.get("run", ""))
    bin_dir = venv(tmp_path / "ci", seed=True)
    env = {**clean_env(), "PATH": f"{bin_dir}:/usr/bin:/bin", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    pip = subprocess.run(
        ["sh", "-c", line], cwd=project, env=env, capture_output=True, text=True, check=False
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    assert f"Processing ./wheels/{installed.wheel.name}" in pip.stdout, pip.stdout
    validate = subprocess.run(
        [str(bin_dir / "mizzen"), "validate"], cwd=project, env=env, capture_output=True, text=True
    )
    assert validate.returncode == 0, validate.stdout + validate.stderr


def test_the_dashboard_serves_its_charts(installed: Installed, project: Path) -> None:
    run_hello(installed, project, PATH=NO_PYTHON)
    (port,) = free_ports(1)
    ui = subprocess.Popen(
        [str(installed.mizzen), "ui", "--port", str(port)],
        cwd=project,
        env={**clean_env(), "PATH": NO_PYTHON},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                page = urllib.request.urlopen(f"{base}/", timeout=5).read().decode()
                break
            except OSError:
                assert ui.poll() is None and time.monotonic() < deadline, "mizzen ui did not start"
                time.sleep(0.1)
        assert '<script src="/static/vendor/uPlot.iife.min.js"></script>' in page
        served = urllib.request.urlopen(f"{base}/static/vendor/uPlot.iife.min.js", timeout=5)
        vendored = Path(__file__).parents[2] / "src/mizzen/ui/static/vendor/uPlot.iife.min.js"
        assert served.read() == vendored.read_bytes()
    finally:
        ui.terminate()
        ui.wait(timeout=10)
