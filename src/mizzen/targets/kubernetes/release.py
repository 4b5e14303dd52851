"""Release: pre-flight, server-side dry-run gate, apply, prune, numbered revisions, rollback.

Everything here talks to the cluster through `cluster.Cluster`, so the logic is tested
against a fake. Secret values come from local sources, live only in memory, and are never
part of a revision record.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from mizzen.errors import UsageError
from mizzen.plan.model import Plan
from mizzen.targets.kubernetes import naming
from mizzen.targets.kubernetes.cluster import (
    KINDS,
    OPERATORS,
    OPTIONAL_OPERATORS,
    PRUNABLE,
    Cluster,
    ClusterError,
    Obj,
    ReleaseError,
    describe,
    group_of,
    key_of,
)
from mizzen.targets.kubernetes.render import on_demand
from mizzen.targets.kubernetes.volumes import AZURE_DRIVER, GCS_DRIVER, S3_DRIVER

KEEP = "mizzen.io/keep"  # annotation: never pruned (claims that hold data)
CSI_NAMES = {
    S3_DRIVER: "Mountpoint for Amazon S3 CSI driver",
    AZURE_DRIVER: "Azure Blob Storage CSI driver",
    GCS_DRIVER: "Cloud Storage FUSE CSI driver",
}
SecretLookup = Callable[[str, str], str | None]  # (spec secret, key) -> local value


@dataclass
class Preflight:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    secrets: list[Obj] = field(default_factory=list)  # Secrets to apply (values in memory)
    keep: list[Obj] = field(default_factory=list)  # live Secrets the release relies on
    create_namespace: bool = False


@dataclass
class Revision:
    number: int
    time: float
    git_sha: str | None
    image: str | None
    status: str
    note: str
    env: str | None
    objects: list[Obj]
    secrets: list[str]
    name: str = ""


@dataclass
class Result:
    revision: int | None
    applied: list[str]
    pruned: list[str]
    warnings: list[str]
    diff: str = ""


# --- pre-flight ------------------------------------------------------------------------


def preflight(
    cluster: Cluster,
    plan: Plan,
    objects: list[Obj],
    local: SecretLookup | None,
    *,
    secret_names: Iterable[str] = (),
) -> Preflight:
    """Every check before anything is touched; each failure is one line.

    `local` looks up secret values for Secrets the release creates; None (rollback) means
    only Secrets already in the cluster can be used (`secret_names` names them)."""
    out = Preflight()
    ns = cluster.namespace
    try:
        cluster.version()
    except ClusterError as exc:
        out.problems.append(
            f"cannot reach the cluster (context {cluster.context or 'default'}): {exc.message}"
        )
        return out
    if cluster.get("v1", "Namespace", ns) is None:
        if plan.kubernetes.create_namespace:
            out.create_namespace = True
            out.warnings.append(f"namespace {ns} does not exist: it will be created")
            if not cluster.can_i("create", "", "namespaces", None):
                out.problems.append(
                    f"namespace {ns} does not exist and you may not create namespaces"
                )
        else:
            out.problems.append(
                f"namespace {ns} does not exist; create it or set `kubernetes: {{createNamespace: true}}`"
            )
    _check_operators(cluster, objects, out)
    if local is not None:
        _check_secrets(cluster, plan, local, out)
    else:
        for name in secret_names:
            if cluster.get("v1", "Secret", name, ns) is None:
                out.problems.append(
                    f"Secret {name} is gone from namespace {ns}; release again to recreate it from local values"
                )
            else:
                out.keep.append(
                    {
                        "apiVersion": "v1",
                        "kind": "Secret",
                        "metadata": {"name": name, "namespace": ns},
                    }
                )
    _check_csi(cluster, objects, out)
    _check_gpus(cluster, objects, out)
    record = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "revision"}}
    _check_permissions(
        cluster, [*(o for o in objects if not on_demand(o)), *out.secrets, record], out
    )
    return out


def _embedded(obj: Obj) -> list[Obj]:
    if obj["kind"] not in ("Workflow", "CronWorkflow"):
        return []
    import yaml

    spec = obj["spec"].get("workflowSpec", obj["spec"])
    return [
        yaml.safe_load(t["resource"]["manifest"])
        for t in spec.get("templates", [])
        if "resource" in t
    ]


def _check_operators(cluster: Cluster, objects: list[Obj], out: Preflight) -> None:
    seen: set[tuple[str, str]] = set()
    for obj in [o for top in objects for o in (top, *_embedded(top))]:
        key = (obj["apiVersion"], obj["kind"])
        group = group_of(obj["apiVersion"])
        if key in seen or group not in OPERATORS:
            continue
        seen.add(key)
        if not cluster.has_kind(*key):
            out.problems.append(
                f"{obj['kind']} ({obj['apiVersion']}) is not installed in the cluster: install {OPERATORS[group]}"
            )


def optional_objects(cluster: Cluster, objects: list[Obj]) -> tuple[list[Obj], list[str]]:
    """Leave out extras (alert rules) whose operator the cluster lacks, saying so."""
    keep: list[Obj] = []
    notes: list[str] = []
    for obj in objects:
        group = group_of(obj["apiVersion"])
        if group in OPTIONAL_OPERATORS and not cluster.has_kind(obj["apiVersion"], obj["kind"]):
            notes.append(
                f"{describe(obj)} not applied: {OPTIONAL_OPERATORS[group]} is not installed "
                "(alerts are still sent from the pods by `mizzen exec`)"
            )
        else:
            keep.append(obj)
    return keep, notes


def used_secrets(plan: Plan) -> dict[str, set[str]]:
    """Spec secret -> keys that some workload (or the store) reads."""
    used: dict[str, set[str]] = {}
    processes = [j.process for j in plan.jobs.values()] + [
        s.process for s in plan.services.values()
    ]
    processes += [st.process for p in plan.pipelines.values() for st in p.steps if st.process]
    for process in processes:
        for ref in process.secret_refs:
            used.setdefault(ref.secret, set()).add(ref.key)
    stores = [plan.store] if plan.store else []
    stores += [m.blob.store for p in processes for m in p.mounts if m.blob is not None]
    for store in stores:
        if store is not None and store.secret:
            used.setdefault(store.secret, set()).update(plan.secrets[store.secret].keys)
    from mizzen.notify import RUN_CONDITIONS, alert_secret_refs

    if any(set(a.on) & set(RUN_CONDITIONS) for a in plan.alerts):  # sent from the pods
        for alert in plan.alerts:
            for secret, key in alert_secret_refs(alert):
                used.setdefault(secret, set()).add(key)
    return used


def _check_secrets(cluster: Cluster, plan: Plan, local: SecretLookup, out: Preflight) -> None:
    ns = cluster.namespace
    for secret, keys in sorted(used_secrets(plan).items()):
        decl = plan.secrets[secret]
        name = naming.secret_name(plan.project, secret, decl.existing_secret)
        live = cluster.get("v1", "Secret", name, ns)
        live_keys = set((live or {}).get("data") or {})
        if decl.existing_secret:
            if live is None:
                out.problems.append(
                    f"Secret {name} (existingSecret of secrets.{secret}) is not in namespace {ns}"
                )
            elif keys - live_keys:
                out.problems.append(
                    f"Secret {name} has no key(s) {', '.join(sorted(keys - live_keys))} (secrets.{secret})"
                )
            continue
        values = {key: local(secret, key) for key in decl.keys}
        missing = sorted(k for k, v in values.items() if v is None)
        if not missing:
            data = {
                k: base64.b64encode(v.encode()).decode() for k, v in values.items() if v is not None
            }
            out.secrets.append(
                {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "metadata": {
                        "name": name,
                        "namespace": ns,
                        "labels": naming.project_labels(plan.project),
                    },
                    "type": "Opaque",
                    "data": data,
                }
            )
        elif live is not None and not (keys - live_keys):
            out.keep.append(live)
            out.warnings.append(
                f"secrets.{secret}: no local value for {', '.join(missing)}; keeping the Secret {name} already in the cluster"
            )
        else:
            from mizzen.plan import secret_env_name

            envs = ", ".join(secret_env_name(secret, k) for k in missing)
            out.problems.append(
                f"secrets.{secret}: no value for {', '.join(missing)} (set {envs} in the environment or in .mizzen/secrets/{plan.env or 'local'}.env), and no Secret {name} in the cluster"
            )


def _check_csi(cluster: Cluster, objects: list[Obj], out: Preflight) -> None:
    drivers = sorted(
        {
            o["spec"]["csi"]["driver"]
            for o in objects
            if o["kind"] == "PersistentVolume" and "csi" in o["spec"]
        }
    )
    for driver in drivers:
        if cluster.get("storage.k8s.io/v1", "CSIDriver", driver) is None:
            out.problems.append(
                f"blob volumes need the CSI driver {driver} ({CSI_NAMES.get(driver, driver)}), which is not installed"
            )


def _containers(obj: Obj) -> list[Obj]:
    found: list[Obj] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("containers"), list):
                found.extend(node["containers"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(obj)
    return found


def _check_gpus(cluster: Cluster, objects: list[Obj], out: Preflight) -> None:
    wants = [
        describe(o)
        for o in objects
        for c in _containers(o)
        if c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu")
    ]
    if not wants:
        return
    nodes = cluster.list("v1", "Node")
    if not any(
        int(n.get("status", {}).get("allocatable", {}).get("nvidia.com/gpu", "0") or 0) > 0
        for n in nodes
    ):
        out.warnings.append(
            f"{', '.join(dict.fromkeys(wants))} request GPUs but no node offers nvidia.com/gpu (they will stay Pending until one does)"
        )


def _check_permissions(cluster: Cluster, objects: list[Obj], out: Preflight) -> None:
    checked: set[tuple[str, str, str]] = set()
    for obj in objects:
        plural, namespaced = KINDS.get(obj["kind"], (obj["kind"].lower() + "s", True))
        group = group_of(obj["apiVersion"])
        for verb in ("get", "create", "patch", "list", "delete"):
            if (verb, group, plural) in checked:
                continue
            checked.add((verb, group, plural))
            ns = cluster.namespace if namespaced else None
            if not cluster.can_i(verb, group, plural, ns):
                where = f" in namespace {ns}" if ns else " (cluster-wide)"
                out.problems.append(
                    f"you may not {verb} {plural}{'.' + group if group else ''}{where}"
                )


# --- the release ---------------------------------------------------------------------------


def applied_set(objects: list[Obj], secrets: list[Obj], revision: int) -> list[Obj]:
    """What a release applies: rendered objects (not the on-demand ones) + Secrets, stamped."""
    out = []
    for obj in [o for o in objects if not on_demand(o)] + secrets:
        obj = copy.deepcopy(obj)
        obj["metadata"].setdefault("labels", {})[naming.REVISION] = str(revision)
        out.append(obj)
    return out


def release(
    cluster: Cluster,
    plan: Plan,
    objects: list[Obj],
    *,
    local: SecretLookup | None,
    git_sha: str | None,
    image: str | None,
    dry_run: bool = False,
    diff: bool = False,
    note: str = "",
    keep_secrets: Iterable[str] = (),
    now: Callable[[], float] = time.time,
) -> Result:
    objects, left_out = optional_objects(cluster, objects)
    check = preflight(cluster, plan, objects, local, secret_names=keep_secrets)
    check.warnings += left_out
    if check.problems:
        raise ReleaseError("pre-flight failed, nothing was applied", check.problems)
    history = revisions(cluster, plan.project)
    number = (history[0].number + 1) if history else 1
    apply = applied_set(objects, check.secrets, number)
    if check.create_namespace and not dry_run:
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {"name": cluster.namespace, "labels": {naming.MANAGED_BY: "mizzen"}},
            }
        )
    previews = _dry_run(cluster, apply, skip=check.create_namespace and dry_run)
    keep = {key_of(o) for o in check.keep}
    doomed = prune_set(cluster, plan.project, apply, keep)
    text = render_diff(cluster, apply, previews, doomed) if diff else ""
    if dry_run:
        return Result(
            None, [describe(o) for o in apply], [describe(o) for o in doomed], check.warnings, text
        )
    done: list[str] = []
    try:
        for obj in apply:
            cluster.apply(obj)
            done.append(describe(obj))
    except ClusterError as exc:
        record_revision(
            cluster,
            plan,
            number,
            objects,
            check,
            git_sha,
            image,
            "failed",
            f"{note} apply failed at {len(done) + 1}/{len(apply)}: {exc.message}".strip(),
            now(),
        )
        raise ReleaseError(
            f"apply failed after {len(done)} of {len(apply)} objects (revision {number} recorded as failed; nothing was pruned)",
            [f"{describe(apply[len(done)])}: {exc.message}"],
        ) from None
    pruned = []
    for obj in doomed:
        meta = obj["metadata"]
        cluster.delete(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        pruned.append(describe(obj))
    record_revision(cluster, plan, number, objects, check, git_sha, image, "deployed", note, now())
    return Result(number, done, pruned, check.warnings, text)


def _dry_run(
    cluster: Cluster, objects: list[Obj], *, skip: bool
) -> dict[tuple[str, str, str, str], Obj]:
    """Server-side dry-run of every object; any failure stops the release before an apply."""
    previews: dict[tuple[str, str, str, str], Obj] = {}
    failures = []
    if skip:
        return previews
    for obj in objects:
        try:
            previews[key_of(obj)] = cluster.apply(obj, dry_run=True)
        except ClusterError as exc:
            failures.append(f"{describe(obj)}: {exc.message}")
    if failures:
        raise ReleaseError("server-side dry-run failed, nothing was applied", failures)
    return previews


def _owned_by_project(
    cluster: Cluster, project: str, kinds: Iterable[tuple[str, str]]
) -> Iterator[Obj]:
    """The project's objects of `kinds` that nothing else owns (kinds whose operator is not
    installed are skipped)."""
    for api_version, kind in kinds:
        group = group_of(api_version)
        if (group in OPERATORS or group in OPTIONAL_OPERATORS) and not cluster.has_kind(
            api_version, kind
        ):
            continue
        namespaced = KINDS[kind][1]
        for obj in cluster.list(
            api_version, kind, cluster.namespace if namespaced else None, naming.selector(project)
        ):
            if obj.get("metadata", {}).get("ownerReferences"):
                continue
            obj.setdefault("apiVersion", api_version)
            obj.setdefault("kind", kind)
            yield obj


def live_objects(cluster: Cluster, project: str) -> list[Obj]:
    """Objects of this project a release owns (not revision records, not one-off runs, not
    objects that another object owns, like the Jobs of a CronJob)."""
    return [
        o
        for o in _owned_by_project(cluster, project, PRUNABLE)
        if not o.get("metadata", {}).get("labels", {}).get(naming.ROLE)
    ]


def prune_set(
    cluster: Cluster, project: str, applied: list[Obj], keep: set[tuple[str, str, str, str]]
) -> list[Obj]:
    wanted = {key_of(o) for o in applied} | keep
    doomed = []
    for obj in live_objects(cluster, project):
        if key_of(obj) in wanted:
            continue
        if obj["metadata"].get("annotations", {}).get(KEEP) == "true":
            continue
        doomed.append(obj)
    return doomed


_SERVER_FIELDS = (
    "managedFields",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "selfLink",
)


def _clean(obj: Obj | None) -> Obj:
    if not obj:
        return {}
    obj = copy.deepcopy(obj)
    obj.pop("status", None)
    meta = obj.get("metadata", {})
    for key in _SERVER_FIELDS:
        meta.pop(key, None)
    meta.get("annotations", {}).pop("kubectl.kubernetes.io/last-applied-configuration", None)
    if meta.get("annotations") == {}:
        meta.pop("annotations")
    if obj.get("kind") == "Secret":
        obj["data"] = {k: "(hidden)" for k in obj.get("data") or {}}
    return obj


def render_diff(
    cluster: Cluster,
    applied: list[Obj],
    previews: dict[tuple[str, str, str, str], Obj],
    doomed: list[Obj],
) -> str:
    """A unified diff of live objects against what the release would make of them (the
    server's dry-run result when available), plus the objects it would delete."""
    import difflib

    import yaml

    chunks = []
    for obj in applied:
        meta = obj["metadata"]
        live = _clean(
            cluster.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        )
        after = _clean(previews.get(key_of(obj), obj))
        a = yaml.safe_dump(live, sort_keys=True).splitlines() if live else []
        b = yaml.safe_dump(after, sort_keys=True).splitlines()
        lines = list(
            difflib.unified_diff(
                a, b, f"live/{describe(obj)}", f"release/{describe(obj)}", lineterm=""
            )
        )
        chunks += lines
    for obj in doomed:
        chunks.append(f"- delete {describe(obj)} (no longer in the spec)")
    return "\n".join(chunks)


# --- revisions --------------------------------------------------------------------------------


def revision_name(project: str, number: int) -> str:
    return naming.object_name(project, "release", f"v{number}", limit=253)


def record_revision(
    cluster: Cluster,
    plan: Plan,
    number: int,
    objects: list[Obj],
    check: Preflight,
    git_sha: str | None,
    image: str | None,
    status: str,
    note: str,
    when: float,
) -> None:
    """A ConfigMap per revision: the rendered objects (gzip + base64 in binaryData), git sha,
    image and time. Secret values never go here, only the Secret names the release used."""
    blob = gzip.compress(json.dumps(objects, sort_keys=True).encode(), mtime=0)
    secrets = sorted({o["metadata"]["name"] for o in [*check.secrets, *check.keep]})
    labels = {
        **naming.project_labels(plan.project),
        naming.ROLE: "release",
        naming.REVISION: str(number),
    }
    record = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": revision_name(plan.project, number),
            "namespace": cluster.namespace,
            "labels": labels,
        },
        "data": {
            "revision": str(number),
            "time": str(when),
            "gitSha": git_sha or "",
            "image": image or "",
            "status": status,
            "note": note,
            "env": plan.env or "",
            "secrets": json.dumps(secrets),
        },
        "binaryData": {"objects.json.gz": base64.b64encode(blob).decode()},
    }
    cluster.apply(record)
    if status == "deployed":
        for older in revisions(cluster, plan.project):
            if older.number != number and older.status == "deployed":
                cluster.apply(_status_patch(cluster, older, "superseded"))


