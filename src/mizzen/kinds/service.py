"""Services: long-running processes. A web app or a streaming worker runs its `command`; a
model service runs `mizzen serve` over models straight from the registry. On this machine
`mizzen up` supervises them (restarts, health checks); in a cluster each is a Deployment
(+ a Service with a `port`, + a HorizontalPodAutoscaler with `autoscale`)."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any, ClassVar

from mizzen.kinds.base import Obj, WorkloadKind

if TYPE_CHECKING:
    from mizzen.plan import model as p
    from mizzen.plan.compile import Compiler
    from mizzen.targets.kubernetes.render import Renderer

DEFAULT_MODEL_PORT = 8080
DEPLOYMENTS = (("apps/v1", "Deployment"),)


class Service(WorkloadKind):
    name = "service"
    label = "service"
    controllers = DEPLOYMENTS
    section = "services"
    example: ClassVar[dict[str, Any]] = {
        "command": ["python", "-m", "http.server", "8000"],
        "port": 8000,
        "health": {"path": "/"},
    }

    # --- plan --------------------------------------------------------------------------
    def argv(self, c: Compiler, svc: Any) -> tuple[list[str], Any, int | None]:
        """(argv, model serving plan, port)."""
        return [*(svc.command or []), *svc.args], None, svc.port

    def compile(self, c: Compiler, name: str, svc: Any) -> p.Service:
        from mizzen.plan import model as p
        from mizzen.spec.units import parse_duration

        argv, model, port = self.argv(c, svc)
        health = None
        if svc.health is not None:
            health = p.Probe(
                path=svc.health.path,
                port=svc.health.port or port or 8080,
                initial_delay_seconds=parse_duration(svc.health.initial_delay),
                startup_timeout_seconds=parse_duration(svc.health.startup_timeout),
            )
        elif model is not None:
            health = p.Probe(
                path="/v2/health/ready", port=port or DEFAULT_MODEL_PORT, initial_delay_seconds=2
            )
        auto = svc.autoscale
        return p.Service(
            name=name,
            process=c.process(name, svc, argv),
            model=model,
            port=port,
            replicas=svc.replicas,
            autoscale=p.Autoscale(auto.min, auto.max, auto.target_cpu) if auto else None,
            health=health,
            restart_delay_seconds=parse_duration(svc.restart_delay),
            kind=self.name,
        )

    # --- Kubernetes ---------------------------------------------------------------------
    def render(self, r: Renderer, workload: Any) -> list[Obj]:
        from mizzen.targets.kubernetes import naming

        svc: p.Service = workload
        name = naming.object_name(r.project, svc.name)
        ports = (
            [{"name": "http", "containerPort": svc.port, "protocol": "TCP"}] if svc.port else None
        )
        container = r.container(
            "main", svc.name, svc.process, wrap=svc.model is None, ports=ports, service=True
        )
        if svc.health is not None:
            self.probes(container, svc)
        pod = r.pod(svc.name, svc.process, [container], restart="Always", roll_on_config=True)
        deploy = r.meta("apps/v1", "Deployment", name, svc.name)
        spec: Obj = {}
        if svc.autoscale is None:
            spec["replicas"] = svc.replicas
        spec["revisionHistoryLimit"] = 5
        spec["selector"] = {"matchLabels": {naming.PROJECT: r.project, naming.WORKLOAD: svc.name}}
        spec["template"] = pod.template()
        deploy["spec"] = spec
        out = [deploy]
        if svc.port:
            service = r.meta("v1", "Service", name, svc.name)
            service["spec"] = {
                "type": "ClusterIP",
                "selector": {naming.PROJECT: r.project, naming.WORKLOAD: svc.name},
                "ports": [
                    {"name": "http", "port": svc.port, "targetPort": "http", "protocol": "TCP"}
                ],
            }
            out.append(service)
        if svc.autoscale is not None:
            a = svc.autoscale
            hpa = r.meta("autoscaling/v2", "HorizontalPodAutoscaler", name, svc.name)
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

    def probes(self, container: Obj, svc: p.Service) -> None:
        """Readiness and liveness on the health path; a startup probe lets a slow start (a
        model that loads) take `health.startupTimeout` before liveness counts."""
        assert svc.health is not None
        health = svc.health
        ready = {
            "httpGet": {"path": health.path, "port": health.port},
            "initialDelaySeconds": 0,
            "periodSeconds": 10,
        }
        live_path = "/v2/health/live" if svc.model is not None else health.path
        live = {
            "httpGet": {"path": live_path, "port": health.port},
            "initialDelaySeconds": 0,
            "periodSeconds": 20,
            "failureThreshold": 3,
        }
        period = 5
        container["startupProbe"] = {
            "httpGet": {"path": health.path, "port": health.port},
            "initialDelaySeconds": int(health.initial_delay_seconds),
            "periodSeconds": period,
            "failureThreshold": max(1, -(-int(health.startup_timeout_seconds) // period)),
        }
        container["readinessProbe"] = ready
        container["livenessProbe"] = live

    def one_off(self, obj: Obj) -> Obj:
        from mizzen.errors import UsageError

        workload = obj["metadata"]["labels"].get("mizzen.io/workload", "?")
        raise UsageError(
            f"{workload!r} is a service: it is released, not run",
            hint="`mizzen release`, then `mizzen status`",
        )

    def outcome(self, obj: Obj) -> int | None:
        return None  # a service does not finish


PUBLISH_EXAMPLE = """\
import numpy as np
from sklearn.linear_model import LogisticRegression

