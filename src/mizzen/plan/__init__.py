"""Spec -> Plan: the backend-neutral description both targets consume.

Attributes are imported lazily: `mizzen.plan.model` and `mizzen.plan.cache` stay free of
pydantic, so commands that only use a cached plan start fast.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "compile_plan": "mizzen.plan.compile",
    "secret_env_name": "mizzen.plan.model",
    "cached_plan": "mizzen.plan.cache",
    "Job": "mizzen.plan.model",
    "Mount": "mizzen.plan.model",
    "Pipeline": "mizzen.plan.model",
    "Plan": "mizzen.plan.model",
    "Process": "mizzen.plan.model",
    "Service": "mizzen.plan.model",
    "Step": "mizzen.plan.model",
    "Workload": "mizzen.plan.model",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'mizzen.plan' has no attribute {name!r}")
