"""A pipeline: a DAG of jobs. On this machine the local target's DAG runner runs its steps
(in parallel where they may); in a cluster it is an Argo Workflow (a CronWorkflow with a
`schedule`) whose steps are containers running `mizzen exec`, or `resource` steps that
create a job kind's operator object and wait for it."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, ClassVar

from mizzen.kinds.base import Obj, Rules, WorkloadKind

if TYPE_CHECKING:
    from mizzen.plan import model as p
    from mizzen.plan.compile import Compiler
    from mizzen.targets.kubernetes.render import Renderer

API = "argoproj.io/v1alpha1"


class Pipeline(WorkloadKind):
    name = "pipeline"
    label = "pipeline"
    controllers = ((API, "CronWorkflow"), (API, "Workflow"))
    operator = "argoproj.io"
    section = "pipelines"
    example: ClassVar[dict[str, Any]] = {"steps": ["hello", {"job": "bye", "after": ["hello"]}]}
    example_jobs: ClassVar[dict[str, dict[str, Any]]] = {
        "hello": {"command": ["python", "-c", "print('hello')"]},
        "bye": {"command": ["python", "-c", "print('bye')"]},
    }
    installs = "Argo Workflows (argoproj/argo-workflows: `kubectl apply -n argo -f https://github.com/argoproj/argo-workflows/releases/latest/download/install.yaml`)"

    # --- plan --------------------------------------------------------------------------
    def compile(self, c: Compiler, name: str, pipe: Any, jobs: dict[str, p.Job]) -> p.Pipeline:
        from mizzen.plan import model as p
        from mizzen.spec.units import parse_duration

        steps = tuple(self._step(c, s, c.project.jobs[s.job], jobs[s.job]) for s in pipe.steps)
        return p.Pipeline(
            name=name,
            steps=steps,
            schedule=c.schedule(pipe.schedule),
            parallelism=pipe.parallelism,
            timeout_seconds=parse_duration(pipe.timeout) if pipe.timeout else None,
        )

    def _step(self, c: Compiler, step: Any, spec: Any, job: p.Job) -> p.Step:
        """A step that replaces its job's args gets its own Process (argv and mounts)."""
        from mizzen.plan import model as p

        if step.args is None:
            return p.Step(name=step.step_name, job=step.job, after=tuple(step.after))
        if spec.command is None:
            argv = [*job.process.command[: len(job.process.command) - len(spec.args)], *step.args]
        else:
            argv = [*spec.command, *step.args]
        from mizzen.kinds import job_kind

        process = c.process(job.name, spec, argv)
        if job_kind(job.kind).wraps_args:
            # the kind's own command (papermill, the Spark main file) keeps its mounts and env
            names = {m.volume for m in job.process.mounts}
            process = replace(
                process,
                mounts=job.process.mounts
                + tuple(m for m in process.mounts if m.volume not in names),
                env=tuple(c.last_wins([*job.process.env, *process.env])),
            )
        args = tuple(process.command[len(process.command) - len(step.args) :])
        return p.Step(
            name=step.step_name, job=step.job, after=tuple(step.after), args=args, process=process
        )

    # --- Kubernetes ---------------------------------------------------------------------
    def render(self, r: Renderer, workload: Any) -> list[Obj]:
        from mizzen.targets.kubernetes import naming
        from mizzen.targets.kubernetes.render import cron_policy

        pipe: p.Pipeline = workload
        name = naming.object_name(r.project, pipe.name)
        spec = self.workflow_spec(r, pipe)
        if pipe.schedule is None:
            return [r.on_demand(API, "Workflow", name, pipe.name, spec)]
        s = pipe.schedule
        obj = r.meta(API, "CronWorkflow", name, pipe.name)
        cron: Obj = {"schedules": [s.cron], **cron_policy(s, "timezone")}
        cron["workflowMetadata"] = {"labels": naming.workload_labels(r.project, pipe.name)}
        cron["workflowSpec"] = spec
        obj["spec"] = cron
        return [obj]

    def workflow_spec(self, r: Renderer, pipe: p.Pipeline) -> Obj:
        from mizzen.targets.kubernetes import naming

        k = r.plan.kubernetes
        tasks: list[Obj] = []
        templates: list[Obj] = []
        volumes: dict[str, Obj] = {}
        for step in pipe.steps:
            task: Obj = {"name": step.name, "template": step.name}
            if step.after:
                task["dependencies"] = list(step.after)
            tasks.append(task)
            template, step_volumes = self.step_template(r, pipe, step)
            templates.append(template)
            for vol in step_volumes:
                volumes.setdefault(vol["name"], vol)
        spec: Obj = {
            "entrypoint": "main",
            # step containers get no API token; Argo's executor (init/wait containers, and
            # resource steps) runs as the workflow account, which may report results
            "serviceAccountName": r.sa,
            "automountServiceAccountToken": False,
            "executor": {"serviceAccountName": r.role_account("workflow")},
            "securityContext": r.pod_security(),
            "podMetadata": {"labels": naming.workload_labels(r.project, pipe.name)},
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

    def step_template(self, r: Renderer, pipe: p.Pipeline, step: p.Step) -> tuple[Obj, list[Obj]]:
        from mizzen.kinds import job_kind
        from mizzen.targets.kubernetes import naming

        job = r.plan.jobs[step.job]
        process = step.process or job.process
        labels = {
            **naming.workload_labels(r.project, pipe.name),
            naming.COMPONENT: step.name,
            **process.placement.labels,
        }
        template: Obj = {"name": step.name, "metadata": {"labels": labels}}
        resource = job_kind(job.kind).step(r, pipe, step, job, process)
        if resource is not None:
            if process.placement.annotations:
                template["metadata"]["annotations"] = dict(process.placement.annotations)
            template["serviceAccountName"] = r.role_account("workflow")
            template["automountServiceAccountToken"] = True
            template["resource"] = resource
            return template, []
        annotations = r.annotations(process)
        if annotations:
            template["metadata"]["annotations"] = annotations
        container = r.container("main", job.name, process)
        from mizzen import contract

        container["env"] += [
            {"name": k, "value": v} for k, v in contract.step_vars(pipe.name, step.name).items()
        ]
        template["container"] = container
        pod = r.pod(job.name, process, [container], restart="Never")
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

    def roles(self, r: Renderer) -> dict[str, Rules]:
        if not r.plan.pipelines:
            return {}
        rule = {
            "apiGroups": ["argoproj.io"],
            "resources": ["workflowtaskresults"],
            "verbs": ["create", "patch"],
        }
        return {"workflow": [rule]}

    def one_off(self, obj: Obj) -> Obj:
        from mizzen.kinds.base import scheduled_twin

        return scheduled_twin(obj, "Workflow", "workflowSpec")

    def outcome(self, obj: Obj) -> int | None:
        from mizzen.errors import EXIT_FAILED, EXIT_OK

        phase = (obj.get("status") or {}).get("phase")
        if phase == "Succeeded":
            return EXIT_OK
        if phase in ("Failed", "Error"):
            return EXIT_FAILED
        return None
