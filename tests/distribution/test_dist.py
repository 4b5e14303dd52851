"""What `python -m build` makes from this checkout: publishable (twine check), complete
metadata, and every file the installed package needs, the dashboard's chart library first."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from email import message_from_string
from pathlib import Path

from tests.distribution.conftest import ROOT, Dist

from mizzen import __version__

VENDOR = "mizzen/ui/static/vendor"
CHARTS = ("uPlot.iife.min.js", "uPlot.min.css", "uPlot.LICENSE")


def wheel_names(dist: Dist) -> list[str]:
    with zipfile.ZipFile(dist.wheel) as archive:
        return archive.namelist()


def test_twine_check_passes(dist: Dist) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", str(dist.wheel), str(dist.sdist)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.count("PASSED") == 2


def test_metadata_is_complete(dist: Dist) -> None:
    with zipfile.ZipFile(dist.wheel) as archive:
        meta = message_from_string(
            archive.read(f"mizzen-{__version__}.dist-info/METADATA").decode()
        )
        entry_points = archive.read(f"mizzen-{__version__}.dist-info/entry_points.txt").decode()
    assert (meta["Name"], meta["Version"], meta["Requires-Python"]) == (
        "mizzen",
        __version__,
        ">=3.11",
    )
    assert meta["Author"] and meta["Keywords"] and meta["License-Expression"] == "Apache-2.0"
    assert meta.get_all("License-File") == ["LICENSE", f"src/{VENDOR}/uPlot.LICENSE"]
    classifiers = meta.get_all("Classifier")
    assert "Typing :: Typed" in classifiers and "Programming Language :: Python :: 3.11" in (
        classifiers
    )
    assert meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().strip() == (ROOT / "README.md").read_text().strip()
    assert "mizzen = mizzen.cli.main:main" in entry_points
    extras = meta.get_all("Provides-Extra")
    assert {"all", "s3", "ui", "serve", "kubernetes", "notebook"} <= set(extras)


def test_the_wheel_and_the_sdist_hold_the_chart_library(dist: Dist) -> None:
    names = wheel_names(dist)
    with zipfile.ZipFile(dist.wheel) as archive:
        for name in CHARTS:
            packed = archive.read(f"{VENDOR}/{name}")
            assert packed == (ROOT / "src" / VENDOR / name).read_bytes(), name
    assert f"mizzen-{__version__}.dist-info/licenses/src/{VENDOR}/uPlot.LICENSE" in names
    with tarfile.open(dist.sdist) as sdist:
        held = set(sdist.getnames())
    top = f"mizzen-{__version__}"
    assert {f"{top}/src/{VENDOR}/{name}" for name in CHARTS} <= held
    assert f"{top}/LICENSE" in held and f"{top}/uv.lock" in held


def test_the_chart_library_is_committed() -> None:
    """So a clean clone, and any build from it, has it (no npm step before a build)."""
    tracked = subprocess.run(
        ["git", "ls-files", f"src/{VENDOR}"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert sorted(tracked) == sorted(f"src/{VENDOR}/{n}" for n in (*CHARTS, "README.md"))


def test_the_wheel_holds_its_package_data_and_nothing_else(dist: Dist) -> None:
    names = wheel_names(dist)
    for needed in (
        "mizzen/py.typed",
        "mizzen/scaffold/templates/Dockerfile",
        "mizzen/scaffold/templates/wheels.md",
        "mizzen/ui/templates/run.html",
        "mizzen/ui/static/app.js",
        "mizzen/targets/local/interpreter.py",
        "mizzen/targets/local/sdk_path/mizzen/__init__.py",
    ):
        assert needed in names, needed
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "src/mizzen"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert sorted(n for n in names if n.startswith("mizzen/")) == sorted(
        str(Path(p).relative_to("src")) for p in tracked
    )
