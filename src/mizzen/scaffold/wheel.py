"""The wheel this mizzen was installed from, so a new project's image and CI can install it.

Installers record where a distribution came from in its `direct_url.json` (PEP 610). When
that is a wheel file that still holds exactly the installed files, `mizzen init` copies it
into the project's `wheels/`; otherwise it says where a wheel can come from.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from urllib.parse import unquote, urlparse

from mizzen._version import __version__


@dataclass(frozen=True)
class Origin:
    wheel: Path | None  # a wheel identical to this installation, when there is one
    note: str  # where this mizzen came from, and what to put in wheels/ when `wheel` is None


def own_wheel() -> Origin:
    try:
        dist = metadata.distribution("mizzen")
    except metadata.PackageNotFoundError:
        return Origin(None, f"mizzen is not installed as a package here: {_how()}")
    text = dist.read_text("direct_url.json")
    if not text:
        return Origin(
            None,
            f"mizzen {__version__} came from a package index: the image and CI install it from there too",
        )
    try:
        origin = json.loads(text)
    except ValueError:
        return Origin(None, f"mizzen's direct_url.json is not JSON: {_how()}")
    url = str(origin.get("url", ""))
    parsed = urlparse(url)
    if parsed.scheme != "file":
        return Origin(None, f"mizzen was installed from {url}: {_how()}")
    path = Path(unquote(parsed.path))
    if "dir_info" in origin:
        return Origin(
            None,
            f"mizzen was installed from the checkout {path}: {_how(_build_in(path))}",
        )
    if not path.is_file():
        return Origin(None, f"{path}, which mizzen was installed from, is gone: {_how()}")
    if not _same_build(dist, path):
        return Origin(None, f"{path} is not the build installed here (rebuilt since?): {_how()}")
    return Origin(path, f"copied {path.name}, which mizzen was installed from")


def _build_in(checkout: Path) -> str:
    return f"make -C {checkout} wheel && cp {checkout}/dist/mizzen-{__version__}-py3-none-any.whl wheels/"


def _how(build: str = "make wheel, in a mizzen checkout") -> str:
    return (
        f"to build images and run CI without a package index that has mizzen {__version__}, "
        f"put its wheel in wheels/ ({build})"
    )


def _same_build(dist: metadata.Distribution, wheel: Path) -> bool:
    """The wheel's RECORD lists the same files with the same hashes as the installed one."""
    installed = {
        str(f): f.hash.value
        for f in dist.files or ()
        if f.hash is not None and str(f).startswith("mizzen/") and "__pycache__" not in str(f)
    }
    try:
        with zipfile.ZipFile(wheel) as archive:
            name = next(n for n in archive.namelist() if n.endswith(".dist-info/RECORD"))
            rows = csv.reader(io.StringIO(archive.read(name).decode()))
            packed = {
                row[0]: row[1].partition("=")[2]
                for row in rows
                if len(row) >= 2 and row[1] and row[0].startswith("mizzen/")
            }
    except (OSError, zipfile.BadZipFile, StopIteration, UnicodeDecodeError):
        return False
    return bool(installed) and installed == packed
