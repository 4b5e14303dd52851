"""Plan -> Kubernetes objects: a pure function, stable order, never a secret value.

`render(plan)` needs no cluster and imports no Kubernetes client. The objects carry the
project labels; `mizzen.io/revision` is stamped by the release (see `release.stamp`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import yaml

from mizzen import contract
from mizzen.errors import UsageError
from mizzen.plan.model import (
    EnvVar,
    Job,
    Pipeline,
    Plan,
    Process,
    Schedule,
    Step,
    secret_env_name,
)
from mizzen.targets.kubernetes import naming
from mizzen.targets.kubernetes.volumes import (
    GCS_ANNOTATION,
    cluster_objects,
    needs_gcs_annotation,
    plan_mounts,
    pod_volume,
    store_volumes,
    volume_context,
    volume_mount,
    volume_objects,
)

Obj = dict[str, Any]
GPU = "nvidia.com/gpu"
APP_DIR = "/app"  # where the image holds the project (the `mizzen init` Dockerfile)
ON_DEMAND = "mizzen.io/on-demand"  # annotation: applied by `mizzen run`, not by a release


_KIND_ORDER = [
    "Namespace",
    "ServiceAccount",
    "Role",
    "RoleBinding",
    "ConfigMap",
    "PersistentVolume",
    "PersistentVolumeClaim",
]


def render(plan: Plan) -> list[Obj]:
    """Every object the plan needs, in a stable order (support objects first, then workloads
    in spec order)."""
    return Renderer(plan).objects()


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # type: ignore[misc]
    def ignore_aliases(self, data: Any) -> bool:
        return True


def _str(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
    style = "|" if "\n" in data else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(str, _str)


def to_yaml(objects: list[Obj]) -> str:
    """One YAML document per object, keys in rendering order, no anchors."""
    return yaml.dump_all(
        objects, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=1000
    )


def render_warnings(plan: Plan) -> list[str]:
    """What renders but will not behave as a user expects; printed by render and release."""
    out = []
    if plan.store is None:
        out.append(
            "the spec names no `store:`, so pods cannot record runs or load models "
            "(`mizzen runs` will not list cluster runs); add `store: <name of a store>`"
        )
    from mizzen.kinds import job_kind

    for job in plan.jobs.values():
        out += job_kind(job.kind).warnings(plan, job)
    return out


def on_demand(obj: Obj) -> bool:
    return obj.get("metadata", {}).get("annotations", {}).get(ON_DEMAND) == "true"


def cron_policy(schedule: Schedule, tz_key: str) -> Obj:
    """The fields CronJob and Argo's CronWorkflow share (each spells the time zone its way):
    missed runs are skipped after 5 minutes unless `catchUp`."""
    out: Obj = {}
    if schedule.time_zone:
        out[tz_key] = schedule.time_zone
    out["concurrencyPolicy"] = schedule.concurrency
    if not schedule.catch_up:
        out["startingDeadlineSeconds"] = 300
    out["successfulJobsHistoryLimit"] = 3
    out["failedJobsHistoryLimit"] = 3
    return out


def check_image(ref: str, where: str) -> str:
    """Refuse an image reference without a tag or digest, or tagged `latest`."""
    last = ref.rsplit("/", 1)[-1]
    if "@" not in ref and ":" not in last:
        raise UsageError(
            f"{where}: image {ref!r} has no tag or digest",
            hint="pass --image REPO:TAG or REPO@sha256:..., or run `mizzen build --push`",
        )
    if "@" not in ref and last.endswith(":latest"):
        raise UsageError(
            f"{where}: image {ref!r} uses the `latest` tag", hint="pin a tag or a digest"
        )
    return ref


def container_dir(working_dir: str) -> str:
    """A `workingDir` relative to the project is relative to where the image holds it."""
    import posixpath

    return posixpath.normpath(posixpath.join(APP_DIR, working_dir))


def spark_memory(quantity: str) -> str:
    """Kubernetes quantity -> Spark's size syntax (4Gi -> 4g, 512Mi -> 512m)."""
    for suffix, spark in (("Ki", "k"), ("Mi", "m"), ("Gi", "g"), ("Ti", "t"), ("Pi", "p")):
        if quantity.endswith(suffix):
            return quantity[: -len(suffix)] + spark
    for suffix, spark in (("k", "k"), ("M", "m"), ("G", "g"), ("T", "t")):
        if quantity.endswith(suffix):
            return quantity[: -len(suffix)] + spark
    return quantity


