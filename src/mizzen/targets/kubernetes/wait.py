"""Waiting on the cluster, never silently: every wait ends with `available`, with the
sentence that says why it is stuck (as soon as waiting cannot help), or with a timeout
that says what it waited for and the last reason seen."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from mizzen.targets.kubernetes import naming
from mizzen.targets.kubernetes.cluster import Cluster, Obj
from mizzen.targets.kubernetes.status import Why, pod_why


def deployment_ready(obj: Obj) -> bool:
    spec, status = obj.get("spec", {}), obj.get("status", {})
    want = spec.get("replicas", 1)
    if status.get("observedGeneration", 0) < obj.get("metadata", {}).get("generation", 0):
        return False
    return (
        status.get("updatedReplicas", 0) >= want
        and status.get("availableReplicas", 0) >= want
        and status.get("replicas", 0) <= want
    )


@dataclass
class Late:
    name: str  # Deployment name
    reason: str  # why, in one sentence ("" when nothing was seen)
    stuck: bool  # gave up before the timeout: waiting would not have helped


def pods_why(
    cluster: Cluster, selector: str, events: list[Obj], volumes: dict[str, str] | None = None
) -> Why | None:
    """The first thing wrong with the pods `selector` matches (stuck reasons first)."""
    now = time.time()

    def logs(pod: str, container: str) -> list[str]:
        try:
            return list(cluster.pod_logs(pod, cluster.namespace, container, tail=5))
        except Exception:
            return []

    found = [
        why
        for pod in cluster.list("v1", "Pod", cluster.namespace, selector)
        if (why := pod_why(pod, events, now, logs, volumes)) is not None
    ]
    return next((w for w in found if w.stuck), found[0] if found else None)


def wait_for_deployments(
    cluster: Cluster,
    objects: list[Obj],
    *,
    timeout: float = 300,
    interval: float = 2,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    report: Callable[[str], None] = lambda line: None,
    volumes: dict[str, str] | None = None,
) -> list[Late]:
    """Follow Deployments until available; return those that did not make it."""
    pending = {o["metadata"]["name"]: o for o in objects if o["kind"] == "Deployment"}
    said: dict[str, str] = {}
    late: list[Late] = []
    deadline = clock() + timeout
    while pending:
        events = cluster.list("v1", "Event", cluster.namespace)
        for name, obj in sorted(pending.items()):
            live = cluster.get("apps/v1", "Deployment", name, cluster.namespace)
            if live is not None and deployment_ready(live):
                del pending[name]
                ready = live.get("status", {}).get("availableReplicas", 0)
                report(f"{name}: available ({ready} ready)")
                continue
            labels = obj["metadata"].get("labels", {})
            selector = naming.selector(labels.get(naming.PROJECT, ""), labels.get(naming.WORKLOAD))
            why = pods_why(cluster, selector, events, volumes)
            if why is None:
                continue
            if said.get(name) != why.text:
                said[name] = why.text
                report(f"{name}: {why.text}")
            if why.stuck:
                del pending[name]
                late.append(Late(name, why.text, stuck=True))
        if not pending or clock() >= deadline:
            break
        sleep(interval)
    late += [Late(name, said.get(name, ""), stuck=False) for name in sorted(pending)]
    return late
