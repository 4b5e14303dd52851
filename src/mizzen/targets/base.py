"""Targets: where a Plan runs. One base class, a registry imported lazily."""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import Any, ClassVar

from mizzen.errors import MissingExtraError, UsageError
from mizzen.plan.model import Plan


class Target(ABC):
    name: ClassVar[str]

    @abstractmethod
    def run(self, plan: Plan, workload: str, **options: Any) -> int:
        """Run one job or pipeline to completion; return the exit code (0 ok, 1 failed)."""


# name -> (module:class, extra, module that must import)
TARGETS: dict[str, tuple[str, str, str]] = {
    "local": ("mizzen.targets.local.target:LocalTarget", "", ""),
    "kubernetes": ("mizzen.targets.kubernetes.target:KubernetesTarget", "kubernetes", "kubernetes"),
}


def get_target(name: str, **kwargs: Any) -> Target:
    if name not in TARGETS:
        raise UsageError(f"unknown target {name!r}", hint=f"targets: {', '.join(TARGETS)}")
    path, extra, module = TARGETS[name]
    if module:
        try:
            importlib.import_module(module)
        except ImportError:
            raise MissingExtraError(f"the {name} target", extra, module) from None
    mod, cls = path.split(":")
    target: Target = getattr(importlib.import_module(mod), cls)(**kwargs)
    return target