import mizzen

x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
print(mizzen.publish_model("probe-model", LogisticRegression().fit(x, [0, 0, 1, 1])))
"""


class ModelService(Service):
    name = "model-service"
    label = "model service"
    example: ClassVar[dict[str, Any]] = {"model": "probe-model", "port": 8080}
    example_jobs: ClassVar[dict[str, dict[str, Any]]] = {
        "publish": {"command": ["python", "publish.py"]}
    }
    example_files: ClassVar[dict[str, str]] = {"publish.py": PUBLISH_EXAMPLE}

    def argv(self, c: Compiler, svc: Any) -> tuple[list[str], Any, int | None]:
        from mizzen.plan import model as p
        from mizzen.spec.units import parse_duration

        port = svc.port or DEFAULT_MODEL_PORT
        shares = svc.versions or {svc.version or "latest": 100}
        model = p.ModelServing(
            model=svc.model,
            versions=dict(shares),
            max_batch_size=svc.batching.max_batch_size if svc.batching else None,
            max_latency_seconds=parse_duration(svc.batching.max_latency) if svc.batching else None,
        )
        argv = model_server_argv(
            model,
            port,
            # a laptop's server stays private; in a pod it listens for the Service
            host="127.0.0.1" if c.target == "local" else "0.0.0.0",
            workers=server_workers(c, svc),
        )
        return argv, model, port


def model_server_argv(
    model: p.ModelServing, port: int, *, host: str = "0.0.0.0", workers: int | None = None
) -> list[str]:
    """The model server command line, the same locally and in a container."""
    argv = [
        "mizzen",
        "serve",
        model.model,
        "--versions",
        json.dumps(model.versions, separators=(",", ":")),
        "--host",
        host,
        "--port",
        str(port),
    ]
    if workers is not None:
        argv += ["--workers", str(workers)]
    if model.max_batch_size is not None:
        argv += ["--max-batch-size", str(model.max_batch_size)]
    if model.max_latency_seconds is not None:
        argv += ["--max-latency", f"{model.max_latency_seconds}s"]
    return argv


def server_workers(c: Compiler, svc: Any) -> int | None:
    """One server process per CPU the service may use (its limit, else its request; in a
    cluster the default resources apply); None: as many as the machine has."""
    from mizzen.spec.units import parse_quantity

    res = svc.resources
    cpu = res.limits.get("cpu") or res.cpu
    if cpu is None and c.target == "kubernetes":
        defaults = c.project.kubernetes.default_resources
        cpu = defaults.limits.get("cpu") or defaults.cpu
    if cpu is None:
        return None
    return max(1, math.ceil(parse_quantity(cpu)))
