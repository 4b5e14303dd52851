"""A compiled-plan cache, so commands that only *use* a plan (`run`, `up`, `logs`…) skip the
spec validation when nothing it depends on has changed.

The key covers what the command line and the spec say: the spec's bytes and resolved path,
the environment, the target, `--image` and `--set` values, the current values of every
`${env.X}` the spec mentions, and the interpreter. The entry holds the fingerprint of the
rest (`mizzen.spec.deps`): the files compilation read (the spec, a sql job's SQL file, the
time zone database) and every loaded module's file (mizzen's own code and its dependencies'),
re-checked at every lookup. A miss, or any problem reading the cache, simply compiles again;
`MIZZEN_NO_CACHE=1` turns it off.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import re
from pathlib import Path
from typing import TYPE_CHECKING

from mizzen._version import __version__
from mizzen.spec import deps

if TYPE_CHECKING:
    from mizzen.plan.model import Plan

SPEC_FILE = "mizzen.yaml"
_ENV_REF = re.compile(rb"\$\{\s*env\s*\.\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}")


def locate(spec_file: Path | None) -> Path | None:
    """The spec file `load` would read, or None (then the loader reports the error)."""
    if spec_file is not None:
        return spec_file if spec_file.is_file() else None
    here = Path.cwd().resolve()
    for folder in (here, *here.parents):
        if (folder / SPEC_FILE).is_file():
            return folder / SPEC_FILE
    return None


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
        f"plan:{deps.FORMAT}",
        __version__,
        deps.interpreter(),
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
    if path is None or not deps.enabled():
        return _compile(spec_file, env, target, image, sets)
    text = path.read_bytes()
    key = cache_key(path, text, env, target, image, sets)
    entry = path.resolve().parent / ".mizzen" / "cache" / "plans" / f"{key}.pickle"
    try:
        with entry.open("rb") as fh:
            fp, plan = pickle.load(fh)
        if deps.fresh(fp):
            return plan
    except Exception:  # a miss, or a corrupt entry: compile again
        pass
    with deps.Recording() as reads:
        plan = _compile(path, env, target, image, sets)
    fp = deps.fingerprint(reads)  # the spec's own read too: it may have changed since `text`
    if fp is not None:
        deps.write_atomic(str(entry), pickle.dumps((fp, plan), protocol=pickle.HIGHEST_PROTOCOL))
    return plan


def _compile(
    spec_file: Path | None, env: str | None, target: str, image: str | None, sets: dict[str, str]
) -> Plan:
    from mizzen import spec
    from mizzen.plan.compile import compile_plan

    return compile_plan(spec.load(spec_file, env), target, image=image, sets=sets)  # type: ignore[arg-type]
