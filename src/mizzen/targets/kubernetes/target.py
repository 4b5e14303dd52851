"""`mizzen run WORKLOAD --target kubernetes`: a one-off run in the cluster from the same Plan.

The workload's object is rendered exactly as a release would (a Job for a job, the
SparkApplication / PyTorchJob / TFJob / Workflow for the other kinds; a scheduled job runs
its CronJob's Job template once), created under a fresh name, its pods' logs streamed
(prefixed), and its end state turned into the exit code.
"""

from __future__ import annotations

import copy
import os
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from mizzen import contract
from mizzen.errors import EXIT_CANCELLED, EXIT_FAILED, EXIT_OK, UsageError
from mizzen.plan.model import Plan
from mizzen.targets.base import ACCEPTS, Confirm, Options, Target, WorkloadStatus
from mizzen.targets.kubernetes import naming
from mizzen.targets.kubernetes.cluster import Cluster, Obj
from mizzen.targets.kubernetes.render import render
from mizzen.targets.kubernetes.status import job_why, pod_why

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


def one_off(plan: Plan, workload: str, run: str, sets: dict[str, str] | None = None) -> Obj:
    """The object a one-off run creates, from the same render as a release (its kind turns a
    scheduled form into its one-off twin). Config keys overridden with `--set` become
    literal values (the released ConfigMap holds the old ones) and reach `mizzen exec` as
    `MIZZEN_SETS`, which records them as params."""
    from mizzen.kinds import kind

    objects = [
        o for o in render(plan) if o["metadata"].get("labels", {}).get(naming.WORKLOAD) == workload
    ]
    if not objects:
        raise UsageError(f"no job or pipeline {workload!r}", hint="see `mizzen validate`")
    obj = kind(plan.workload(workload).kind).one_off(copy.deepcopy(objects[0]))
    meta = obj["metadata"]
    meta["generateName"] = naming.object_name(plan.project, workload, limit=50) + "-"
    meta.pop("name", None)
    meta.pop("annotations", None)
    meta["labels"] = {**meta.get("labels", {}), naming.ROLE: "run", RUN: run}
    _label_pods(obj, run)
    if sets:
        _override_config(obj, sets)
    return obj


def _containers(node: Any) -> list[Obj]:
    """Every container spec (and Spark driver/executor side) inside an object."""
    found: list[Obj] = []
    if isinstance(node, dict):
        if isinstance(node.get("env"), list) and ("image" in node or "cores" in node):
            found.append(node)
        for value in node.values():
            found += _containers(value)
    elif isinstance(node, list):
        for value in node:
            found += _containers(value)
    return found


def _override_config(obj: Obj, sets: dict[str, str]) -> None:
    import json

    for container in _containers(obj):
        env = [e for e in container["env"] if e.get("name") != contract.SETS]
        for var in env:
            if var.get("name") in sets:
                var.pop("valueFrom", None)
                var["value"] = sets[var["name"]]
        env.append({"name": contract.SETS, "value": json.dumps(sets, sort_keys=True)})
        container["env"] = env


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
    """EXIT_OK / EXIT_FAILED once the run object is finished, None while it goes on: its
    workload kind reads it."""
    from mizzen.kinds import kind, workload_kinds

    for k in workload_kinds():
        if any(obj["kind"] == controller for _, controller in k.controllers):
            return k.outcome(obj)
    return kind("command").outcome(obj)


