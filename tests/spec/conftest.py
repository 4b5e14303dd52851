from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from textwrap import dedent

import pytest

GOOD = Path(__file__).parent / "good"

HEAD = "apiVersion: mizzen.io/v1alpha1\nkind: Project\nname: drives\n"


@pytest.fixture
def write_spec(tmp_path: Path) -> Callable[[str], Path]:
    """Write a mizzen.yaml (the apiVersion/kind/name header added) and return its path."""

    def write(body: str, *, head: bool = True) -> Path:
        path = tmp_path / "mizzen.yaml"
        path.write_text((HEAD if head else "") + dedent(body).lstrip("\n"))
        return path

    return write


@pytest.fixture
def design_spec(tmp_path: Path) -> Path:
    """The example spec of DESIGN.md, in a fresh project folder."""
    path = tmp_path / "mizzen.yaml"
    path.write_text((GOOD / "design.yaml").read_text())
    return path
