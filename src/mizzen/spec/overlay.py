"""Environment overlays: `environments.<env>` deep-merged over the base spec, keeping the
position of every value so problems name the line that wrote it."""

from __future__ import annotations

from typing import Any

from mizzen.errors import Problem
from mizzen.spec.models import OVERLAY_KEYS
from mizzen.spec.problems import suggest
from mizzen.spec.source import PathKey, Source


def overlay(source: Source, env: str, problems: list[Problem]) -> Source:
    """`source` with `environments.<env>` deep-merged over it.

    Mappings merge key by key; lists and scalars replace; `null` deletes the key.
    """
    envs = source.data.get("environments") or {}
    if not isinstance(envs, dict) or env not in envs:
        known = sorted(envs) if isinstance(envs, dict) else []
        problems.append(
            Problem(
                f"no environment {env!r}"
                + (
                    f"; known: {', '.join(known)}" if known else "; the spec has no `environments:`"
                ),
                field="environments",
                location=source.locate(("environments",)),
                hint=suggest(env, known) or "add it under `environments:`",
            )
        )
        return source
    over = envs[env] or {}
    base_path: PathKey = ("environments", env)
    if not isinstance(over, dict):
        problems.append(
            source.problem(
                base_path, "an environment is a mapping of overlays, e.g. {stores: {lake: s3://…}}"
            )
        )
        return source
    for key in [k for k in over if k not in OVERLAY_KEYS]:
        hint = suggest(key, OVERLAY_KEYS) or f"allowed: {', '.join(OVERLAY_KEYS)}"
        problems.append(
            source.problem((*base_path, key), f"{key!r} cannot be overlaid per environment", hint)
        )
    over = {k: v for k, v in over.items() if k in OVERLAY_KEYS}
    positions = dict(source.positions)
    replaced: set[PathKey] = set()

    def take(path: PathKey) -> None:
        for key in [k for k in positions if k[: len(path)] == path]:
            del positions[key]
        full = (*base_path, *path)
        for key, pos in source.positions.items():
            if key[: len(full)] == full:
                positions[path + key[len(full) :]] = pos
        replaced.add(path)

    def merge(base: dict[str, Any], layer: dict[str, Any], path: PathKey) -> dict[str, Any]:
        out = dict(base)
        for key, value in layer.items():
            here = (*path, key)
            if value is None:
                out.pop(key, None)
                take(here)
            elif isinstance(value, dict) and isinstance(base.get(key), dict):
                out[key] = merge(base[key], value, here)
                if any(not isinstance(v, dict) for v in value.values()):
                    # the overlay set this mapping's values: a problem of the whole mapping
                    # (traffic shares adding up to 101) is the overlay's line
                    written = source.positions.get((*base_path, *here))
                    if written is not None:
                        positions[here] = written
            else:
                out[key] = value
                take(here)
        return out

    merged = merge(source.data, over, ())
    return Source(
        file=source.file,
        data=merged,
        positions=positions,
        overlay=base_path,
        replaced=frozenset(replaced),
    )


def deep_merge(base: Any, over: Any) -> Any:
    """The overlay rule on plain data: mappings merge, lists and scalars replace, None deletes."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = deep_merge(base[key], value) if key in base else value
        return out
    return over