class GaveUp(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def follow_run(
    cluster: Cluster,
    created: Obj,
    run: str,
    *,
    echo: Callable[[str], None] = click.echo,
    sleep: Callable[[float], None] = time.sleep,
    interval: float = 2.0,
    pending_timeout: float = 300.0,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Stream the logs of the run's pods as they start, then return the run's exit code.

    Never waits silently: what keeps a pod from starting is said as soon as it is known;
    a reason waiting cannot fix (no such image, a missing Secret key, a Job that may not
    create pods) raises `GaveUp` at once, and pods still not running after
    `pending_timeout` seconds raise it with the last reason seen."""
    ns = cluster.namespace
    meta = created["metadata"]
    streamed: set[str] = set()
    said: dict[str, str] = {}
    waiting_since = clock()
    last = "no pod was created"
    while True:
        events = cluster.list("v1", "Event", ns)
        pods = cluster.list("v1", "Pod", ns, f"{RUN}={run}")
        many = len(pods) > 1 or created["kind"] != "Job"
        pending = False
        for pod in sorted(pods, key=lambda p: p["metadata"].get("creationTimestamp", "")):
            name = pod["metadata"]["name"]
            if name in streamed:
                continue
            if pod.get("status", {}).get("phase") not in ("Running", *_DONE_PHASES):
                pending = True
                why = pod_why(pod, events, time.time())
                if why is None:
                    continue
                last = why.text
                if said.get(name) != why.text:
                    said[name] = why.text
                    echo(f"{name}: {why.text}")
                if why.stuck:
                    raise GaveUp(why.text)
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
        if created["kind"] == "Job":
            why = job_why(live, events)
            if why is not None and why.stuck:
                raise GaveUp(why.text)
        if pending or not pods:
            if clock() - waiting_since >= pending_timeout:
                raise GaveUp(f"not running after {pending_timeout:g}s: {last}")
        else:
            waiting_since = clock()
        sleep(interval)


def check_released(cluster: Cluster, obj: Obj) -> list[str]:
    """What a one-off run's pods need that only a release creates: its ServiceAccount, the
    ConfigMap and Secrets its containers read (one sentence each)."""
    ns = cluster.namespace
    problems: list[str] = []
    wanted: dict[tuple[str, str], set[str]] = {}
    accounts = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("serviceAccountName", "serviceAccount"):
                if isinstance(node.get(key), str):
                    accounts.add(node[key])
            for ref, kind in (("configMapKeyRef", "ConfigMap"), ("secretKeyRef", "Secret")):
                if isinstance(node.get(ref), dict):
                    wanted.setdefault((kind, node[ref]["name"]), set()).add(node[ref]["key"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(obj)
    for name in sorted(accounts):
        if cluster.get("v1", "ServiceAccount", name, ns) is None:
            problems.append(f"the ServiceAccount {name} does not exist in namespace {ns}")
    for (kind, name), keys in sorted(wanted.items()):
        live = cluster.get("v1", kind, name, ns)
        if live is None:
            problems.append(f"the {kind} {name} does not exist in namespace {ns}")
            continue
        have = set(live.get("data") or {})
        if keys - have:
            problems.append(f"the {kind} {name} has no key {', '.join(sorted(keys - have))}")
    return problems


class KubernetesTarget(Target):
    """Plain Kubernetes objects (and operators' where a kind needs one): released with
    `mizzen release`, run once with `mizzen run --target kubernetes`."""

    name = "kubernetes"
    accepts = ACCEPTS["kubernetes"]

    def __init__(
        self,
        cluster: Cluster | None = None,
        echo: Callable[[str], None] = click.echo,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.cluster = cluster
        self.echo = echo
        self.sleep = sleep

    def instead(self, operation: str) -> str:
        return {
            "up": "in a cluster, services run as Deployments: `mizzen release`, then `mizzen status`"
        }.get(operation, "")

    def _connect(self, plan: Plan, options: Options) -> tuple[Cluster, Plan]:
        if self.cluster is None:
            return connect(plan, options.context, options.namespace)
        ns = replace(plan.kubernetes, namespace=self.cluster.namespace)
        return self.cluster, replace(plan, kubernetes=ns)

    def run(self, plan: Plan, workload: str, options: Options | None = None) -> int:
        options = options or Options()
        self.check("run", options)
        image, notes = resolve_image(plan, options.image, strict=True)
        cluster, plan = self._connect(replace(plan, image=image), options)
        for note in notes:
            self.echo(f"warning: {note}")
        prepare_host_paths(plan, self.echo)
        run = secrets.token_hex(4)
        obj = one_off(plan, workload, run, dict(options.sets))
        made: list[str] = []
        try:
            for name, data in options.run_secrets.items():
                cluster.create(run_secret(plan, cluster.namespace, name, data, run))
                made.append(name)
            return self._run(cluster, plan, workload, obj, run, options)
        finally:
            for name in made:
                cluster.delete("v1", "Secret", name, cluster.namespace)

    def _run(
        self, cluster: Cluster, plan: Plan, workload: str, obj: Obj, run: str, options: Options
    ) -> int:
        missing = check_released(cluster, obj)
        if missing:
            raise UsageError(
                f"{workload} cannot run in namespace {cluster.namespace} yet: "
                + "; ".join(missing),
                hint=f"release the project there first: mizzen release -n {cluster.namespace}"
                + (f" --env {plan.env}" if plan.env else ""),
            )
        created = cluster.create(obj)
        what = f"{created['kind']}/{created['metadata']['name']}"
        self.echo(f"started {what} in namespace {cluster.namespace}")
        try:
            code = follow_run(
                cluster,
                created,
                run,
                echo=self.echo,
                sleep=self.sleep,
                pending_timeout=options.pending_timeout or 300.0,
            )
        except GaveUp as stuck:
            self._remove(cluster, created)
            self.echo(f"{what} gave up: {stuck.reason} (deleted it)")
            return EXIT_FAILED
        except KeyboardInterrupt:
            self._remove(cluster, created)
            self.echo(f"{what} cancelled (deleted it)")
            return EXIT_CANCELLED
        self.echo(f"{what} {'succeeded' if code == EXIT_OK else 'failed'}")
        return code

    def logs(self, plan: Plan, ref: str, options: Options) -> int:
        """Every pod and container of the workload, prefixed; the archived logs of its
        latest run once the pods are gone."""
        self.check("logs", options)
        from mizzen.targets.kubernetes.logs import workload_logs

        cluster, plan = self._connect(plan, options)
        found = workload_logs(cluster, plan, ref, follow=options.follow, echo=self.echo)
        return 1 if found == "none" else 0  # the reason is printed already

    def status(self, plan: Plan, workloads: list[str], options: Options) -> list[WorkloadStatus]:
        self.check("status", options)
        from mizzen.targets.kubernetes.status import collect

        cluster, plan = self._connect(plan, options)
        return collect(cluster, plan, time.time(), workloads or None)

    def place(self, plan: Plan, options: Options) -> str:
        """Where `status` looks: the namespace (and context) the plan resolves to."""
        from mizzen.targets.kubernetes.client import select_cluster

        if self.cluster is not None:
            return f"in namespace {self.cluster.namespace}"
        ctx, ns = select_cluster(options.context, options.namespace, plan.kubernetes)
        return f"in namespace {ns}" + (f" (context {ctx})" if ctx else "")

    def delete(self, plan: Plan, options: Options, confirm: Confirm) -> int:
        """Everything of the project in the namespace (claims that hold data are kept)."""
        self.check("delete", options)
        from mizzen.targets.kubernetes.release import delete_all, project_objects

        cluster, plan = self._connect(plan, options)
        doomed, kept, notes = project_objects(cluster, plan.project)
        for message in notes:
            self.echo(f"warning: {message}")
        if not doomed:
            self.echo(f"nothing of {plan.project} in namespace {cluster.namespace}")
            return 0
        question = (
            f"delete {len(doomed)} objects of {plan.project} from namespace {cluster.namespace} "
            f"(context {cluster.context or 'current'})?"
        )
        if not confirm(question):
            return 1
        for name in delete_all(cluster, doomed):
            self.echo(f"deleted {name}")
        for obj in kept:
            self.echo(
                f"kept {obj['kind']}/{obj['metadata']['name']} (holds data; delete it with kubectl if you mean it)"
            )
        return 0

    @staticmethod
    def _remove(cluster: Cluster, created: Obj) -> None:
        meta = created["metadata"]
        cluster.delete(created["apiVersion"], created["kind"], meta["name"], cluster.namespace)


def run_secret(plan: Plan, namespace: str, name: str, data: Mapping[str, str], run: str) -> Obj:
    labels = {**naming.project_labels(plan.project), "mizzen.io/one-off-run": run}
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "type": "Opaque",
        "stringData": dict(data),
    }


def _hand_over(path: Path, uid: int) -> None:
    """chown -R to `uid`, skipping what it already owns (as root only)."""
    for root, dirs, files in os.walk(path):
        for name in [".", *dirs, *files]:
            item = os.path.join(root, name)
            if os.lstat(item).st_uid != uid:
                os.lchown(item, uid, uid)


def prepare_host_paths(plan: Plan, echo: Callable[[str], None] = click.echo) -> None:
    """Folders pods mount from the node (`file://` stores, scratch paths) on a single-node
    cluster, where the node's disk is this machine's: created here first, owned by the
    pods' user (`kubernetes.runAsUser`); the kubelet would create them root-owned."""
    from mizzen.targets.kubernetes.volumes import host_paths, plan_mounts

    uid = plan.kubernetes.run_as_user
    stores = [plan.store, *(d.store for d in plan.datasets.values())]
    for folder in host_paths(plan_mounts(plan), stores):
        path = Path(folder)
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            echo(f"warning: cannot create {path} for the pods' hostPath volume: {exc}")
            continue
        if os.geteuid() == 0:
            _hand_over(path, uid)
        elif path.stat().st_uid != uid and not os.access(path, os.W_OK):
            echo(
                f"warning: pods run as uid {uid} and may not write to {path} (owned by uid "
                f"{path.stat().st_uid}): set kubernetes.runAsUser: {os.getuid()}, or make it writable"
            )


def dashboard_view(plan: Plan, now: float | None = None) -> dict[str, Any]:
    """Releases and workload status for the dashboard (raises when the cluster is unreachable)."""
    from mizzen.targets.kubernetes.revisions import summary
    from mizzen.targets.kubernetes.status import collect

    cluster, plan = connect(plan)
    rows = collect(cluster, plan, time.time() if now is None else now)
    return {"revisions": summary(cluster, plan.project), "status": [r.to_dict() for r in rows]}