def _status_patch(cluster: Cluster, rev: Revision, status: str) -> Obj:
    live = cluster.get("v1", "ConfigMap", rev.name, cluster.namespace) or {}
    live = copy.deepcopy(live)
    for key in _SERVER_FIELDS:
        live.get("metadata", {}).pop(key, None)
    live.setdefault("data", {})["status"] = status
    return live


def _parse_revision(cm: Obj) -> Revision:
    data = cm.get("data") or {}
    blob = (cm.get("binaryData") or {}).get("objects.json.gz", "")
    objects = json.loads(gzip.decompress(base64.b64decode(blob))) if blob else []
    return Revision(
        number=int(data.get("revision", "0")),
        time=float(data.get("time", "0") or 0),
        git_sha=data.get("gitSha") or None,
        image=data.get("image") or None,
        status=data.get("status", ""),
        note=data.get("note", ""),
        env=data.get("env") or None,
        objects=objects,
        secrets=json.loads(data.get("secrets", "[]")),
        name=cm["metadata"]["name"],
    )


def revisions(cluster: Cluster, project: str) -> list[Revision]:
    """Newest first."""
    found = cluster.list(
        "v1", "ConfigMap", cluster.namespace, naming.selector(project) + f",{naming.ROLE}=release"
    )
    return sorted((_parse_revision(cm) for cm in found), key=lambda r: r.number, reverse=True)


