"""Validating a spec imports cronsim only when the spec has a schedule."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from pathlib import Path
from mizzen import spec
text = "apiVersion: mizzen.io/v1alpha1\\nkind: Project\\nname: x\\njobs: {a: {command: [x]}}\\n"
spec.load(Path("mizzen.yaml"), text=text)
before = "cronsim" in sys.modules
spec.load(Path("mizzen.yaml"), text=text + "pipelines: {p: {steps: [a], schedule: '0 3 * * *'}}\\n")
print(before, "cronsim" in sys.modules)
"""


def test_cronsim_is_imported_only_for_schedules() -> None:
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "True"]
