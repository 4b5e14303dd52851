"""Pre-flight: every check before a release touches the cluster, one line per problem.

Checks that need cluster-wide rights (CSI drivers, nodes, PersistentVolumes) degrade to a
warning that says what could not be checked when the user is admin of their namespace only;
what such a user cannot do at all (create a cluster-scoped PersistentVolume) is said up
front, once, with the command that prints the object for a cluster admin.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from mizzen.plan.model import Plan
from mizzen.targets.kubernetes import naming
from mizzen.targets.kubernetes.cluster import (
    KINDS,
    Cluster,
    ClusterError,
    Obj,
    describe,
    group_of,
    namespaced,
    operators,
)
from mizzen.targets.kubernetes.render import on_demand
from mizzen.targets.kubernetes.volumes import (
    CSI_NAMES,
    INLINE_DRIVERS,
    CsiSecret,
    csi_drivers,
    csi_secrets,
    plan_mounts,
    volume_context,
)

SecretLookup = Callable[[str, str], str | None]  # (spec secret, key) -> local value
RBAC = "rbac.authorization.k8s.io"


@dataclass
class Preflight:
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    secrets: list[Obj] = field(default_factory=list)  # Secrets to apply (values in memory)
    keep: list[Obj] = field(default_factory=list)  # live Secrets the release relies on
    create_namespace: bool = False
    # cluster-scoped objects a cluster admin already provided (not applied by this release)
    provided: list[Obj] = field(default_factory=list)


def preflight(
    cluster: Cluster,
    plan: Plan,
    objects: list[Obj],
    local: SecretLookup | None,
    *,
    secret_names: Iterable[str] = (),
) -> Preflight:
    """`local` looks up secret values for Secrets the release creates; None (rollback) means
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
    _check_namespace(cluster, plan, out)
    _check_operators(cluster, objects, out)
    if local is not None:
        _check_secrets(cluster, plan, local, out)
    else:
        for name in secret_names:
            live = _get(cluster, "v1", "Secret", name, ns)
            if live is None:
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
    _check_csi(cluster, plan, out)
    _check_gpus(cluster, objects, out)
    _check_claims(cluster, objects, out)
    _check_cluster_objects(cluster, plan, objects, out)
    wanted = [o for o in objects if not on_demand(o) and namespaced(o["kind"])]
    record = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "revision"}}
    _check_permissions(cluster, [*wanted, *out.secrets, record], out)
    _check_grants(cluster, wanted, out)
    return out


def _get(cluster: Cluster, api: str, kind: str, name: str, ns: str | None) -> Obj | None:
    return cluster.get(api, kind, name, ns)


def _check_namespace(cluster: Cluster, plan: Plan, out: Preflight) -> None:
    ns = cluster.namespace
    try:
        exists = cluster.get("v1", "Namespace", ns) is not None
    except ClusterError as exc:
        if exc.status != 403:
            raise
        # may not read it: rights inside it mean it exists
        exists = cluster.can_i("create", "", "configmaps", ns)
    if exists:
        return
    if plan.kubernetes.create_namespace:
        out.create_namespace = True
        out.warnings.append(f"namespace {ns} does not exist: it will be created")
        if not cluster.can_i("create", "", "namespaces", None):
            out.problems.append(f"namespace {ns} does not exist and you may not create namespaces")
    else:
        out.problems.append(
            f"namespace {ns} does not exist; create it or set `kubernetes: {{createNamespace: true}}`"
        )


def embedded(obj: Obj) -> list[Obj]:
    """The operator objects an Argo resource step creates."""
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
    known = operators()
    seen: set[tuple[str, str]] = set()
    for top in objects:
        for obj in (top, *embedded(top)):
            key = (obj["apiVersion"], obj["kind"])
            group = group_of(obj["apiVersion"])
            if key in seen or group not in known:
                continue
            seen.add(key)
            if not cluster.has_kind(*key):
                workload = top["metadata"].get("labels", {}).get(naming.WORKLOAD, "?")
                used = workload if obj is top else f"a step of {workload}"
                line = f"{obj['kind']} ({obj['apiVersion']}, used by {used}) is not installed in the cluster: install {known[group]}"
                if on_demand(top):  # not applied: only `mizzen run` needs it
                    out.warnings.append(
                        line + f" before `mizzen run {workload} --target kubernetes`"
                    )
                else:
                    out.problems.append(line)


def used_secrets(plan: Plan) -> dict[str, set[str]]:
    """Spec secret -> keys that some workload (or a store it uses) reads."""
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


