"""`mizzen init`: write a starter project from the templates shipped as package data."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from mizzen._version import __version__
from mizzen.errors import UsageError
from mizzen.scaffold.wheel import Origin, own_wheel

PLACEHOLDER = "__NAME__"
VERSION = "__MIZZEN_VERSION__"

# template file -> project path
FILES: dict[str, str] = {
    "mizzen.yaml": "mizzen.yaml",
    "Dockerfile": "Dockerfile",
    "dockerignore": ".dockerignore",
    "requirements.txt": "requirements.txt",
    "hello.py.tmpl": "jobs/hello.py",
    "explore.ipynb": "notebooks/explore.ipynb",
    "ci.yml": ".github/workflows/mizzen.yml",
    "wheels.md": "wheels/README.md",
}
GITIGNORE = "gitignore"
LOCAL_SECRETS = ("local.env", ".mizzen/secrets/local.env")


@dataclass
class Scaffolded:
    root: Path
    name: str
    written: list[str]
    kept: list[str]
    wheel: str  # what happened about wheels/: the mizzen wheel copied there, or why not


def project_name(folder: Path, name: str | None) -> str:
    """`--name`, or the folder name made into a DNS-1123 label."""
    from mizzen.spec.units import check_name

    candidate = name if name is not None else _label(folder.resolve().name)
    try:
        return check_name(candidate)
    except ValueError as exc:
        raise UsageError(f"project name: {exc}", hint="pass --name NAME") from None


def _label(text: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", text.lower()).strip("-")[:63].strip("-") or "project"


def template(name: str) -> str:
    return resources.files(__package__).joinpath("templates", name).read_text()


def scaffold(
    root: Path, name: str | None = None, *, force: bool = False, origin: Origin | None = None
) -> Scaffolded:
    """Write the starter project into `root`; refuse to overwrite unless `force`.

    `.gitignore` is merged (missing entries appended) and an existing local secrets file is
    always kept: neither counts as overwriting. The wheel this mizzen was installed from
    (`origin`, found when None) is copied into `wheels/`, which the Dockerfile and CI install
    from.
    """
    if root.exists() and not root.is_dir():
        raise UsageError(f"{root} exists and is not a folder")
    project = project_name(root, name)
    existing = sorted(dest for dest in FILES.values() if (root / dest).exists())
    if existing and not force:
        raise UsageError(
            f"{root.resolve()}: would overwrite {', '.join(existing)}",
            hint="pass --force to overwrite them, or run `mizzen init` in an empty folder",
        )
    written: list[str] = []
    kept: list[str] = []
    for source, dest in FILES.items():
        text = template(source).replace(PLACEHOLDER, project).replace(VERSION, __version__)
        _write(root / dest, text)
        written.append(dest)
    origin = own_wheel() if origin is None else origin
    if origin.wheel is not None:
        shutil.copyfile(origin.wheel, root / "wheels" / origin.wheel.name)
        written.append(f"wheels/{origin.wheel.name}")
    source, dest = LOCAL_SECRETS
    if (root / dest).exists():
        kept.append(dest)
    else:
        _write(root / dest, template(source))
        written.append(dest)
    if _merge_gitignore(root / ".gitignore", template(GITIGNORE)):
        written.append(".gitignore")
    else:
        kept.append(".gitignore")
    return Scaffolded(root, project, written, kept, origin.note)


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _merge_gitignore(path: Path, block: str) -> bool:
    """Append the entries `path` lacks; True when the file changed."""
    current = path.read_text() if path.exists() else ""
    present = {line.strip().rstrip("/") for line in current.splitlines()}
    needed = [line for line in block.splitlines() if line.strip() and not line.startswith("#")]
    if all(line.strip().rstrip("/") in present for line in needed):
        return False
    glue = "" if not current or current.endswith("\n") else "\n"
    path.write_text(current + glue + ("\n" if current else "") + block)
    return True
