"""`mizzen run WORKLOAD --target kubernetes`: a one-off run in the cluster from the same Plan.

The workload's object is rendered exactly as a release would (a Job for a job, the
SparkApplication / PyTorchJob / TFJob / Workflow for the other kinds; a scheduled job runs
its CronJob's Job template once), created under a fresh name, its pods' logs streamed
(prefixed), and its end state turned into the exit code.
"""

from __future__ import annotations

import copy
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from mizzen.errors import EXIT_FAILED, EXIT_OK, UsageError
from mizzen.plan.model import Plan
from mizzen.targets.base import Target
from mizzen.targets.kubernetes import naming
from mizzen.targets.kubernetes.cluster import Cluster, Obj
from mizzen.targets.kubernetes.render import render
from mizzen.targets.kubernetes.status import pod_reason

RUN = "mizzen.io/run"
_DONE_PHASES = ("Succeeded", "Failed")


def resolve_image(plan: Plan, override: str | None, *, strict: bool) -> tuple[str, list[str]]:
    """The image reference to render with, and warnings.

    `--image` wins; else the pinned digest of the build of git HEAD (or the newest build);
    else `repository:<git short sha>` with a warning (render) or an error (release, run)."""
    from mizzen.targets.kubernetes.render import check_image

    if override:
        return check_image(override, "--image"), []
    repo = plan.image
    if not repo:
        raise UsageError(
            "the spec has no `image:` to run in the cluster",
            hint="add `image: {repository: registry.example.com/team/app}` or pass --image REF",
        )
    if "@" in repo or ":" in repo.rsplit("/", 1)[-1]:
        return check_image(repo, "image"), []
    root = Path(plan.root)
    from mizzen.build.records import resolve_build

    found = resolve_build(root, repo)
    pinned = found[0].pinned if found is not None else None  # pushed builds carry a digest
    if found is not None and pinned is not None:
        return pinned, [found[1]] if found[1] else []
    hint = "run `mizzen build --push`, or pass --image REF"
    if strict:
        raise UsageError(f"no pushed image of {repo} is recorded for this project", hint=hint)
    from mizzen.build.tags import read_git_state

    state = read_git_state(root)
    if state is None:
        raise UsageError(f"no pushed image of {repo} and no git commit to tag one from", hint=hint)
    ref = f"{repo}:{state.short}"
    return ref, [
        f"no pushed build of {repo} is recorded: rendered {ref}, which may not exist ({hint})"
    ]


def connect(
    plan: Plan, context: str | None = None, namespace: str | None = None
) -> tuple[Cluster, Plan]:
    """The cluster to use and the plan with its namespace settled."""
    from mizzen.targets.kubernetes.client import KubeCluster, select_cluster

    ctx, ns = select_cluster(context, namespace, plan.kubernetes)
    plan = replace(plan, kubernetes=replace(plan.kubernetes, namespace=ns, context=ctx))
    return KubeCluster(ctx, ns), plan


_SCHEDULED = {
    "CronWorkflow": ("Workflow", "workflowSpec"),
    "ScheduledSparkApplication": ("SparkApplication", "template"),
}


def one_off(plan: Plan, workload: str, run: str) -> Obj:
    """The object a one-off run creates, from the same render as a release."""
    objects = [
        o for o in render(plan) if o["metadata"].get("labels", {}).get(naming.WORKLOAD) == workload
    ]
    if not objects:
        raise UsageError(f"no job or pipeline {workload!r}", hint="see `mizzen validate`")
    obj = copy.deepcopy(objects[0])
    kind = obj["kind"]
    if kind == "CronJob":
        template = obj["spec"]["jobTemplate"]
        obj = {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {**template["metadata"], "namespace": obj["metadata"]["namespace"]},
            "spec": template["spec"],
        }
    elif kind in _SCHEDULED:  # the one-off twin of a scheduled kind
        once, field = _SCHEDULED[kind]
        obj = {
            "apiVersion": obj["apiVersion"],
            "kind": once,
            "metadata": {
                "namespace": obj["metadata"]["namespace"],
                "labels": obj["metadata"]["labels"],
            },
            "spec": obj["spec"][field],
        }
    elif kind in ("Deployment", "Service", "HorizontalPodAutoscaler"):
        raise UsageError(
            f"{workload!r} is a service: it is released, not run",
            hint="`mizzen release`, then `mizzen status`",
        )
    meta = obj["metadata"]
    meta["generateName"] = naming.object_name(plan.project, workload, limit=50) + "-"
    meta.pop("name", None)
    meta.pop("annotations", None)
    meta["labels"] = {**meta.get("labels", {}), naming.ROLE: "run", RUN: run}
    _label_pods(obj, run)
    return obj


