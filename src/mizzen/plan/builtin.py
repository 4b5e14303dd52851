"""Workloads mizzen adds to a plan itself: plugin lists, each entry a function of the
validated project that gives job (or service) specs by name, compiled like the user's own on
both targets. Their names start with `mizzen-`, which the spec reserves."""

from __future__ import annotations

import importlib
from typing import Any

PREFIX = "mizzen-"
BUILTIN: list[str] = [
    "mizzen.datasets.builtin:maintenance",
    "mizzen.signals.builtin:computations",
]


BUILTIN_SERVICES: list[str] = [
    "mizzen.signals.builtin:exporter",
]


def builtin_jobs(project: Any) -> dict[str, dict[str, Any]]:
    return _collect(BUILTIN, project)


def builtin_services(project: Any) -> dict[str, dict[str, Any]]:
    return _collect(BUILTIN_SERVICES, project)


def _collect(entries: list[str], project: Any) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for entry in entries:
        module, func = entry.split(":")
        for name, job in getattr(importlib.import_module(module), func)(project).items():
            assert name.startswith(PREFIX), name
            out[name] = job
    return out
