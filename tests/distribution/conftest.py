"""A wheel and an sdist built from this checkout once per session (`python -m build`, which
builds the wheel from the sdist), and that wheel installed the way a CLI is installed: into
an environment of its own (`uv tool install`) whose command is not on PATH."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from tests.build.build_helpers import need

from mizzen import __version__

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Dist:
    wheel: Path
    sdist: Path


@dataclass(frozen=True)
class Installed:
    prefix: Path  # the tool's own environment
    mizzen: Path  # its bin/mizzen, never on PATH
    wheel: Path

    def run(
        self, cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        out = subprocess.run(
            [str(self.mizzen), *args],
            cwd=cwd,
            capture_output=True,
            text=True,
            env={**clean_env(), **(env or {})},
            check=False,
        )
        if check and out.returncode != 0:
            raise AssertionError(
                f"mizzen {' '.join(args)} exited {out.returncode}\n{out.stdout}\n{out.stderr}"
            )
        return out


def clean_env() -> dict[str, str]:
    """This environment without a virtualenv, conda env or PYTHONPATH that could leak in."""
    drop = ("VIRTUAL_ENV", "CONDA_PREFIX", "PYTHONPATH", "PYTHONHOME")
    return {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("MIZZEN_")}


def uv() -> str:
    return need("uv")


def venv(path: Path, *, seed: bool = False) -> Path:
    """A fresh virtualenv of this Python (with pip when `seed`); its bin folder."""
    argv = [uv(), "venv", "-q", "--python", sys.executable, str(path)]
    subprocess.run([*argv, "--seed"] if seed else argv, check=True, capture_output=True)
    return path / "bin"


@pytest.fixture(scope="session")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Dist:
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--installer", "uv", "--outdir", str(out), str(ROOT)],
        check=True,
        capture_output=True,
        env={**clean_env(), "PATH": f"{Path(uv()).parent}{os.pathsep}{os.environ['PATH']}"},
    )
    wheel = out / f"mizzen-{__version__}-py3-none-any.whl"
    sdist = out / f"mizzen-{__version__}.tar.gz"
    assert sorted(p.name for p in out.iterdir()) == [wheel.name, sdist.name]
    return Dist(wheel, sdist)


@pytest.fixture(scope="session")
def installed(dist: Dist, tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel with the `ui` extra installed as the README says, `uv tool install`: an
    environment of its own, its command linked into a bin folder that is not on PATH."""
    base = tmp_path_factory.mktemp("tool")
    tools, bin_dir = base / "tools", base / "bin"
    subprocess.run(
        [uv(), "tool", "install", "-q", "--python", sys.executable, f"{dist.wheel}[ui]"],
        check=True,
        capture_output=True,
        env={**clean_env(), "UV_TOOL_DIR": str(tools), "UV_TOOL_BIN_DIR": str(bin_dir)},
    )
    assert (bin_dir / "mizzen").resolve() == (tools / "mizzen" / "bin" / "mizzen").resolve()
    return Installed(tools / "mizzen", bin_dir / "mizzen", dist.wheel)


@pytest.fixture
def python_without_mizzen(tmp_path: Path) -> Path:
    """A bin folder whose `python` is a real Python without mizzen (a second virtualenv)."""
    bin_dir = venv(tmp_path / "other-env")
    probe = subprocess.run(
        [str(bin_dir / "python"), "-c", "import mizzen"], capture_output=True, check=False
    )
    assert probe.returncode == 1 and b"No module named 'mizzen'" in probe.stderr
    assert shutil.which("python", path=str(bin_dir)) == str(bin_dir / "python")
    return bin_dir