def changes(new: Revision, old: Revision | None) -> str:
    """What a revision changed against the one before it: '+2 ~1 -1 (Deployment/x, ...)'."""

    def index(rev: Revision) -> dict[str, Obj]:
        out = {}
        for obj in rev.objects:
            body = {k: v for k, v in obj.items() if k != "metadata"}
            labels = {
                k: v for k, v in obj["metadata"].get("labels", {}).items() if k != naming.REVISION
            }
            out[describe(obj)] = {**body, "labels": labels}
        return out

    now = index(new)
    before = index(old) if old is not None else {}
    added = sorted(set(now) - set(before))
    removed = sorted(set(before) - set(now))
    changed = sorted(k for k in set(now) & set(before) if now[k] != before[k])
    if old is None:
        return f"first release ({len(now)} objects)"
    if not (added or removed or changed):
        return "no object changed"
    parts = [
        f"{sign}{len(items)}"
        for sign, items in (("+", added), ("~", changed), ("-", removed))
        if items
    ]
    named = [*(f"+{k}" for k in added), *(f"~{k}" for k in changed), *(f"-{k}" for k in removed)]
    more = f", +{len(named) - 4} more" if len(named) > 4 else ""
    return f"{' '.join(parts)} ({', '.join(named[:4])}{more})"