@dataclass
class Pod:
    spec: Obj
    labels: dict[str, str]
    annotations: dict[str, str]

    def template(self) -> Obj:
        meta: Obj = {"labels": self.labels}
        if self.annotations:
            meta["annotations"] = self.annotations
        return {"metadata": meta, "spec": self.spec}


class Renderer:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.project = plan.project
        k = plan.kubernetes
        self.namespace = k.namespace or "default"
        self.own_sa = k.service_account_name is None
        self.sa = k.service_account_name or naming.service_account_name(self.project)
        self.vctx = volume_context(plan, self.namespace)
        self.store = plan.store
        self.config_digest = hashlib.sha256(
            json.dumps(plan.config, sort_keys=True).encode()
        ).hexdigest()[:16]

    # --- the object list ------------------------------------------------------------------
    def objects(self) -> list[Obj]:
        from mizzen.kinds import kind

        workloads: list[Obj] = []
        seen: set[tuple[str, str, str]] = set()
        for w in self.plan.workloads:
            for obj in kind(w.kind).render(self, w):  # objects kinds share (a runner) once
                key = (obj["apiVersion"], obj["kind"], obj["metadata"]["name"])
                if key not in seen:
                    seen.add(key)
                    workloads.append(obj)
        from mizzen.notify.prometheus import monitoring

        for obj in monitoring(self.plan):  # namespaced and labelled like every other object
            meta = self.meta(obj["apiVersion"], obj["kind"], obj["metadata"]["name"])
            workloads.append({**meta, "spec": obj["spec"]})
        support = self.support()
        return _sorted(support) + workloads

    def support(self) -> list[Obj]:
        out: list[Obj] = []
        if self.own_sa:
            sa = self.meta("v1", "ServiceAccount", self.sa)
            sa["automountServiceAccountToken"] = False  # workload pods never see an API token
            out.append(sa)
            for role, rules in self.roles().items():
                out += self.rbac(naming.service_account_name(self.project, role), rules)
        if self.plan.config:
            cm = self.meta("v1", "ConfigMap", naming.config_map_name(self.project))
            cm["data"] = dict(sorted(self.plan.config.items()))
            out.append(cm)
        seen: set[str] = set()
        for mount in plan_mounts(self.plan):
            if mount.volume in seen:
                continue
            seen.add(mount.volume)
            out += volume_objects(mount, self.vctx) + cluster_objects(mount, self.vctx)
        return out

    def rbac(self, name: str, rules: list[Obj]) -> list[Obj]:
        """A ServiceAccount with a Role of `rules` bound to it."""
        api = "rbac.authorization.k8s.io/v1"
        binding = self.meta(api, "RoleBinding", name)
        binding["roleRef"] = {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name}
        binding["subjects"] = [
            {"kind": "ServiceAccount", "name": name, "namespace": self.namespace}
        ]
        return [
            self.meta("v1", "ServiceAccount", name),
            {**self.meta(api, "Role", name), "rules": rules},
            binding,
        ]

    def role_account(self, role: str, placement_sa: str | None = None) -> str:
        """The ServiceAccount of the pods that talk to the API (`spark` drivers, the Argo
        `workflow` executor): the project's own per-role account unless the spec names one."""
        if placement_sa:
            return placement_sa
        return naming.service_account_name(self.project, role) if self.own_sa else self.sa

    def roles(self) -> dict[str, list[Obj]]:
        """Least privilege, per kind of pod that talks to the API (each kind says what its
        pods need: Spark drivers create their executors; Argo's executor reports step
        results and creates the operator objects of resource steps). Every other pod runs
        with no token at all."""
        from mizzen.kinds import kind

        out: dict[str, list[Obj]] = {}
        for k in self.kinds():
            for role, rules in kind(k).roles(self).items():
                mine = out.setdefault(role, [])
                mine += [rule for rule in rules if rule not in mine]  # kinds that share rules
        return out

    def kinds(self) -> list[str]:
        """The workload kinds of the plan: pipelines first, then jobs' kinds in registry
        order (the order their rules appear in a Role)."""
        from mizzen.kinds import JOB_KINDS

        used = {j.kind for j in self.plan.jobs.values()}
        out = ["pipeline"] if self.plan.pipelines else []
        out += [name for name in JOB_KINDS if name in used]
        out += sorted({s.kind for s in self.plan.services.values()})
        return out

    def stepped_jobs(self) -> list[Job]:
        """The jobs pipeline steps run, once each."""
        names = dict.fromkeys(s.job for p in self.plan.pipelines.values() for s in p.steps)
        return [self.plan.jobs[n] for n in names]

    # --- metadata --------------------------------------------------------------------------
    def meta(self, api: str, kind: str, name: str, workload: str | None = None) -> Obj:
        labels = (
            naming.workload_labels(self.project, workload)
            if workload
            else naming.project_labels(self.project)
        )
        return {
            "apiVersion": api,
            "kind": kind,
            "metadata": {"name": name, "namespace": self.namespace, "labels": labels},
        }

    def on_demand(self, api: str, kind: str, name: str, workload: str, spec: Obj) -> Obj:
        """A workload's one-off form: rendered for `mizzen run --target kubernetes` to create,
        never applied by a release."""
        obj = self.meta(api, kind, name, workload)
        obj["metadata"]["annotations"] = {ON_DEMAND: "true"}
        obj["spec"] = spec
        return obj

    def image(self, process: Process, where: str) -> str:
        ref = process.image or self.plan.image
        if not ref:
            raise UsageError(
                f"{where}: no image to run",
                hint="add `image: {repository: ...}` to mizzen.yaml or pass --image REF",
            )
        return check_image(ref, where)

    # --- containers and pods ---------------------------------------------------------------
    def env(self, process: Process) -> list[Obj]:
        out: list[Obj] = [{"name": contract.TARGET, "value": "kubernetes"}]
        store = self.plan.store
        if store is not None:
            given = contract.store_vars(store.url, store.options, store.secret)
            out += [{"name": k, "value": v} for k, v in given.items()]
        if self.plan.env:
            out.append({"name": contract.ENV, "value": self.plan.env})
        out.append({"name": contract.IMAGE, "value": self.image(process, "env")})
        names = {e["name"] for e in out} | {e.name for e in process.env}
        for var in process.env:
            out.append(self.env_var(var))
        if store is not None and store.secret:
            for key in self.plan.secrets[store.secret].keys:
                var = EnvVar(secret_env_name(store.secret, key), secret=_ref(store.secret, key))
                if var.name not in names:
                    out.append(self.env_var(var))
        return out

    def run_env(self, present: list[Obj], digest: bool = True) -> list[Obj]:
        """What `mizzen exec` needs besides the process's own env: the spec digest for the
        run record (not for services: any spec edit would restart them), and the run-level
        alerts it sends from the pod (with their secrets)."""
        from mizzen.notify import alert_secret_refs, alerts_to_json

        out: list[Obj] = []
        if digest:
            out.append({"name": contract.SPEC_DIGEST, "value": self.plan.spec_digest})
        alerts = alerts_to_json(self.plan.alerts)
        if alerts:
            out.append({"name": contract.ALERTS, "value": alerts})
            names = {e["name"] for e in present}
            for secret, key in dict.fromkeys(
                r for a in self.plan.alerts for r in alert_secret_refs(a)
            ):
                var = EnvVar(secret_env_name(secret, key), secret=_ref(secret, key))
                if var.name not in names:
                    names.add(var.name)
                    out.append(self.env_var(var))
        return out

    def env_var(self, var: EnvVar) -> Obj:
        if var.secret is not None:
            decl = self.plan.secrets[var.secret.secret]
            name = naming.secret_name(self.project, decl.name, decl.existing_secret)
            return {
                "name": var.name,
                "valueFrom": {"secretKeyRef": {"name": name, "key": var.secret.key}},
            }
        if var.name in self.plan.config and self.plan.config[var.name] == var.value:
            ref = {"name": naming.config_map_name(self.project), "key": var.name}
            return {"name": var.name, "valueFrom": {"configMapKeyRef": ref}}
        return {"name": var.name, "value": var.value or ""}

    def resources(self, process: Process) -> Obj:
        r, d = process.resources, self.plan.kubernetes.default_resources
        cpu, cpu_limit = (r.cpu, r.cpu_limit or r.cpu) if r.cpu else (d.cpu, d.cpu_limit or d.cpu)
        mem, mem_limit = (
            (r.memory, r.memory_limit or r.memory)
            if r.memory
            else (d.memory, d.memory_limit or d.memory)
        )
        requests = {k: v for k, v in (("cpu", cpu), ("memory", mem)) if v}
        limits: Obj = {k: v for k, v in (("cpu", cpu_limit), ("memory", mem_limit)) if v}
        gpu = r.gpu or d.gpu
        if gpu:
            limits[GPU] = str(gpu)
            requests[GPU] = str(gpu)
        return {"requests": requests, "limits": limits}

    def security(self, process: Process) -> Obj:
        ctx: Obj = {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "runAsNonRoot": self.plan.kubernetes.run_as_non_root,
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        ctx.update(process.placement.security_context or {})
        return ctx

    def container(
        self,
        name: str,
        workload: str,
        process: Process,
        *,
        wrap: bool = True,
        argv: list[str] | None = None,
        ports: list[Obj] | None = None,
        service: bool = False,
    ) -> Obj:
        command = list(process.command if argv is None else argv)
        if wrap:
            command = ["mizzen", "exec", "--workload", workload, "--", *command]
        c: Obj = {
            "name": name,
            "image": self.image(process, workload),
            "imagePullPolicy": "IfNotPresent",
        }
        if command:
            c["command"] = command
        if process.working_dir:
            c["workingDir"] = container_dir(process.working_dir)
        if ports:
            c["ports"] = ports
        env = self.env(process)
        c["env"] = env + self.run_env(env, digest=not service) if wrap else env
        c["resources"] = self.resources(process)
        mounts = self.volume_mounts(process)
        if mounts:
            c["volumeMounts"] = mounts
        c["securityContext"] = self.security(process)
        return c

    def volumes(self, process: Process) -> list[Obj]:
        """The pod volumes of `process`, plus `file://` stores it reaches directly (the
        project store, so runs record; its datasets' stores)."""
        out = [pod_volume(m, self.vctx) for m in process.mounts]
        return out + [volume for volume, _ in self.store_volumes(process)]

    def volume_mounts(self, process: Process) -> list[Obj]:
        out = [volume_mount(m) for m in process.mounts]
        return out + [mount for _, mount in self.store_volumes(process)]

    def store_volumes(self, process: Process) -> list[tuple[Obj, Obj]]:
        return store_volumes([self.store, *(d.store for d in process.datasets)])

    def pod_security(self) -> Obj:
        k = self.plan.kubernetes
        return {
            "runAsNonRoot": k.run_as_non_root,
            "runAsUser": k.run_as_user,
            "runAsGroup": k.run_as_user,
            "fsGroup": k.run_as_user,
            "seccompProfile": {"type": "RuntimeDefault"},
        }

    def resource_step(
        self, pipe: Pipeline, step: Step, head: Obj, spec: Obj, *, ok: str, bad: str
    ) -> Obj:
        """An Argo `resource` step that creates an operator object (`head`: its apiVersion
        and kind) and waits for `ok` or `bad`."""
        labels = {**naming.workload_labels(self.project, pipe.name), naming.COMPONENT: step.name}
        meta = {
            "generateName": naming.object_name(self.project, pipe.name, step.name, limit=50) + "-",
            "labels": labels,
        }
        obj = {**head, "metadata": meta, "spec": spec}
        return {
            "action": "create",
            "setOwnerReference": True,
            "successCondition": ok,
            "failureCondition": bad,
            "manifest": yaml.dump(obj, Dumper=_Dumper, sort_keys=False, width=1000),
        }

    def pod(
        self,
        workload: str,
        process: Process,
        containers: list[Obj],
        *,
        restart: str,
        roll_on_config: bool = False,
    ) -> Pod:
        k = self.plan.kubernetes
        place = process.placement
        spec: Obj = {
            "serviceAccountName": place.service_account_name or self.sa,
            "automountServiceAccountToken": False,
            "restartPolicy": restart,
            "securityContext": self.pod_security(),
            "containers": containers,
        }
        if k.image_pull_secrets:
            spec["imagePullSecrets"] = [{"name": s} for s in k.image_pull_secrets]
        if place.node_selector:
            spec["nodeSelector"] = dict(place.node_selector)
        tolerations = [dict(t) for t in place.tolerations]
        if self.resources(process)["limits"].get(GPU) and not any(
            t.get("key") == GPU for t in tolerations
        ):
            tolerations.append({"key": GPU, "operator": "Exists", "effect": "NoSchedule"})
        if tolerations:
            spec["tolerations"] = tolerations
        if place.affinity:
            spec["affinity"] = place.affinity
        volumes = self.volumes(process)
        if volumes:
            spec["volumes"] = volumes
        labels = {**naming.workload_labels(self.project, workload), **place.labels}
        annotations = self.annotations(process)
        if roll_on_config and self.plan.config:
            annotations[naming.CONFIG_DIGEST] = self.config_digest
        return Pod(spec, labels, annotations)

    def annotations(self, process: Process) -> dict[str, str]:
        """The spec's pod annotations, plus what a CSI driver needs on every pod that mounts
        its volumes (GCS FUSE injects its sidecar only where the pod asks for it)."""
        out = dict(process.placement.annotations)
        if needs_gcs_annotation(self.volumes(process)):
            out[GCS_ANNOTATION] = "true"
        return out

    # --- jobs ------------------------------------------------------------------------------
    def job_spec(self, job: Job, pod: Pod) -> Obj:
        spec: Obj = {"backoffLimit": job.retries}
        if job.timeout_seconds:
            spec["activeDeadlineSeconds"] = int(job.timeout_seconds)
        spec["ttlSecondsAfterFinished"] = int(job.ttl_seconds)
        spec["template"] = pod.template()
        return spec

    def batch_job(self, job: Job) -> list[Obj]:
        container = self.container("main", job.name, job.process)
        pod = self.pod(job.name, job.process, [container], restart="Never")
        if job.schedule is None:
            name = naming.object_name(self.project, job.name)
            return [self.on_demand("batch/v1", "Job", name, job.name, self.job_spec(job, pod))]
        s = job.schedule
        name = naming.object_name(self.project, job.name, limit=naming.CRONJOB_NAME_LIMIT)
        obj = self.meta("batch/v1", "CronJob", name, job.name)
        spec: Obj = {"schedule": s.cron, **cron_policy(s, "timeZone")}
        spec["jobTemplate"] = {
            "metadata": {"labels": naming.workload_labels(self.project, job.name)},
            "spec": self.job_spec(job, pod),
        }
        obj["spec"] = spec
        return [obj]


def _ref(secret: str, key: str) -> Any:
    from mizzen.plan.model import SecretRef

    return SecretRef(secret, key)


def _sorted(objects: list[Obj]) -> list[Obj]:
    def key(obj: Obj) -> tuple[int, str]:
        kind = obj["kind"]
        rank = _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)
        return rank, obj["metadata"]["name"]

    return sorted(objects, key=key)