def _secret_obj(plan: Plan, name: str, ns: str, values: dict[str, str]) -> Obj:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": name, "namespace": ns, "labels": naming.project_labels(plan.project)},
        "type": "Opaque",
        "data": {k: base64.b64encode(v.encode()).decode() for k, v in sorted(values.items())},
    }


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
            found = {k: v for k, v in values.items() if v is not None}
            out.secrets.append(_secret_obj(plan, name, ns, found))
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
    for csi in csi_secrets(plan_mounts(plan), volume_context(plan, ns)):
        if csi.keys:
            _csi_secret(cluster, plan, csi, local, out)


def _csi_secret(
    cluster: Cluster, plan: Plan, csi: CsiSecret, local: SecretLookup, out: Preflight
) -> None:
    """The Secret a CSI driver reads for store `csi.store`, built from its spec secret."""
    values: dict[str, str] = {}
    for key, source in csi.keys.items():
        if source.startswith("="):
            value: str | None = source[1:]
        else:
            spec_key, _, part = source.partition(":")
            value = local(csi.secret, spec_key)
            if value is not None and part:
                fields = dict(item.split("=", 1) for item in value.split(";") if "=" in item)
                value = fields.get(part)
        if not value:
            live = cluster.get("v1", "Secret", csi.name, cluster.namespace)
            if live is not None and key in (live.get("data") or {}):
                out.keep.append(live)
                return
            out.problems.append(
                f"store {csi.store}: the Azure Blob CSI driver needs `{key}`, taken from "
                f"secrets.{csi.secret} ({source.lstrip('=') or 'the account in the store URL'}), "
                "which has no local value"
            )
            return
        values[key] = value
    out.secrets.append(_secret_obj(plan, csi.name, cluster.namespace, values))