def summary(cluster: Cluster, plan: Plan) -> list[dict[str, Any]]:
    """Revisions newest first, each with what it changed: for `history` and the dashboard."""
    revs = revisions(cluster, plan.project)
    return [
        {
            "revision": r.number,
            "time": r.time,
            "status": r.status,
            "gitSha": r.git_sha,
            "image": r.image,
            "env": r.env,
            "note": r.note,
            "objects": len(r.objects),
            "changes": changes(r, revs[i + 1] if i + 1 < len(revs) else None),
        }
        for i, r in enumerate(revs)
    ]


def rollback(
    cluster: Cluster,
    plan: Plan,
    target: int | None = None,
    *,
    dry_run: bool = False,
    diff: bool = False,
    now: Callable[[], float] = time.time,
) -> Result:
    """Apply the objects of an earlier revision (default: the one before the current) as a
    new revision; Secrets are reused from the cluster, never recreated."""
    history = revisions(cluster, plan.project)
    if not history:
        raise UsageError(
            f"no release of {plan.project} in namespace {cluster.namespace} yet",
            hint="run `mizzen release` first",
        )
    current = next((r for r in history if r.status == "deployed"), history[0])
    if target is None:
        earlier = [
            r
            for r in history
            if r.number < current.number and r.status in ("deployed", "superseded")
        ]
        if not earlier:
            raise UsageError(
                f"revision {current.number} is the first one; there is nothing to roll back to"
            )
        chosen = earlier[0]
    else:
        found = [r for r in history if r.number == target]
        if not found:
            raise UsageError(f"no revision {target}", hint="see `mizzen history`")
        chosen = found[0]
    return release(
        cluster,
        plan,
        chosen.objects,
        local=None,
        keep_secrets=chosen.secrets,
        git_sha=chosen.git_sha,
        image=chosen.image,
        dry_run=dry_run,
        diff=diff,
        note=f"rollback to {chosen.number}",
        now=now,
    )


