"""Plan -> Kubernetes objects: a pure function, stable order, never a secret value.

`render(plan)` needs no cluster and imports no Kubernetes client. The objects carry the
project labels; `mizzen.io/revision` is stamped by the release (see `release.stamp`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from mizzen.errors import NotSupportedError, UsageError
from mizzen.plan.model import (
    EnvVar,
    Job,
    Pipeline,
    Plan,
    Process,
    Schedule,
    Service,
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
    store_volume,
    volume_context,
    volume_mount,
    volume_objects,
)

Obj = dict[str, Any]
GPU = "nvidia.com/gpu"
APP_DIR = "/app"  # where the image holds the project (the `mizzen init` Dockerfile)
ON_DEMAND = "mizzen.io/on-demand"  # annotation: applied by `mizzen run`, not by a release

SPARK_API = "sparkoperator.k8s.io/v1beta2"
KUBEFLOW_API = "kubeflow.org/v1"
ARGO_API = "argoproj.io/v1alpha1"

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
    return _Renderer(plan).objects()


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
    for job in plan.jobs.values():
        if job.spark is not None:
            out += _spark_warnings(plan, job)
    return out


def _spark_warnings(plan: Plan, job: Job) -> list[str]:
    """A Spark job needs an image with Spark, and cannot commit through a Mountpoint mount."""
    assert job.spark is not None
    out = []
    if job.spark.image is None and job.process.image is None and not _built_on_spark(plan):
        out.append(
            f"job {job.name} (spark): the Spark operator runs its driver and executors in the "
            f"project image, built FROM an image without Spark ({plan.dockerfile or 'no Dockerfile'}): "
            f"the driver will not start. Set `spark.image` to an image with Spark "
            f"{job.spark.spark_version} and the project under {APP_DIR} (e.g. built FROM "
            f"spark:{job.spark.spark_version}-python3; see docs/workloads.md)"
        )
    for m in job.process.mounts:
        if m.kind == "blob" and m.blob is not None and not m.read_only:
            url = m.blob.url
            if url.startswith(("s3://", "s3a://")):
                out.append(
                    f"job {job.name} (spark) mounts volume {m.volume} read-write from S3 through "
                    "Mountpoint: Spark commits its output by renaming files, which Mountpoint does "
                    f"not support. Have Spark write to {'s3a://' + url.split('://', 1)[1]} (its own "
                    "S3 client: org.apache.hadoop:hadoop-aws in spark.packages) and leave the "
                    "volume out of the job (`volumes: []`), or make the volume readOnly"
                )
    return out


def _built_on_spark(plan: Plan) -> bool:
    """Whether the project's Dockerfile builds FROM an image that carries Spark."""
    from pathlib import Path

    path = Path(plan.root) / (plan.dockerfile or "Dockerfile")
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return False
    bases = [
        line.split()[1]
        for line in lines
        if line.strip().upper().startswith("FROM ") and len(line.split()) > 1
    ]
    defaults = {
        line.split("=", 1)[0].split()[-1]: line.split("=", 1)[1].strip()
        for line in lines
        if line.strip().upper().startswith("ARG ") and "=" in line
    }
    final = bases[-1] if bases else ""
    if final.startswith("${") and final.endswith("}"):
        final = defaults.get(final[2:-1], final)
    return "spark" in final.lower()


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
class _Pod:
    spec: Obj
    labels: dict[str, str]
    annotations: dict[str, str]

    def template(self) -> Obj:
        meta: Obj = {"labels": self.labels}
        if self.annotations:
            meta["annotations"] = self.annotations
        return {"metadata": meta, "spec": self.spec}


