"""Helpers shared by the build and scaffold tests."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def need(binary: str) -> str:
    """The binary's path; skip without it locally, fail in CI (CI must install it)."""
    path = shutil.which(binary) or (binary if Path(binary).is_file() else None)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{binary} is required in CI (scripts/setup.sh installs it)")
        pytest.skip(f"{binary} is not installed")
    return path


def git(cwd: Path, *args: str) -> str:
    out = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
        check=True,
    )
    return out.stdout.strip()


def mizzen(
    cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    out = subprocess.run(
        [sys.executable, "-m", "mizzen.cli.main", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        check=False,
    )
    if check and out.returncode != 0:
        raise AssertionError(
            f"mizzen {' '.join(args)} exited {out.returncode}\n{out.stdout}\n{out.stderr}"
        )
    return out