# --- waiting ------------------------------------------------------------------------------------


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


def wait_for_deployments(
    cluster: Cluster,
    objects: list[Obj],
    *,
    timeout: float = 300,
    interval: float = 2,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    report: Callable[[str], None] = lambda line: None,
) -> list[str]:
    """Follow Deployments until available; return the names that did not make it in time."""
    pending = {o["metadata"]["name"] for o in objects if o["kind"] == "Deployment"}
    deadline = clock() + timeout
    while pending:
        for name in sorted(pending):
            live = cluster.get("apps/v1", "Deployment", name, cluster.namespace)
            if live is not None and deployment_ready(live):
                pending.discard(name)
                report(
                    f"{name}: available ({live.get('status', {}).get('availableReplicas', 0)} ready)"
                )
        if not pending or clock() >= deadline:
            break
        sleep(interval)
    return sorted(pending)


# --- delete -------------------------------------------------------------------------------------

_RUN_KINDS = [
    ("batch/v1", "Job"),
    ("argoproj.io/v1alpha1", "Workflow"),
    ("sparkoperator.k8s.io/v1beta2", "SparkApplication"),
    ("kubeflow.org/v1", "PyTorchJob"),
    ("kubeflow.org/v1", "TFJob"),
]


def project_objects(cluster: Cluster, project: str) -> tuple[list[Obj], list[Obj]]:
    """(objects `mizzen delete` removes, claims it keeps because they hold data)."""
    found = list(_owned_by_project(cluster, project, [*PRUNABLE, *_RUN_KINDS]))
    kept = [o for o in found if o["metadata"].get("annotations", {}).get(KEEP) == "true"]
    return [o for o in found if o not in kept], kept


def delete_all(cluster: Cluster, objects: list[Obj]) -> list[str]:
    """Workloads first, then what they use, revision records last."""
    order = {kind: i for i, (_, kind) in enumerate(reversed(PRUNABLE))}

    def rank(obj: Obj) -> tuple[int, int]:
        record = obj["metadata"].get("labels", {}).get(naming.ROLE) == "release"
        return (1 if record else 0, order.get(obj["kind"], -1))

    done = []
    for obj in sorted(objects, key=rank):
        meta = obj["metadata"]
        cluster.delete(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        done.append(describe(obj))
    return done
