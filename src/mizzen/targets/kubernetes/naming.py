"""Names and labels of the objects mizzen renders: predictable, valid, stable."""

from __future__ import annotations

import hashlib
import re

MANAGED_BY = "app.kubernetes.io/managed-by"
PART_OF = "app.kubernetes.io/part-of"
APP_NAME = "app.kubernetes.io/name"
COMPONENT = "app.kubernetes.io/component"
PROJECT = "mizzen.io/project"
WORKLOAD = "mizzen.io/workload"
VOLUME = "mizzen.io/volume"
NAMESPACE = "mizzen.io/namespace"  # on cluster-scoped objects: the namespace they serve
REVISION = "mizzen.io/revision"
ROLE = "mizzen.io/role"  # "release" for revision records, "run" for one-off runs
FIELD_MANAGER = "mizzen"
CONFIG_DIGEST = "mizzen.io/config-digest"

CRONJOB_NAME_LIMIT = 52  # a CronJob's name leaves room for the suffix of the Jobs it starts

_INVALID = re.compile(r"[^a-z0-9-]+")


def object_name(*parts: str, limit: int = 63) -> str:
    """`drives-train`; shortened with a hash suffix when longer than `limit` (CronJob: 52)."""
    name = _INVALID.sub("-", "-".join(p for p in parts if p).lower()).strip("-")
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return name[: limit - 7].rstrip("-") + "-" + digest


def project_labels(project: str) -> dict[str, str]:
    return {MANAGED_BY: "mizzen", PART_OF: project, PROJECT: project}


def workload_labels(project: str, workload: str) -> dict[str, str]:
    return {**project_labels(project), APP_NAME: workload, WORKLOAD: workload}


def selector(project: str, workload: str | None = None) -> str:
    """A label selector for the project's objects (or one workload's)."""
    parts = [f"{MANAGED_BY}=mizzen", f"{PROJECT}={project}"]
    if workload:
        parts.append(f"{WORKLOAD}={workload}")
    return ",".join(parts)


def secret_name(project: str, secret: str, existing: str | None = None) -> str:
    """The Secret a spec secret lives in: the `existingSecret`, else `<project>-<secret>`."""
    return existing or object_name(project, secret, limit=253)


def config_map_name(project: str) -> str:
    return object_name(project, "config", limit=253)


def service_account_name(project: str, role: str | None = None) -> str:
    """`<project>` for workload pods (no API token); `<project>-spark` for Spark drivers and
    `<project>-workflow` for Argo's executor, the only pods that talk to the API."""
    return object_name(project, role or "", limit=253)
