"""Distributed training: a command run by N workers that rendezvous, PyTorch or TensorFlow.

On this machine: N processes with the variables the Kubeflow training operator sets
(`MASTER_ADDR`/`MASTER_PORT`/`WORLD_SIZE`/`RANK`, or `TF_CONFIG`). In a cluster: a
PyTorchJob (Master + Workers) or a TFJob (Workers, worker 0 the chief).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

from pydantic import Field

from mizzen.kinds.base import Compiled, JobKind, Launch, Obj, Rules
from mizzen.spec.base import Model

if TYPE_CHECKING:
    from mizzen.plan.model import Job, Pipeline, Process, Step
    from mizzen.targets.kubernetes.render import Renderer

API = "kubeflow.org/v1"


class DistributedSpec(Model):
    framework: Literal["pytorch", "tensorflow"]
    workers: int = Field(
        2, ge=1, description="Worker count (including the PyTorch master / TF chief)"
    )
    master_port: int = Field(29500, ge=1, le=65535, description="PyTorch rendezvous port")


@dataclass(frozen=True)
class DistributedPlan:
    framework: Literal["pytorch", "tensorflow"]
    workers: int
    master_port: int = 29500

    @property
    def operator_kind(self) -> str:
        return "PyTorchJob" if self.framework == "pytorch" else "TFJob"


class Distributed(JobKind):
    name = "distributed"
    field = "distributed"
    label = "training job"
    runner = False  # it distributes a `command`
    example: ClassVar[dict[str, Any]] = {
        "command": ["python", "-c", "import os; print(os.environ['RANK'])"],
        "distributed": {"framework": "pytorch", "workers": 2},
    }
    controllers = ((API, "PyTorchJob"), (API, "TFJob"))
    operator = "kubeflow.org"
    installs = "the Kubeflow training operator (kubeflow/training-operator: `kubectl apply --server-side -k github.com/kubeflow/training-operator.git/manifests/overlays/standalone`)"

    def fields(self) -> dict[str, Any]:
        return {"distributed": (DistributedSpec | None, None)}

    def misplaced(self, field: str) -> str:
        return "`distributed` applies to a `command` job"

    def check(self, job: Any) -> None:
        if not job.command:
            raise ValueError(self.misplaced("distributed"))

    def compile(self, c: Any, name: str, job: Any) -> Compiled:
        d = job.distributed
        return Compiled(
            argv=[*job.command, *job.args],
            payload=DistributedPlan(d.framework, d.workers, d.master_port),
        )

    # --- this machine ------------------------------------------------------------------
    def launches(
        self, job: Job, argv: list[str], env: dict[str, str], run_dir: Path
    ) -> list[Launch]:
        from mizzen.targets.local.distributed import worker_envs

        envs = worker_envs(job.spec)
        return [
            Launch(argv=list(argv), label=f"{job.name}/worker-{i}", env=env)
            for i, env in enumerate(envs)
        ]

    # --- Kubernetes ---------------------------------------------------------------------
    def render(self, r: Renderer, workload: Any) -> list[Obj]:
        from mizzen.errors import NotSupportedError
        from mizzen.targets.kubernetes import naming

        job: Job = workload
        if job.schedule is not None:
            raise NotSupportedError(
                f"job {job.name!r}: a schedule on distributed training",
                "kubernetes",
                hint="put the job in a pipeline with a `schedule:` (an Argo CronWorkflow runs it)",
            )
        plan: DistributedPlan = job.spec
        name = naming.object_name(r.project, job.name)
        spec = self.training_spec(r, job, job.process)
        return [r.on_demand(API, plan.operator_kind, name, job.name, spec)]

    def training_spec(self, r: Renderer, job: Job, process: Process) -> Obj:
        dist: DistributedPlan = job.spec
        pytorch = dist.framework == "pytorch"
        cname, port = (
            ("pytorch", {"name": "pytorchjob-port", "containerPort": dist.master_port})
            if pytorch
            else ("tensorflow", {"name": "tfjob-port", "containerPort": 2222})
        )
        container = r.container(cname, job.name, process, ports=[port])
        pod = r.pod(job.name, process, [container], restart="Never")
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

    def step(
        self, r: Renderer, pipe: Pipeline, step: Step, job: Job, process: Process
    ) -> Obj | None:
        plan: DistributedPlan = job.spec
        lead = "Master" if plan.framework == "pytorch" else "Worker"
        return r.resource_step(
            pipe,
            step,
            {"apiVersion": API, "kind": plan.operator_kind},
            self.training_spec(r, job, process),
            ok=f"status.replicaStatuses.{lead}.succeeded > 0",
            bad=f"status.replicaStatuses.{lead}.failed > 0",
        )

    def roles(self, r: Renderer) -> dict[str, Rules]:
        stepped = sorted(
            {j.spec.operator_kind.lower() + "s" for j in r.stepped_jobs() if j.kind == self.name}
        )
        if not stepped:
            return {}
        verbs = ["create", "get", "list", "watch", "patch", "delete"]
        return {"workflow": [{"apiGroups": ["kubeflow.org"], "resources": stepped, "verbs": verbs}]}

    def outcome(self, obj: Obj) -> int | None:
        from mizzen.targets.kubernetes.outcomes import condition_outcome

        return condition_outcome(obj)
