"""Which Python a local `python ...` command runs with, and how the SDK gets into it
(docs/spec.md, Run-time environment). Real interpreters and real virtualenvs throughout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from tests.build.build_helpers import mizzen as cli

import mizzen
from mizzen.targets.local import interpreter
from mizzen.targets.local.env import resolve_mizzen, unresolved

NO_ENV = {"PATH": "/nonexistent"}
SITE = f"lib/python{sys.version_info[0]}.{sys.version_info[1]}/site-packages"


def fake_env(prefix: Path) -> Path:
    """A folder laid out like an environment, with an executable bin/python."""
    python = prefix / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text("#!/bin/sh\n")
    python.chmod(0o755)
    return python


def real_venv(path: Path) -> Path:
    """A real virtualenv of this Python, without mizzen (nor anything else)."""
    uv = shutil.which("uv")
    argv = (
        [uv, "venv", "-q", "--python", sys.executable, str(path)]
        if uv
        else [sys.executable, "-m", "venv", "--without-pip", str(path)]
    )
    subprocess.run(argv, check=True, capture_output=True)
    return path / "bin" / "python"


def test_the_projects_venv_comes_first(tmp_path: Path) -> None:
    (tmp_path / "mizzen.yaml").write_text("")
    venv = fake_env(tmp_path / ".venv")
    active = fake_env(tmp_path / "active")
    (tmp_path / "src").mkdir()
    env = {"VIRTUAL_ENV": str(active.parent.parent)}
    assert interpreter.choose("python", str(tmp_path), env)[0] == str(venv)
    # a workingDir below the project folder finds the project's .venv
    assert interpreter.choose("python", str(tmp_path / "src"), env)[0] == str(venv)


def test_the_walk_stops_at_the_project_folder(tmp_path: Path) -> None:
    fake_env(tmp_path / ".venv")  # some other checkout's environment, above the project
    project = tmp_path / "project"
    (project / "src").mkdir(parents=True)
    (project / "mizzen.yaml").write_text("")
    path, where = interpreter.choose("python", str(project / "src"), {})
    assert (path, where) == (sys.executable, "mizzen's own Python")
    # no mizzen.yaml above at all (another spec file name): only the folder itself counts
    (project / "mizzen.yaml").unlink()
    assert interpreter.choose("python", str(project / "src"), {})[0] == sys.executable


def test_then_the_active_environment_then_mizzens_own(tmp_path: Path) -> None:
    venv = fake_env(tmp_path / "venv")
    conda = fake_env(tmp_path / "conda")
    both = {"VIRTUAL_ENV": str(venv.parent.parent), "CONDA_PREFIX": str(conda.parent.parent)}
    assert interpreter.choose("python3", str(tmp_path), both)[0] == str(venv)
    only_conda = {"CONDA_PREFIX": str(conda.parent.parent)}
    assert interpreter.choose("python", str(tmp_path), only_conda)[0] == str(conda)
    assert interpreter.choose("python", str(tmp_path), {"VIRTUAL_ENV": ""})[0] == sys.executable


def test_a_broken_environment_says_what_to_do(tmp_path: Path) -> None:
    (tmp_path / ".venv").mkdir()
    with pytest.raises(interpreter.NoInterpreter, match=r"has no working bin/python: recreate"):
        interpreter.choose("python", str(tmp_path), {})
    with pytest.raises(interpreter.NoInterpreter, match=r"VIRTUAL_ENV is /gone.*unset"):
        interpreter.choose("python", str(tmp_path / "x"), {"VIRTUAL_ENV": "/gone"})


def test_the_sdk_path_is_appended_only_for_another_environment(tmp_path: Path) -> None:
    other = fake_env(tmp_path / "venv")
    env = interpreter.child_env(str(other), {"PYTHONPATH": "/mine"})
    assert env["PYTHONPATH"] == os.pathsep.join(["/mine", interpreter.SDK_PATH])
    assert os.listdir(interpreter.SDK_PATH) == ["mizzen"]  # nothing else can be shadowed
    assert "PYTHONPATH" not in interpreter.child_env(sys.executable, {})


def test_resolve_wraps_python_locally_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MIZZEN_TARGET", raising=False)
    wrapped = resolve_mizzen(["python", "-m", "papermill", "x.ipynb"])
    assert wrapped[:4] == [sys.executable, "-I", "-S", interpreter.__file__]
    assert unresolved(wrapped) == ["python", "-m", "papermill", "x.ipynb"]
    assert resolve_mizzen(["python3.12", "x.py"]) == ["python3.12", "x.py"]  # named: as is
    assert resolve_mizzen(["/usr/bin/python3", "x.py"]) == ["/usr/bin/python3", "x.py"]
    monkeypatch.setenv("MIZZEN_TARGET", "kubernetes")  # in the image: its own python
    assert resolve_mizzen(["python", "x.py"]) == ["python", "x.py"]


def run_in(python: Path, code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(python), "-c", code],
        cwd=cwd,
        env={**NO_ENV, **interpreter.child_env(str(python), {}), **env},
        capture_output=True,
        text=True,
        check=False,
    )


def test_an_environment_without_mizzen_gets_this_sdk_and_nothing_else(tmp_path: Path) -> None:
    python = real_venv(tmp_path / "venv")
    out = run_in(
        python,
        "import mizzen, sys; print(mizzen.__file__); print(mizzen.run_id())\n"
        "import importlib.util; print(importlib.util.find_spec('pydantic'))\n"
        "try:\n    import pydantic\nexcept ImportError as e:\n    print('own:', e)\n"
        "import mizzen.spec.models",
        tmp_path,
        MIZZEN_RUN_ID="r-1",
    )
    lines = out.stdout.splitlines()
    assert lines[:4] == [
        str(Path(mizzen.__file__)),
        "r-1",
        "None",  # a probe still answers None
        "own: No module named 'pydantic'",  # the job's own import: the plain error
    ], out.stderr
    # mizzen's own code importing a dependency this environment lacks: what to install where
    assert "No module named 'pydantic', which mizzen.spec" in out.stderr
    assert f"uv pip install --python {python} mizzen" in out.stderr


def test_an_environment_with_its_own_mizzen_keeps_it(tmp_path: Path) -> None:
    python = real_venv(tmp_path / "venv")
    own = tmp_path / "venv" / SITE / "mizzen"
    own.mkdir(parents=True)
    (own / "__init__.py").write_text("__version__ = 'the project pinned this one'\n")
    out = run_in(python, "import mizzen; print(mizzen.__version__, mizzen.__file__)", tmp_path)
    assert out.stdout.split(" ", 1) == [
        "the",
        f"project pinned this one {own / '__init__.py'}\n",
    ], out.stderr


def test_a_run_uses_the_projects_venv_and_its_packages(tmp_path: Path) -> None:
    """`mizzen run` with no python on PATH: the job runs in the project's .venv, sees the
    packages installed only there, and imports mizzen's SDK although the venv lacks it."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / "mizzen.yaml").write_text(
        "apiVersion: mizzen.io/v1alpha1\nkind: Project\nname: p\njobs:\n"
        "  probe:\n    command: [python, -c, 'import sys, mizzen, projonly; "
        'print(sys.prefix, projonly.X); mizzen.log_param("p", 1)\']\n'
        "  broken:\n    command: [python, -c, pass]\n    workingDir: sub\n"
    )
    python = real_venv(root / ".venv")
    (root / ".venv" / SITE / "projonly.py").write_text("X = 'only in .venv'\n")
    env = {**NO_ENV, "VIRTUAL_ENV": ""}
    run = cli(root, "run", "probe", env=env)
    assert f"probe | {root / '.venv'} only in .venv" in run.stdout, run.stdout + run.stderr
    assert python.is_file()

    (root / "sub" / ".venv").mkdir(parents=True)  # an empty .venv where the job runs
    bad = cli(root, "run", "broken", env=env, check=False)
    assert bad.returncode == 1
    assert f"mizzen: cannot run python: the project's {root / 'sub' / '.venv'} has no" in (
        bad.stdout
    )
    assert "recreate it" in bad.stdout and "Run-time environment" in bad.stdout
