"""Workloads mizzen adds to a plan itself: a plugin list, each entry a function of the
validated project that gives job specs by name (compiled like the user's own jobs, on both
targets). Their names start with `mizzen-`, which the spec reserves."""

from __future__ import annotations

import importlib
from typing import Any

PREFIX = "mizzen-"
BUILTIN: list[str] = [
    "mizzen.datasets.builtin:maintenance",
]


def builtin_jobs(project: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for entry in BUILTIN:
        module, func = entry.split(":")
        for name, job in getattr(importlib.import_module(module), func)(project).items():
            assert name.startswith(PREFIX), name
            out[name] = job
    return out
