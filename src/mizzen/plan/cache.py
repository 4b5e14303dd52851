"""A compiled-plan cache, so commands that only *use* a plan (`run`, `up`, `logs`…) skip the
spec validation when nothing it depends on has changed.

The key covers everything compilation reads: the spec's bytes and resolved path, the
environment, the target, `--image` and `--set` values, the current values of every `${env.X}`
the spec mentions, and the source of mizzen's own spec/plan code. A miss, or any problem
reading the cache, simply compiles again.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from pathlib import Path
from typing import TYPE_CHECKING

from mizzen._version import __version__

if TYPE_CHECKING:
    from mizzen.plan.model import Plan

SPEC_FILE = "mizzen.yaml"
_ENV_REF = re.compile(rb"\$\{\s*env\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}")
_CODE = Path(__file__).resolve().parent.parent


def locate(spec_file: Path | None) -> Path | None:
    """The spec file `load` would read, or None (then the loader reports the error)."""
    if spec_file is not None:
        return spec_file if spec_file.is_file() else None
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / SPEC_FILE).is_file():
            return folder / SPEC_FILE
    return None


def _code_stamp() -> str:
    parts = []
    for folder in ("spec", "plan"):
        for entry in sorted(os.scandir(_CODE / folder), key=lambda e: e.name):
            if entry.name.endswith(".py"):
                st = entry.stat()
                parts.append(f"{folder}/{entry.name}:{st.st_mtime_ns}:{st.st_size}")
    return ";".join(parts)


def cache_key(
    spec_path: Path,
    text: bytes,
    env: str | None,
    target: str,
    image: str | None,
    sets: dict[str, str],
) -> str:
    h = hashlib.sha256()
    for part in (
        __version__,
        _code_stamp(),
        str(spec_path.resolve()),
        env or "",
        target,
        image or "",
    ):
        h.update(part.encode() + b"\0")
    h.update(text + b"\0")
    for key, value in sorted(sets.items()):
        h.update(f"set:{key}={value}\0".encode())
    for name in sorted(set(_ENV_REF.findall(text))):
        current = os.environ.get(name.decode())
        h.update(
            b"env:"
            + name
            + b"="
            + (current.encode() if current is not None else b"\x01unset")
            + b"\0"
        )
    return h.hexdigest()[:32]


def cached_plan(
    spec_file: Path | None,
    env: str | None,
    target: str,
    *,
    image: str | None = None,
    sets: dict[str, str] | None = None,
) -> Plan:
    """The plan for these inputs, from `.mizzen/cache/plans/` when it is fresh."""
    sets = sets or {}
    path = locate(spec_file)
    if path is None:
        return _compile(spec_file, env, target, image, sets)
    text = path.read_bytes()
    key = cache_key(path, text, env, target, image, sets)
    entry = path.resolve().parent / ".mizzen" / "cache" / "plans" / f"{key}.pickle"
    try:
        with entry.open("rb") as fh:
            plan: Plan = pickle.load(fh)
        return plan
    except Exception:  # a miss, or a stale/corrupt entry: compile again
        pass
    plan = _compile(path, env, target, image, sets)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(pickle.dumps(plan, protocol=pickle.HIGHEST_PROTOCOL))
        os.replace(tmp, entry)
        _prune(entry.parent, keep=entry)
    except OSError:
        pass
    return plan


def _compile(
    spec_file: Path | None, env: str | None, target: str, image: str | None, sets: dict[str, str]
) -> Plan:
    from mizzen import spec
    from mizzen.plan.compile import compile_plan

    return compile_plan(spec.load(spec_file, env), target, image=image, sets=sets)  # type: ignore[arg-type]


def _prune(folder: Path, keep: Path, limit: int = 32) -> None:
    """Keep the cache small: the newest `limit` entries."""
    entries = sorted(folder.glob("*.pickle"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in entries[limit:]:
        if old != keep:
            old.unlink(missing_ok=True)