def _label_pods(node: Any, run: str) -> None:
    if isinstance(node, dict):
        spec = node.get("spec")
        if (
            isinstance(node.get("metadata"), dict)
            and isinstance(spec, dict)
            and "containers" in spec
        ):
            node["metadata"].setdefault("labels", {})[RUN] = run
        if isinstance(node.get("podMetadata"), dict):
            node["podMetadata"].setdefault("labels", {})[RUN] = run
        for side in ("driver", "executor"):
            if isinstance(node.get(side), dict) and "cores" in node[side]:
                node[side].setdefault("labels", {})[RUN] = run
        for value in node.values():
            _label_pods(value, run)
    elif isinstance(node, list):
        for value in node:
            _label_pods(value, run)


def outcome(obj: Obj) -> int | None:
    """EXIT_OK / EXIT_FAILED once the run object is finished, None while it goes on."""
    status = obj.get("status") or {}
    kind = obj["kind"]
    if kind == "Job":
        if status.get("succeeded"):
            return EXIT_OK
        if any(
            c.get("type") == "Failed" and c.get("status") == "True"
            for c in status.get("conditions", [])
        ):
            return EXIT_FAILED
    elif kind == "Workflow":
        phase = status.get("phase")
        if phase == "Succeeded":
            return EXIT_OK
        if phase in ("Failed", "Error"):
            return EXIT_FAILED
    elif kind == "SparkApplication":
        state = (status.get("applicationState") or {}).get("state")
        if state == "COMPLETED":
            return EXIT_OK
        if state in ("FAILED", "SUBMISSION_FAILED", "INVALIDATING"):
            return EXIT_FAILED
    else:
        for cond in status.get("conditions", []):
            if cond.get("status") == "True" and cond.get("type") in ("Succeeded", "Failed"):
                return EXIT_OK if cond["type"] == "Succeeded" else EXIT_FAILED
    return None


def follow_run(
    cluster: Cluster,
    created: Obj,
    run: str,
    *,
    echo: Callable[[str], None] = click.echo,
    sleep: Callable[[float], None] = time.sleep,
    interval: float = 2.0,
) -> int:
    """Stream the logs of the run's pods as they start, then return the run's exit code."""
    ns = cluster.namespace
    meta = created["metadata"]
    streamed: set[str] = set()
    said: dict[str, str] = {}
    while True:
        pods = cluster.list("v1", "Pod", ns, f"{RUN}={run}")
        many = len(pods) > 1 or created["kind"] != "Job"
        for pod in sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", "")):
            name = pod["metadata"]["name"]
            if name in streamed:
                continue
            phase = pod.get("status", {}).get("phase")
            started = phase == "Running" or phase in _DONE_PHASES
            if not started:
                reason = pod_reason(pod, cluster.list("v1", "Event", ns), time.time())
                if reason and said.get(name) != reason:
                    said[name] = reason
                    echo(f"{name}: {reason}")
                continue
            streamed.add(name)
            for container in pod.get("spec", {}).get("containers", []):
                prefix = f"{name}/{container['name']} | " if many else ""
                for line in cluster.pod_logs(name, ns, container["name"], follow=True):
                    echo(prefix + line)
        live = cluster.get(created["apiVersion"], created["kind"], meta["name"], ns)
        if live is None:
            echo(f"{created['kind']}/{meta['name']} was deleted before it finished")
            return EXIT_FAILED
        code = outcome(live)
        if code is not None:
            return code
        sleep(interval)


class KubernetesTarget(Target):
    name = "kubernetes"

    def __init__(
        self, cluster: Cluster | None = None, echo: Callable[[str], None] = click.echo
    ) -> None:
        self.cluster = cluster
        self.echo = echo

    def run(self, plan: Plan, workload: str, **options: Any) -> int:
        image, _ = resolve_image(plan, options.get("image"), strict=True)
        plan = replace(plan, image=image)
        if self.cluster is None:
            cluster, plan = connect(plan, options.get("context"), options.get("namespace"))
        else:
            cluster = self.cluster
            plan = replace(plan, kubernetes=replace(plan.kubernetes, namespace=cluster.namespace))
        run = secrets.token_hex(4)
        created = cluster.create(one_off(plan, workload, run))
        self.echo(
            f"started {created['kind']}/{created['metadata']['name']} in namespace {cluster.namespace}"
        )
        code = follow_run(
            cluster, created, run, echo=self.echo, sleep=options.get("sleep", time.sleep)
        )
        self.echo(
            f"{created['kind']}/{created['metadata']['name']} {'succeeded' if code == EXIT_OK else 'failed'}"
        )
        return code


def dashboard_view(plan: Plan, now: float | None = None) -> dict[str, Any]:
    """Releases and workload status for the dashboard (raises when the cluster is unreachable)."""
    from mizzen.targets.kubernetes.release import summary
    from mizzen.targets.kubernetes.status import collect

    cluster, plan = connect(plan)
    rows = collect(cluster, plan, time.time() if now is None else now)
    return {"revisions": summary(cluster, plan), "status": [r.to_dict() for r in rows]}