def _check_csi(cluster: Cluster, plan: Plan, out: Preflight) -> None:
    for driver, volumes in sorted(csi_drivers(plan_mounts(plan)).items()):
        used = f"volume{'s' if len(volumes) > 1 else ''} {', '.join(volumes)}"
        try:
            found = cluster.get("storage.k8s.io/v1", "CSIDriver", driver)
        except ClusterError as exc:
            if exc.status != 403:
                raise
            out.warnings.append(
                f"{used} need{'' if len(volumes) > 1 else 's'} the CSI driver {driver} "
                f"({CSI_NAMES[driver]}); reading CSIDriver objects needs cluster-wide rights, so it "
                "was not checked (if it is missing, `mizzen status` says so when a pod starts)"
            )
            continue
        if found is None:
            out.problems.append(
                f"{used} need{'' if len(volumes) > 1 else 's'} the CSI driver {driver} "
                f"({CSI_NAMES[driver]}), which is not installed"
            )
            continue
        modes = (found.get("spec") or {}).get("volumeLifecycleModes") or ["Persistent"]
        if driver in INLINE_DRIVERS and "Ephemeral" not in modes:
            out.problems.append(
                f"{used} mount as inline volumes, but the CSIDriver {driver} does not allow them "
                "(spec.volumeLifecycleModes lacks Ephemeral); a cluster admin enables inline "
                "volumes for the driver"
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
    try:
        nodes = cluster.list("v1", "Node")
    except ClusterError as exc:
        if exc.status != 403:
            raise
        out.warnings.append(
            f"{', '.join(dict.fromkeys(wants))} request GPUs; listing nodes needs cluster-wide "
            "rights, so whether any node offers nvidia.com/gpu was not checked"
        )
        return
    if not any(
        int(n.get("status", {}).get("allocatable", {}).get("nvidia.com/gpu", "0") or 0) > 0
        for n in nodes
    ):
        out.warnings.append(
            f"{', '.join(dict.fromkeys(wants))} request GPUs but no node offers nvidia.com/gpu (they will stay Pending until one does)"
        )


def _check_claims(cluster: Cluster, objects: list[Obj], out: Preflight) -> None:
    """A live claim's spec cannot change (but for a larger size): say so before applying."""
    for obj in objects:
        if obj["kind"] != "PersistentVolumeClaim":
            continue
        meta = obj["metadata"]
        live = cluster.get("v1", "PersistentVolumeClaim", meta["name"], meta.get("namespace"))
        if live is None:
            continue
        spec, have = obj["spec"], live.get("spec") or {}
        changed = [
            k
            for k in ("accessModes", "storageClassName", "volumeName")
            if k in spec and have.get(k) not in (None, spec[k])
        ]
        if changed:
            out.problems.append(
                f"claim {meta['name']} exists with other {', '.join(changed)} "
                f"({', '.join(f'{k}={have.get(k)}' for k in changed)}); a claim's spec cannot change: "
                "give the volume a new claim name, or delete the claim (and its data) first"
            )


def _check_cluster_objects(
    cluster: Cluster, plan: Plan, objects: list[Obj], out: Preflight
) -> None:
    """Cluster-scoped objects (S3 PersistentVolumes): applied by the release when the user
    may, else they must already be there, bound to their claim, created once by an admin."""
    wanted = [o for o in objects if not namespaced(o["kind"])]
    if not wanted:
        return
    kinds = sorted({o["kind"] for o in wanted})
    if all(
        cluster.can_i(verb, group_of(o["apiVersion"]), KINDS[o["kind"]][0], None)
        for o in wanted
        for verb in ("get", "create", "patch")
    ):
        return
    missing = []
    for pv in wanted:
        ref = pv["spec"].get("claimRef") or {}
        claim = cluster.get("v1", "PersistentVolumeClaim", ref.get("name", ""), cluster.namespace)
        bound = (
            claim is not None
            and (claim.get("spec") or {}).get("volumeName") == pv["metadata"]["name"]
            and (claim.get("status") or {}).get("phase") == "Bound"
        )
        if bound:
            out.provided.append(pv)
        else:
            missing.append(pv)
    if missing:
        names = ", ".join(describe(o) for o in missing)
        volumes = sorted({o["metadata"]["labels"].get(naming.VOLUME, "?") for o in missing})
        many = len(missing) > 1
        env = f" --env {plan.env}" if plan.env else ""
        out.problems.append(
            f"volume{'s' if len(volumes) > 1 else ''} {', '.join(volumes)} "
            f"{'are' if len(volumes) > 1 else 'is'} mounted through {names}, which "
            f"{'are' if many else 'is'} cluster-scoped ({', '.join(kinds)}): you may not create "
            f"{'them' if many else 'it'}. A cluster admin creates {'them' if many else 'it'} once, "
            f"with {'their claims' if many else 'its claim'}: "
            f"`mizzen render{env} -n {cluster.namespace} --cluster-objects | kubectl apply -f -`; "
            "then release again"
        )


def _check_permissions(cluster: Cluster, objects: list[Obj], out: Preflight) -> None:
    """get, create, patch, list and delete on every kind applied (SelfSubjectAccessReview),
    one line per kind that lacks any of them."""
    seen: set[tuple[str, str]] = set()
    for obj in objects:
        plural = KINDS.get(obj["kind"], (obj["kind"].lower() + "s", True))[0]
        group = group_of(obj["apiVersion"])
        if (group, plural) in seen:
            continue
        seen.add((group, plural))
        denied = [
            verb
            for verb in ("get", "create", "patch", "list", "delete")
            if not cluster.can_i(verb, group, plural, cluster.namespace)
        ]
        if denied:
            verbs = ", ".join(denied[:-1]) + (" or " if len(denied) > 1 else "") + denied[-1]
            why = ""
            if group in operators():
                why = (
                    f" (an install of {operators()[group].split(' (')[0]} gives namespace admins "
                    "these rights through its aggregated ClusterRoles: they are missing here)"
                )
            out.problems.append(
                f"you may not {verbs} {plural}{'.' + group if group else ''} in namespace "
                f"{cluster.namespace}{why}"
            )


def _check_grants(cluster: Cluster, objects: list[Obj], out: Preflight) -> None:
    """RBAC lets a user create a Role, or bind one, only with permissions they hold
    themselves (or with `escalate` / `bind`): check each rule of the Roles rendered."""
    ns = cluster.namespace
    roles = [o for o in objects if o["kind"] == "Role"]
    if not roles:
        return
    escalate = cluster.can_i("escalate", RBAC, "roles", ns) and cluster.can_i(
        "bind", RBAC, "roles", ns
    )
    if escalate:
        return
    for role in roles:
        lacking = []
        for rule in role.get("rules", []):
            for group in rule.get("apiGroups", [""]):
                for resource in rule.get("resources", []):
                    for verb in rule.get("verbs", []):
                        if not cluster.can_i(verb, group, resource, ns):
                            lacking.append(f"{verb} {resource}{'.' + group if group else ''}")
        if lacking:
            out.problems.append(
                f"Role {role['metadata']['name']} grants {', '.join(lacking[:4])}"
                f"{f' (+{len(lacking) - 4} more)' if len(lacking) > 4 else ''}, which you do not hold "
                f"in namespace {ns}: RBAC lets you grant only what you hold. A cluster admin can "
                "give the operator's rights to namespace admins once (aggregate its ClusterRole "
                "to `admin` with the label rbac.authorization.k8s.io/aggregate-to-admin: "
                '"true"), or grant you `bind` and `escalate` on roles'
            )
