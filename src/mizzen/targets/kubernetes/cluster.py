"""The one small interface release, status and run logic talk to a cluster through.

`client.KubeCluster` implements it with the official `kubernetes` client; tests use an
in-memory fake. Objects are plain dicts as the API returns them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any

from mizzen.errors import EXIT_FAILED, MizzenError

Obj = dict[str, Any]


class ClusterError(MizzenError):
    """The API server refused or could not be reached; `status` is the HTTP status (0: none)."""

    exit_code = EXIT_FAILED

    def __init__(self, message: str, *, status: int = 0, reason: str = "", hint: str = "") -> None:
        super().__init__(message, hint=hint)
        self.status = status
        self.reason = reason


class ReleaseError(MizzenError):
    """Pre-flight or dry-run found problems: one line each; nothing was applied."""

    exit_code = EXIT_FAILED

    def __init__(self, title: str, problems: list[str], warnings: list[str] | None = None) -> None:
        self.problems = problems
        self.warnings = warnings or []
        text = title + ":\n" + "\n".join(f"  - {p}" for p in problems)
        if self.warnings:
            text += "\nalso:\n" + "\n".join(f"  - {w}" for w in self.warnings)
        super().__init__(text)


class Cluster(ABC):
    context: str | None
    namespace: str

    @abstractmethod
    def version(self) -> str:
        """The server version; raises ClusterError when the cluster cannot be reached."""

    @abstractmethod
    def has_kind(self, api_version: str, kind: str) -> bool:
        """Whether the API serves this kind (for operator kinds: whether the CRD is installed)."""

    @abstractmethod
    def get(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> Obj | None: ...

    @abstractmethod
    def list(
        self,
        api_version: str,
        kind: str,
        namespace: str | None = None,
        label_selector: str | None = None,
    ) -> list[Obj]: ...

    @abstractmethod
    def apply(self, obj: Obj, *, dry_run: bool = False) -> Obj:
        """Server-side apply with field manager `mizzen` (forcing conflicts)."""

    @abstractmethod
    def create(self, obj: Obj) -> Obj: ...

    @abstractmethod
    def delete(
        self, api_version: str, kind: str, name: str, namespace: str | None = None
    ) -> None: ...

    @abstractmethod
    def can_i(self, verb: str, group: str, resource: str, namespace: str | None) -> bool:
        """A SelfSubjectAccessReview."""

    @abstractmethod
    def pod_logs(
        self,
        pod: str,
        namespace: str,
        container: str | None = None,
        *,
        follow: bool = False,
        tail: int | None = None,
    ) -> Iterator[str]:
        """Log lines (without trailing newline)."""


# kind -> (plural, namespaced); enough for permissions checks and pruning.
KINDS: dict[str, tuple[str, bool]] = {
    "Namespace": ("namespaces", False),
    "ServiceAccount": ("serviceaccounts", True),
    "Role": ("roles", True),
    "RoleBinding": ("rolebindings", True),
    "ConfigMap": ("configmaps", True),
    "Secret": ("secrets", True),
    "PersistentVolume": ("persistentvolumes", False),
    "PersistentVolumeClaim": ("persistentvolumeclaims", True),
    "Job": ("jobs", True),
    "CronJob": ("cronjobs", True),
    "Deployment": ("deployments", True),
    "Service": ("services", True),
    "HorizontalPodAutoscaler": ("horizontalpodautoscalers", True),
    "SparkApplication": ("sparkapplications", True),
    "ScheduledSparkApplication": ("scheduledsparkapplications", True),
    "PyTorchJob": ("pytorchjobs", True),
    "TFJob": ("tfjobs", True),
    "Workflow": ("workflows", True),
    "CronWorkflow": ("cronworkflows", True),
    "PrometheusRule": ("prometheusrules", True),
    "ServiceMonitor": ("servicemonitors", True),
    "Pod": ("pods", True),
    "Node": ("nodes", False),
    "CSIDriver": ("csidrivers", False),
    "Event": ("events", True),
}

# The kinds a release makes besides the workloads' own (the kinds say theirs), in the order
# they are applied; `mizzen delete` removes them in reverse, after the workloads.
SUPPORT_KINDS: list[tuple[str, str]] = [
    ("v1", "ServiceAccount"),
    ("rbac.authorization.k8s.io/v1", "Role"),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"),
    ("v1", "ConfigMap"),
    ("v1", "Secret"),
    ("v1", "PersistentVolume"),
    ("v1", "PersistentVolumeClaim"),
    ("v1", "Service"),
    ("autoscaling/v2", "HorizontalPodAutoscaler"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
]


def operators() -> dict[str, str]:
    """API group -> the operator to install for it, as the workload kinds say."""
    from mizzen.kinds import workload_kinds

    return {k.operator: k.installs for k in workload_kinds() if k.operator}


# Groups whose objects are extras: left out (with a warning) where the operator is missing.
OPTIONAL_OPERATORS = {
    "monitoring.coreos.com": "prometheus-operator (kube-prometheus-stack)",
}


def namespaced(kind: str) -> bool:
    return KINDS.get(kind, ("", True))[1]


def group_of(api_version: str) -> str:
    return api_version.rsplit("/", 1)[0] if "/" in api_version else ""


def key_of(obj: Obj) -> tuple[str, str, str, str]:
    """Identity of an object: (group, kind, namespace, name)."""
    meta = obj["metadata"]
    namespaced = KINDS.get(obj["kind"], ("", True))[1]
    return (
        group_of(obj["apiVersion"]),
        obj["kind"],
        meta.get("namespace", "") if namespaced else "",
        meta["name"],
    )


def describe(obj: Obj) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"