class _Renderer:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.project = plan.project
        k = plan.kubernetes
        self.namespace = k.namespace or "default"
        self.own_sa = k.service_account_name is None
        self.sa = k.service_account_name or naming.service_account_name(self.project)
        self.vctx = volume_context(plan, self.namespace)
        self.store_mount = store_volume(plan.store)
        self.config_digest = hashlib.sha256(
            json.dumps(plan.config, sort_keys=True).encode()
        ).hexdigest()[:16]

    # --- the object list ------------------------------------------------------------------
    def objects(self) -> list[Obj]:
        workloads: list[Obj] = []
        for job in self.plan.jobs.values():
            workloads += self.job(job)
        for pipe in self.plan.pipelines.values():
            workloads += self.pipeline(pipe)
        for svc in self.plan.services.values():
            workloads += self.service(svc)
        from mizzen.notify.prometheus import prometheus_rule

        rule = prometheus_rule(self.plan)
        if rule is not None:  # namespaced and labelled like every other object
            meta = self.meta(rule["apiVersion"], rule["kind"], rule["metadata"]["name"])
            workloads.append({**meta, "spec": rule["spec"]})
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
        """Least privilege, per kind of pod that talks to the API: Spark drivers create their
        executors; Argo's executor reports step results and creates the operator objects of
        resource steps. Every other pod runs with no token at all."""
        jobs = self.plan.jobs
        out: dict[str, list[Obj]] = {}
        stepped = [
            jobs[n]
            for n in dict.fromkeys(s.job for p in self.plan.pipelines.values() for s in p.steps)
        ]
        if any(j.spark for j in [*jobs.values(), *stepped]):
            out["spark"] = [
                {
                    "apiGroups": [""],
                    "resources": ["pods", "services", "configmaps", "persistentvolumeclaims"],
                    "verbs": [
                        "create",
                        "get",
                        "list",
                        "watch",
                        "patch",
                        "update",
                        "delete",
                        "deletecollection",
                    ],
                }
            ]
        if self.plan.pipelines:
            rules: list[Obj] = [
                {
                    "apiGroups": ["argoproj.io"],
                    "resources": ["workflowtaskresults"],
                    "verbs": ["create", "patch"],
                }
            ]
            verbs = ["create", "get", "list", "watch", "patch", "delete"]
            if any(j.spark for j in stepped):
                rules.append(
                    {
                        "apiGroups": ["sparkoperator.k8s.io"],
                        "resources": ["sparkapplications"],
                        "verbs": verbs,
                    }
                )
            kinds = sorted({_kubeflow_plural(j) for j in stepped if j.distributed})
            if kinds:
                rules.append({"apiGroups": ["kubeflow.org"], "resources": kinds, "verbs": verbs})
            out["workflow"] = rules
        return out

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
        out: list[Obj] = [{"name": "MIZZEN_TARGET", "value": "kubernetes"}]
        store = self.plan.store
        if store is not None:
            out.append({"name": "MIZZEN_STORE", "value": store.url})
            out.append(
                {"name": "MIZZEN_STORE_OPTIONS", "value": json.dumps(store.options, sort_keys=True)}
            )
            if store.secret:
                out.append({"name": "MIZZEN_STORE_SECRET", "value": store.secret})
        if self.plan.env:
            out.append({"name": "MIZZEN_ENV", "value": self.plan.env})
        out.append({"name": "MIZZEN_IMAGE", "value": self.image(process, "env")})
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
            out.append({"name": "MIZZEN_SPEC_DIGEST", "value": self.plan.spec_digest})
        alerts = alerts_to_json(self.plan.alerts)
        if alerts:
            out.append({"name": "MIZZEN_ALERTS", "value": alerts})
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
        """The pod volumes of `process`, plus a `file://` project store (so runs record)."""
        out = [pod_volume(m, self.vctx) for m in process.mounts]
        if self.store_mount is not None:
            out.append(self.store_mount[0])
        return out

    def volume_mounts(self, process: Process) -> list[Obj]:
        out = [volume_mount(m) for m in process.mounts]
        if self.store_mount is not None:
            out.append(self.store_mount[1])
        return out

    def pod(
        self,
        workload: str,
        process: Process,
        containers: list[Obj],
        *,
        restart: str,
        roll_on_config: bool = False,
    ) -> _Pod:
        k = self.plan.kubernetes
        place = process.placement
        spec: Obj = {
            "serviceAccountName": place.service_account_name or self.sa,
            "automountServiceAccountToken": False,
            "restartPolicy": restart,
            "securityContext": {
                "runAsNonRoot": k.run_as_non_root,
                "runAsUser": k.run_as_user,
                "runAsGroup": k.run_as_user,
                "fsGroup": k.run_as_user,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
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
        return _Pod(spec, labels, annotations)

    def annotations(self, process: Process) -> dict[str, str]:
        """The spec's pod annotations, plus what a CSI driver needs on every pod that mounts
        its volumes (GCS FUSE injects its sidecar only where the pod asks for it)."""
        out = dict(process.placement.annotations)
        if needs_gcs_annotation(self.volumes(process)):
            out[GCS_ANNOTATION] = "true"
        return out

    # --- jobs ------------------------------------------------------------------------------
    def job(self, job: Job) -> list[Obj]:
        for applies, renderer in JOB_KINDS:
            if applies(job):
                return renderer(self, job)
        raise NotSupportedError(f"job {job.name!r}", "kubernetes")  # pragma: no cover

    def job_spec(self, job: Job, pod: _Pod) -> Obj:
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
            obj = self.meta("batch/v1", "Job", naming.object_name(self.project, job.name), job.name)
            obj["metadata"]["annotations"] = {ON_DEMAND: "true"}
            obj["spec"] = self.job_spec(job, pod)
            return [obj]
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

    def spark_spec(self, job: Job, process: Process) -> Obj:
        spark = job.spark
        assert spark is not None
        if job.timeout_seconds:
            raise NotSupportedError(
                f"job {job.name!r}: `timeout` with `spark`",
                "kubernetes",
                hint="SparkApplication has no deadline; remove `timeout` or set spark.network.timeout in conf",
            )
        if process.working_dir:
            raise NotSupportedError(
                f"job {job.name!r}: `workingDir` with `spark`",
                "kubernetes",
                hint="the Spark operator starts the driver in the image's WORKDIR; remove `workingDir` and give paths relative to it",
            )
        jar = spark.main_file.endswith(".jar")
        k = self.plan.kubernetes
        env = self.env(process)
        mounts = self.volume_mounts(process)
        annotations = self.annotations(process)

        def side(cores: int, memory: str, extra: Obj) -> Obj:
            out: Obj = {"cores": cores, "memory": spark_memory(memory)}
            out.update(extra)
            out["labels"] = {
                **naming.workload_labels(self.project, job.name),
                **process.placement.labels,
            }
            if annotations:
                out["annotations"] = annotations
            out["env"] = env
            if mounts:
                out["volumeMounts"] = mounts
            out["securityContext"] = self.security(process)
            out["podSecurityContext"] = {
                "runAsNonRoot": k.run_as_non_root,
                "runAsUser": k.run_as_user,
                "runAsGroup": k.run_as_user,
                "fsGroup": k.run_as_user,
                "seccompProfile": {"type": "RuntimeDefault"},
            }
            if process.placement.node_selector:
                out["nodeSelector"] = dict(process.placement.node_selector)
            if process.placement.tolerations:
                out["tolerations"] = [dict(t) for t in process.placement.tolerations]
            if process.placement.affinity:
                out["affinity"] = process.placement.affinity
            return out

        spec: Obj = {
            "type": ("Scala" if spark.main_class else "Java") if jar else "Python",
            "mode": "cluster",
            "image": check_image(spark.image, f"job {job.name}: spark.image")
            if spark.image
            else self.image(process, job.name),
            "imagePullPolicy": "IfNotPresent",
        }
        if jar is False:
            spec["pythonVersion"] = "3"
        if k.image_pull_secrets:
            spec["imagePullSecrets"] = list(k.image_pull_secrets)
        spec["mainApplicationFile"] = f"local://{APP_DIR}/{spark.main_file.lstrip('./')}"
        if spark.main_class:
            spec["mainClass"] = spark.main_class
        if process.command:
            spec["arguments"] = list(process.command)
        spec["sparkVersion"] = spark.spark_version
        if spark.conf:
            spec["sparkConf"] = dict(sorted(spark.conf.items()))
        if spark.packages:
            spec["deps"] = {"packages": list(spark.packages)}
        if job.retries:
            spec["restartPolicy"] = {
                "type": "OnFailure",
                "onFailureRetries": job.retries,
                "onFailureRetryInterval": max(int(job.retry_delay_seconds), 1),
                "onSubmissionFailureRetries": job.retries,
                "onSubmissionFailureRetryInterval": max(int(job.retry_delay_seconds), 1),
            }
        else:
            spec["restartPolicy"] = {"type": "Never"}
        spec["timeToLiveSeconds"] = int(job.ttl_seconds)
        volumes = self.volumes(process)
        if volumes:
            spec["volumes"] = volumes
        sa = process.placement.service_account_name
        spec["driver"] = side(
            spark.driver_cores,
            spark.driver_memory,
            {"serviceAccount": self.role_account("spark", sa)},
        )
        spec["executor"] = side(
            spark.executor_cores,
            spark.executor_memory,
            {"instances": spark.executors, "serviceAccount": sa or self.sa},
        )
        return spec

    def spark_job(self, job: Job) -> list[Obj]:
        name = naming.object_name(self.project, job.name)
        spec = self.spark_spec(job, job.process)
        if job.schedule is None:
            obj = self.meta(SPARK_API, "SparkApplication", name, job.name)
            obj["metadata"]["annotations"] = {ON_DEMAND: "true"}
            obj["spec"] = spec
            return [obj]
        s = job.schedule
        obj = self.meta(SPARK_API, "ScheduledSparkApplication", name, job.name)
        sched: Obj = {"schedule": s.cron}
        if s.time_zone:
            sched["timeZone"] = s.time_zone
        sched["concurrencyPolicy"] = s.concurrency
        sched["successfulRunHistoryLimit"] = 3
        sched["failedRunHistoryLimit"] = 3
        sched["template"] = spec
        obj["spec"] = sched
        return [obj]

    def training_spec(self, job: Job, process: Process) -> Obj:
        dist = job.distributed
        assert dist is not None
        pytorch = dist.framework == "pytorch"
        cname, port = (
            ("pytorch", {"name": "pytorchjob-port", "containerPort": dist.master_port})
            if pytorch
            else ("tensorflow", {"name": "tfjob-port", "containerPort": 2222})
        )
        container = self.container(cname, job.name, process, ports=[port])
        pod = self.pod(job.name, process, [container], restart="Never")
        restart = "OnFailure" if job.retries else "Never"
        replicas: Obj
        if pytorch:  # rank 0 is the Master; WORLD_SIZE counts it
            replicas = {
                "Master": {"replicas": 1, "restartPolicy": restart, "template": pod.template()}
            }
            if dist.workers > 1:
                replicas["Worker"] = {
                    "replicas": dist.workers - 1,
                    "restartPolicy": restart,
                    "template": pod.template(),
                }
        else:  # N workers, worker 0 acting as chief: the TF_CONFIG the local target sets too
            replicas = {
                "Worker": {
                    "replicas": dist.workers,
                    "restartPolicy": restart,
                    "template": pod.template(),
                }
            }
        run_policy: Obj = {
            "backoffLimit": job.retries,
            "cleanPodPolicy": "None",
            "ttlSecondsAfterFinished": int(job.ttl_seconds),
        }
        if job.timeout_seconds:
            run_policy["activeDeadlineSeconds"] = int(job.timeout_seconds)
        key = "pytorchReplicaSpecs" if pytorch else "tfReplicaSpecs"
        return {key: replicas, "runPolicy": run_policy}

    def training_job(self, job: Job) -> list[Obj]:
        dist = job.distributed
        assert dist is not None
        if job.schedule is not None:
            raise NotSupportedError(
                f"job {job.name!r}: a schedule on distributed training",
                "kubernetes",
                hint="put the job in a pipeline with a `schedule:` (an Argo CronWorkflow runs it)",
            )
        kind = "PyTorchJob" if dist.framework == "pytorch" else "TFJob"
        obj = self.meta(KUBEFLOW_API, kind, naming.object_name(self.project, job.name), job.name)
        obj["metadata"]["annotations"] = {ON_DEMAND: "true"}
        obj["spec"] = self.training_spec(job, job.process)
        return [obj]

    # --- pipelines -------------------------------------------------------------------------
    def pipeline(self, pipe: Pipeline) -> list[Obj]:
        name = naming.object_name(self.project, pipe.name)
        spec = self.workflow_spec(pipe)
        if pipe.schedule is None:
            obj = self.meta(ARGO_API, "Workflow", name, pipe.name)
            obj["metadata"]["annotations"] = {ON_DEMAND: "true"}
            obj["spec"] = spec
            return [obj]
        s = pipe.schedule
        obj = self.meta(ARGO_API, "CronWorkflow", name, pipe.name)
        cron: Obj = {"schedules": [s.cron], **cron_policy(s, "timezone")}
        cron["workflowMetadata"] = {"labels": naming.workload_labels(self.project, pipe.name)}
        cron["workflowSpec"] = spec
        obj["spec"] = cron
        return [obj]

    def workflow_spec(self, pipe: Pipeline) -> Obj:
        k = self.plan.kubernetes
        tasks: list[Obj] = []
        templates: list[Obj] = []
        volumes: dict[str, Obj] = {}
        for step in pipe.steps:
            task: Obj = {"name": step.name, "template": step.name}
            if step.after:
                task["dependencies"] = list(step.after)
            tasks.append(task)
            template, step_volumes = self.step_template(pipe, step)
            templates.append(template)
            for vol in step_volumes:
                volumes.setdefault(vol["name"], vol)
        spec: Obj = {
            "entrypoint": "main",
            # step containers get no API token; Argo's executor (init/wait containers, and
            # resource steps) runs as the workflow account, which may report results
            "serviceAccountName": self.sa,
            "automountServiceAccountToken": False,
            "executor": {"serviceAccountName": self.role_account("workflow")},
            "securityContext": {
                "runAsNonRoot": k.run_as_non_root,
                "runAsUser": k.run_as_user,
                "runAsGroup": k.run_as_user,
                "fsGroup": k.run_as_user,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "podMetadata": {"labels": naming.workload_labels(self.project, pipe.name)},
        }
        if pipe.parallelism:
            spec["parallelism"] = pipe.parallelism
        if pipe.timeout_seconds:
            spec["activeDeadlineSeconds"] = int(pipe.timeout_seconds)
        spec["ttlStrategy"] = {"secondsAfterCompletion": 86400}
        if k.image_pull_secrets:
            spec["imagePullSecrets"] = [{"name": s} for s in k.image_pull_secrets]
        if volumes:
            spec["volumes"] = [volumes[n] for n in sorted(volumes)]
        spec["templates"] = [{"name": "main", "dag": {"tasks": tasks}}, *templates]
        return spec

    def step_template(self, pipe: Pipeline, step: Step) -> tuple[Obj, list[Obj]]:
        job = self.plan.jobs[step.job]
        process = step.process or job.process
        labels = {
            **naming.workload_labels(self.project, pipe.name),
            naming.COMPONENT: step.name,
            **process.placement.labels,
        }
        template: Obj = {"name": step.name, "metadata": {"labels": labels}}
        annotations = self.annotations(process)
        if job.spark or job.distributed:
            if process.placement.annotations:
                template["metadata"]["annotations"] = dict(process.placement.annotations)
            template["serviceAccountName"] = self.role_account("workflow")
            template["automountServiceAccountToken"] = True
            template["resource"] = self.resource_step(pipe, step, job, process)
            return template, []
        if annotations:
            template["metadata"]["annotations"] = annotations
        container = self.container("main", job.name, process)
        container["env"] += [
            {"name": "MIZZEN_PIPELINE", "value": pipe.name},
            {"name": "MIZZEN_STEP", "value": step.name},
        ]
        template["container"] = container
        pod = self.pod(job.name, process, [container], restart="Never")
        for key in ("nodeSelector", "tolerations", "affinity"):
            if key in pod.spec:
                template[key] = pod.spec[key]
        if process.placement.service_account_name:
            template["serviceAccountName"] = process.placement.service_account_name
        if job.retries:
            template["retryStrategy"] = {
                "limit": job.retries,
                "retryPolicy": "OnFailure",
                "backoff": {"duration": f"{int(job.retry_delay_seconds)}s", "factor": 2},
            }
        if job.timeout_seconds:
            template["activeDeadlineSeconds"] = int(job.timeout_seconds)
        return template, pod.spec.get("volumes", [])

    def resource_step(self, pipe: Pipeline, step: Step, job: Job, process: Process) -> Obj:
        """A pipeline step that is itself an operator object: Argo creates it and waits."""
        labels = {**naming.workload_labels(self.project, pipe.name), naming.COMPONENT: step.name}
        meta = {
            "generateName": naming.object_name(self.project, pipe.name, step.name, limit=50) + "-",
            "labels": labels,
        }
        if job.spark:
            obj = {
                "apiVersion": SPARK_API,
                "kind": "SparkApplication",
                "metadata": meta,
                "spec": self.spark_spec(job, process),
            }
            ok, bad = (
                "status.applicationState.state == COMPLETED",
                "status.applicationState.state in (FAILED, SUBMISSION_FAILED)",
            )
        else:
            assert job.distributed is not None
            kind = "PyTorchJob" if job.distributed.framework == "pytorch" else "TFJob"
            lead = "Master" if kind == "PyTorchJob" else "Worker"
            obj = {
                "apiVersion": KUBEFLOW_API,
                "kind": kind,
                "metadata": meta,
                "spec": self.training_spec(job, process),
            }
            ok, bad = (
                f"status.replicaStatuses.{lead}.succeeded > 0",
                f"status.replicaStatuses.{lead}.failed > 0",
            )
        return {
            "action": "create",
            "setOwnerReference": True,
            "successCondition": ok,
            "failureCondition": bad,
            "manifest": yaml.dump(obj, Dumper=_Dumper, sort_keys=False, width=1000),
        }

    # --- services --------------------------------------------------------------------------
    def service(self, svc: Service) -> list[Obj]:
        name = naming.object_name(self.project, svc.name)
        ports = (
            [{"name": "http", "containerPort": svc.port, "protocol": "TCP"}] if svc.port else None
        )
        container = self.container(
            "main", svc.name, svc.process, wrap=svc.model is None, ports=ports, service=True
        )
        if svc.health is not None:
            ready = {
                "httpGet": {"path": svc.health.path, "port": svc.health.port},
                "initialDelaySeconds": int(svc.health.initial_delay_seconds),
                "periodSeconds": 10,
            }
            live_path = "/v2/health/live" if svc.model is not None else svc.health.path
            live = {
                "httpGet": {"path": live_path, "port": svc.health.port},
                "initialDelaySeconds": int(svc.health.initial_delay_seconds),
                "periodSeconds": 20,
                "failureThreshold": 3,
            }
            period = 5
            container["startupProbe"] = {
                "httpGet": {"path": svc.health.path, "port": svc.health.port},
                "initialDelaySeconds": int(svc.health.initial_delay_seconds),
                "periodSeconds": period,
                "failureThreshold": max(1, -(-int(svc.health.startup_timeout_seconds) // period)),
            }
            ready["initialDelaySeconds"] = live["initialDelaySeconds"] = 0
            container["readinessProbe"] = ready
            container["livenessProbe"] = live
        pod = self.pod(svc.name, svc.process, [container], restart="Always", roll_on_config=True)
        deploy = self.meta("apps/v1", "Deployment", name, svc.name)
        spec: Obj = {}
        if svc.autoscale is None:
            spec["replicas"] = svc.replicas
        spec["revisionHistoryLimit"] = 5
        spec["selector"] = {
            "matchLabels": {naming.PROJECT: self.project, naming.WORKLOAD: svc.name}
        }
        spec["template"] = pod.template()
        deploy["spec"] = spec
        out = [deploy]
        if svc.port:
            service = self.meta("v1", "Service", name, svc.name)
            service["spec"] = {
                "type": "ClusterIP",
                "selector": {naming.PROJECT: self.project, naming.WORKLOAD: svc.name},
                "ports": [
                    {"name": "http", "port": svc.port, "targetPort": "http", "protocol": "TCP"}
                ],
            }
            out.append(service)
        if svc.autoscale is not None:
            a = svc.autoscale
            hpa = self.meta("autoscaling/v2", "HorizontalPodAutoscaler", name, svc.name)
            hpa["spec"] = {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
                "minReplicas": max(a.min, svc.replicas),
                "maxReplicas": a.max,
                "metrics": [
                    {
                        "type": "Resource",
                        "resource": {
                            "name": "cpu",
                            "target": {"type": "Utilization", "averageUtilization": a.target_cpu},
                        },
                    }
                ],
            }
            out.append(hpa)
        return out


def _ref(secret: str, key: str) -> Any:
    from mizzen.plan.model import SecretRef

    return SecretRef(secret, key)


def _kubeflow_plural(job: Job) -> str:
    assert job.distributed is not None
    return "pytorchjobs" if job.distributed.framework == "pytorch" else "tfjobs"


def _sorted(objects: list[Obj]) -> list[Obj]:
    def key(obj: Obj) -> tuple[int, str]:
        kind = obj["kind"]
        rank = _KIND_ORDER.index(kind) if kind in _KIND_ORDER else len(_KIND_ORDER)
        return rank, obj["metadata"]["name"]

    return sorted(objects, key=key)


# How each kind of job renders; later kinds add an entry (first match wins). Notebook jobs
# are plain Jobs: their command is already the papermill invocation.
JOB_KINDS: list[tuple[Callable[[Job], bool], Callable[[_Renderer, Job], list[Obj]]]] = [
    (lambda j: j.spark is not None, _Renderer.spark_job),
    (lambda j: j.distributed is not None, _Renderer.training_job),
    (lambda j: True, _Renderer.batch_job),
]
