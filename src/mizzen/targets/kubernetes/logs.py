"""Logs of a workload in the cluster: every pod and container, prefixed; when the pods are
gone, the archived logs of its latest run in the project store."""

from __future__ import annotations

from collections.abc import Callable

import click

from mizzen.plan.model import Plan
from mizzen.targets.kubernetes import naming
from mizzen.targets.kubernetes.cluster import Cluster


def workload_logs(
    cluster: Cluster,
    plan: Plan,
    workload: str,
    *,
    follow: bool = False,
    echo: Callable[[str], None] = click.echo,
) -> str:
    """Print the logs; return where they came from ("pods", "store" or "none")."""
    pods = cluster.list("v1", "Pod", cluster.namespace, naming.selector(plan.project, workload))
    pods = sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", ""))
    if pods:
        for pod in pods:
            name = pod["metadata"]["name"]
            for container in pod.get("spec", {}).get("containers", []):
                prefix = f"{name}/{container['name']} | "
                for line in cluster.pod_logs(
                    name, cluster.namespace, container["name"], follow=follow
                ):
                    echo(prefix + line)
        return "pods"
    return archived_logs(plan, workload, echo=echo)


def archived_logs(plan: Plan, workload: str, *, echo: Callable[[str], None] = click.echo) -> str:
    if plan.store is None:
        echo(f"no pods of {workload} and no `store:` in the spec to read archived run logs from")
        return "none"
    from pathlib import Path

    from mizzen.storage.project import open_ref
    from mizzen.storage.runs import RunStore

    runs = RunStore(open_ref(plan.store, root=Path(plan.root), env=plan.env))
    latest = runs.list(workload, limit=1)
    if not latest:
        echo(f"no pods of {workload} and no recorded run in {plan.store.url}")
        return "none"
    record = latest[0]
    echo(f"(pods are gone: archived logs of run {record.id}, {record.status})")
    steps = [s.name for s in record.steps] or [workload]
    for step in steps:
        for line in runs.log(record, step).decode("utf-8", "replace").splitlines():
            echo(f"{step} | {line}" if len(steps) > 1 else line)
    return "store"
