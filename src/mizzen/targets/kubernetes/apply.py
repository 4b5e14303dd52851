"""Apply and prune: what a release applies, in which order, the server-side dry-run gate,
and which live objects it deletes afterwards."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from mizzen.targets.kubernetes import naming
from mizzen.targets.kubernetes.cluster import (
    OPTIONAL_OPERATORS,
    Cluster,
    ClusterError,
    Obj,
    ReleaseError,
    describe,
    group_of,
    key_of,
    namespaced,
    operators,
)
from mizzen.targets.kubernetes.render import on_demand

KEEP = "mizzen.io/keep"  # annotation: never pruned (claims that hold data)
Key = tuple[str, str, str, str]

# Dependencies first: a pod never starts before the Secret, ConfigMap or claim it needs.
APPLY_ORDER = [
    "Namespace",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "Secret",
    "ConfigMap",
    "PersistentVolume",
    "PersistentVolumeClaim",
]


def applied_set(objects: list[Obj], secrets: list[Obj], revision: int) -> list[Obj]:
    """What a release applies, stamped with its revision, in dependency order (workloads
    keep the renderer's order after the objects they use)."""
    chosen = [o for o in objects if not on_demand(o)] + secrets

    def rank(item: tuple[int, Obj]) -> tuple[int, int]:
        kind = item[1]["kind"]
        return (APPLY_ORDER.index(kind) if kind in APPLY_ORDER else len(APPLY_ORDER), item[0])

    out = []
    for _, obj in sorted(enumerate(chosen), key=rank):
        obj = copy.deepcopy(obj)
        obj["metadata"].setdefault("labels", {})[naming.REVISION] = str(revision)
        out.append(obj)
    return out


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


def for_server(version: str, objects: list[Obj]) -> tuple[list[Obj], list[str]]:
    """Adapt objects to the API server's version, saying so. Before Kubernetes 1.25 a CronJob
    has no `timeZone`: its schedule gets the `CRON_TZ=` prefix that server's controller
    honours (without it the schedule would silently run in the controller's time zone). From
    1.25 a prefix a revision recorded on an older server holds (a rollback after an upgrade)
    goes back to `timeZone`: newer servers refuse it in the schedule."""
    found = re.match(r"v?(\d+)\.(\d+)", version)
    if found is None:
        return objects, []
    old = (int(found[1]), int(found[2])) < (1, 25)
    out: list[Obj] = []
    notes: list[str] = []
    for obj in objects:
        spec = obj.get("spec", {}) if obj["kind"] == "CronJob" else {}
        zone = spec.get("timeZone")
        prefixed = _CRON_TZ.match(spec.get("schedule", ""))
        if old and zone:
            obj = copy.deepcopy(obj)
            del obj["spec"]["timeZone"]
            obj["spec"]["schedule"] = f"CRON_TZ={zone} {spec['schedule']}"
            notes.append(
                f"{describe(obj)}: the cluster ({version}) has no CronJob timeZone (Kubernetes "
                f"1.25+); its schedule says CRON_TZ={zone} instead, which that version honours"
            )
        elif not old and prefixed and not zone:
            obj = copy.deepcopy(obj)
            obj["spec"]["timeZone"], obj["spec"]["schedule"] = prefixed[1], prefixed[2]
        out.append(obj)
    return out, notes


_CRON_TZ = re.compile(r"CRON_TZ=(\S+)\s+(.+)")


def server_dry_run(cluster: Cluster, objects: list[Obj], *, skip: bool) -> dict[Key, Obj]:
    """Server-side dry-run of every object; any failure stops the release before an apply.

    A RoleBinding to a Role this release creates cannot be dry-run before the Role exists
    (RBAC cannot check the grant); pre-flight checked the Role's rules instead."""
    previews: dict[Key, Obj] = {}
    if skip:
        return previews
    new_roles = {
        o["metadata"]["name"]
        for o in objects
        if o["kind"] == "Role"
        and cluster.get(o["apiVersion"], "Role", o["metadata"]["name"], cluster.namespace) is None
    }
    failures = []
    for obj in objects:
        if obj["kind"] == "RoleBinding" and obj.get("roleRef", {}).get("name") in new_roles:
            continue
        try:
            previews[key_of(obj)] = cluster.apply(obj, dry_run=True)
        except ClusterError as exc:
            failures.append(f"{describe(obj)}: {exc.message}")
    if failures:
        raise ReleaseError("server-side dry-run failed, nothing was applied", failures)
    return previews


@dataclass
class Listing:
    objects: list[Obj] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _serves_namespace(obj: Obj, ns: str) -> bool:
    """A cluster-scoped object of the project belongs to the namespace it serves (its label;
    for PersistentVolumes of older releases, the claim it is bound to)."""
    labels = obj.get("metadata", {}).get("labels", {})
    if naming.NAMESPACE in labels:
        return bool(labels[naming.NAMESPACE] == ns)
    return bool((obj.get("spec", {}).get("claimRef") or {}).get("namespace") == ns)


def owned_objects(cluster: Cluster, project: str, kinds: Iterable[tuple[str, str]]) -> Listing:
    """The project's live objects of `kinds` in this namespace (cluster-scoped ones: those
    serving it) that nothing else owns. A kind the cluster does not serve, or that the user
    may not list, is skipped (the latter with a warning)."""
    out = Listing()
    ns = cluster.namespace
    for api_version, kind in dict.fromkeys(kinds):
        group = group_of(api_version)
        if (group in operators() or group in OPTIONAL_OPERATORS) and not cluster.has_kind(
            api_version, kind
        ):
            continue
        scoped = namespaced(kind)
        try:
            found = cluster.list(
                api_version, kind, ns if scoped else None, naming.selector(project)
            )
        except ClusterError as exc:
            if exc.status == 404:
                continue
            if exc.status == 403:
                out.warnings.append(
                    f"may not list {kind} objects{'' if scoped else ' (cluster-wide)'}: any left "
                    "by an earlier release are not pruned"
                )
                continue
            raise
        for obj in found:
            if obj.get("metadata", {}).get("ownerReferences"):
                continue
            if not scoped and not _serves_namespace(obj, ns):
                continue
            obj.setdefault("apiVersion", api_version)
            obj.setdefault("kind", kind)
            out.objects.append(obj)
    return out


def release_kinds(applied: list[Obj], recorded: Iterable[Obj]) -> list[tuple[str, str]]:
    """The kinds a release may have to prune: what it applies now and what earlier
    revisions applied (not their on-demand objects: one-off runs are not pruned). A kind
    never used is never listed: no operator or cluster-wide right is needed for what the
    project does not use."""
    kinds: dict[tuple[str, str], None] = {}
    for obj in [*applied, *(o for o in recorded if not on_demand(o))]:
        kinds[(obj["apiVersion"], obj["kind"])] = None
    return list(kinds)


def prune_set(
    cluster: Cluster,
    project: str,
    applied: list[Obj],
    keep: set[Key],
    recorded: Iterable[Obj] = (),
) -> Listing:
    wanted = {key_of(o) for o in applied} | keep
    found = owned_objects(cluster, project, release_kinds(applied, recorded))
    doomed = Listing(warnings=found.warnings)
    for obj in found.objects:
        labels = obj["metadata"].get("labels", {})
        if key_of(obj) in wanted or labels.get(naming.ROLE):
            continue  # revision records and one-off runs are not the release's to prune
        if obj["metadata"].get("annotations", {}).get(KEEP) == "true":
            continue
        doomed.objects.append(obj)
    return doomed


_SERVER_FIELDS = (
    "managedFields",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "selfLink",
)


def clean(obj: Obj | None) -> Obj:
    """An object as a user wrote it: no status, server fields or Secret values."""
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
    cluster: Cluster, applied: list[Obj], previews: dict[Key, Obj], doomed: list[Obj]
) -> str:
    """A unified diff of live objects against what the release would make of them (the
    server's dry-run result when available), plus the objects it would delete."""
    import difflib

    import yaml

    chunks = []
    for obj in applied:
        meta = obj["metadata"]
        live = clean(
            cluster.get(obj["apiVersion"], obj["kind"], meta["name"], meta.get("namespace"))
        )
        after = clean(previews.get(key_of(obj), obj))
        a = yaml.safe_dump(live, sort_keys=True).splitlines() if live else []
        b = yaml.safe_dump(after, sort_keys=True).splitlines()
        chunks += list(
            difflib.unified_diff(
                a, b, f"live/{describe(obj)}", f"release/{describe(obj)}", lineterm=""
            )
        )
    for obj in doomed:
        chunks.append(f"- delete {describe(obj)} (no longer in the spec)")
    return "\n".join(chunks)
