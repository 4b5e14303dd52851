"""Targets: where a Plan runs. One base class, a registry imported lazily.

A target implements the operations it can do (`run`, `up`, `logs`, `status`, `delete`) and
says which options each honours; the others are refused with the flag's name, so a flag
means the same on every target or is refused there.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any, ClassVar

from mizzen.errors import MissingExtraError, NotSupportedError, UsageError

if TYPE_CHECKING:
    from mizzen.plan.model import Plan


@dataclass(frozen=True)
class Options:
    """What a command asks of a target (the CLI's flags, typed)."""

    image: str | None = field(default=None, metadata={"flag": "--image"})
    namespace: str | None = field(default=None, metadata={"flag": "--namespace"})
    context: str | None = field(default=None, metadata={"flag": "--context"})
    sets: Mapping[str, str] = field(default_factory=dict, metadata={"flag": "--set"})
    parallel: int | None = field(default=None, metadata={"flag": "--parallel"})
    pending_timeout: float | None = field(default=None, metadata={"flag": "--pending-timeout"})
    follow: bool = field(default=False, metadata={"flag": "--follow"})
    step: str | None = field(default=None, metadata={"flag": "--step"})
    # Secrets one run needs and nothing keeps (name -> key -> value): created for the run,
    # deleted after it whatever happened (`mizzen data forget`'s subject on a cluster)
    run_secrets: Mapping[str, Mapping[str, str]] = field(
        default_factory=dict, metadata={"flag": "a one-off secret"}
    )

    def given(self) -> list[str]:
        """The options set (not at their default)."""
        default = Options()
        return [f.name for f in fields(self) if getattr(self, f.name) != getattr(default, f.name)]


FLAGS = {f.name: f.metadata["flag"] for f in fields(Options)}

# What each target does (operation -> the options it honours), here rather than in the
# targets' modules so a refusal can name the target that would take the flag without
# importing the other target.
ACCEPTS: dict[str, dict[str, frozenset[str]]] = {
    "local": {
        "run": frozenset({"sets", "parallel"}),
        "up": frozenset(),
        "logs": frozenset({"follow", "step"}),
        "status": frozenset(),
    },
    "kubernetes": {
        "run": frozenset(
            {"image", "namespace", "context", "sets", "pending_timeout", "run_secrets"}
        ),
        "logs": frozenset({"namespace", "context", "follow"}),
        "status": frozenset({"namespace", "context"}),
        "delete": frozenset({"namespace", "context"}),
    },
}


@dataclass
class WorkloadStatus:
    """One workload, as `mizzen status` shows it."""

    workload: str
    kind: str
    phase: str
    age: float | None
    restarts: int
    last_run: float | None
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return self.__dict__.copy()


Confirm = Callable[[str], bool]


class Target(ABC):
    name: ClassVar[str]
    # operation -> the options it honours
    accepts: ClassVar[dict[str, frozenset[str]]]

    def check(self, operation: str, options: Options, command: str | None = None) -> None:
        """Refuse what this target does not do, or options it would ignore (`command`: the
        user's command when it is not `mizzen <operation>`, for the sentence)."""
        if operation not in self.accepts:
            raise NotSupportedError(
                f"`mizzen {operation}`", self.name, hint=self.instead(operation)
            )
        ignored = [o for o in options.given() if o not in self.accepts[operation]]
        if ignored:
            flags = ", ".join(FLAGS[o] for o in ignored)
            elsewhere = [
                t
                for t, ops in ACCEPTS.items()
                if t != self.name and set(ignored) <= ops.get(operation, frozenset())
            ]
            raise UsageError(
                f"{flags} {'does' if len(ignored) == 1 else 'do'} not apply to "
                f"`mizzen {command or operation}` "
                f"on the {self.name} target",
                hint=f"it is for --target {' or '.join(elsewhere)}" if elsewhere else "",
            )

    def instead(self, operation: str) -> str:
        """What to do instead of an operation this target does not do."""
        return ""

    @abstractmethod
    def run(self, plan: Plan, workload: str, options: Options) -> int:
        """Run one job or pipeline to completion; the exit code (0 ok, 1 failed)."""

    def up(self, plan: Plan, names: list[str], options: Options) -> int:
        self.check("up", options)
        raise NotImplementedError  # pragma: no cover - check() refused it

    def logs(self, plan: Plan, ref: str, options: Options) -> int:
        self.check("logs", options)
        raise NotImplementedError  # pragma: no cover

    def status(self, plan: Plan, workloads: list[str], options: Options) -> list[WorkloadStatus]:
        self.check("status", options)
        raise NotImplementedError  # pragma: no cover

    def delete(self, plan: Plan, options: Options, confirm: Confirm) -> int:
        self.check("delete", options)
        raise NotImplementedError  # pragma: no cover

    def place(self, plan: Plan, options: Options) -> str:
        """Where this target runs the plan, as `mizzen status` titles it."""
        return "on this machine"


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
