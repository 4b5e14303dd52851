"""The Plan: backend-neutral workloads with everything resolved.

Both targets consume the same Plan, which is what keeps a local run and a cluster run the
same. The Plan knows nothing about processes or Kubernetes YAML. Strings may still hold the
run-time references `${run.id}` and `${run.date}`: whoever starts the process fills them
(`mizzen.spec.interpolate.fill_run`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

TargetName = Literal["local", "kubernetes"]


@dataclass(frozen=True)
class SecretRef:
    secret: str  # the spec's secret name
    key: str


@dataclass(frozen=True)
class EnvVar:
    name: str
    value: str | None = None
    secret: SecretRef | None = None


@dataclass(frozen=True)
class StoreRef:
    name: str
    url: (
        str  # as the target will use it (locally: a sandbox folder unless an environment is chosen)
    )
    options: dict[str, Any] = field(default_factory=dict)
    secret: str | None = None


@dataclass(frozen=True)
class BlobSource:
    store: StoreRef
    path: str  # inside the store
    cache_seconds: float | None
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    sync: Literal["update", "mirror"] = "update"

    @property
    def url(self) -> str:
        base = self.store.url.rstrip("/")
        return f"{base}/{self.path}" if self.path else base


@dataclass(frozen=True)
class Mount:
    volume: str
    kind: Literal["blob", "scratch", "files"]
    path: str  # where the workload sees it: a local folder, or the container mount path
    read_only: bool = False
    blob: BlobSource | None = None
    size: str | None = None  # scratch size limit, or the size of a claim to create
    host_path: str | None = None  # scratch on a node's disk (kubernetes)
    medium: str | None = None
    claim: str | None = None  # files: the PersistentVolumeClaim
    sub_path: str | None = None
    storage_class: str | None = None
    access_mode: str = "ReadWriteMany"

    @property
    def env_name(self) -> str:
        from mizzen import contract

        return contract.volume_var(self.volume)


@dataclass(frozen=True)
class Resources:
    cpu: str | None = None
    memory: str | None = None
    gpu: int = 0
    cpu_limit: str | None = None
    memory_limit: str | None = None


@dataclass(frozen=True)
class Schedule:
    cron: str
    time_zone: str | None = None
    catch_up: bool = False
    concurrency: str = "Forbid"


@dataclass(frozen=True)
class Placement:
    """Kubernetes-only pod settings, carried through untouched."""

    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: tuple[dict[str, Any], ...] = ()
    affinity: dict[str, Any] | None = None
    service_account_name: str | None = None
    annotations: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    security_context: dict[str, Any] | None = None


@dataclass(frozen=True)
class DatasetDecl:
    """A declared dataset: where its table is, and its declaration as written (the process
    that reads or writes it rebuilds the model from it)."""

    name: str
    store: StoreRef
    path: str
    spec: dict[str, Any]


@dataclass(frozen=True)
class Process:
    """What runs: the same for a local process and a container."""

    image: str | None
    command: tuple[str, ...]  # full argv (command + args), references resolved but run.*
    env: tuple[EnvVar, ...]  # config first, then the workload's own env and secrets
    mounts: tuple[Mount, ...]
    resources: Resources
    working_dir: str | None = None
    placement: Placement = field(default_factory=Placement)
    datasets: tuple[DatasetDecl, ...] = ()  # the datasets it reads or writes

    @property
    def secret_refs(self) -> tuple[SecretRef, ...]:
        return tuple(e.secret for e in self.env if e.secret is not None)


@dataclass(frozen=True)
class Job:
    """A job of workload kind `kind` (mizzen.kinds); `spec` is that kind's own plan (a
    SparkPlan, a NotebookPlan, ...; None for a plain command)."""

    name: str
    process: Process
    retries: int = 0
    retry_delay_seconds: float = 10.0
    timeout_seconds: float | None = None
    schedule: Schedule | None = None
    ttl_seconds: float = 86400.0
    kind: str = "command"
    spec: Any = None
    inputs: tuple[str, ...] = ()  # datasets read (`name`, or pinned `name@version`)
    outputs: tuple[str, ...] = ()  # datasets written: committed once the job succeeded


@dataclass(frozen=True)
class Step:
    """One step of a pipeline. When the step replaces its job's args, `args` holds them
    resolved and `process` is the job's Process with that argv (and any volume the new args
    reference mounted): run `step.process or job.process`."""

    name: str
    job: str
    after: tuple[str, ...]
    args: tuple[str, ...] | None = None
    process: Process | None = None


@dataclass(frozen=True)
class Pipeline:
    name: str
    steps: tuple[Step, ...]
    schedule: Schedule | None = None
    parallelism: int | None = None
    timeout_seconds: float | None = None
    kind: str = "pipeline"


@dataclass(frozen=True)
class ModelServing:
    model: str
    versions: dict[str, int]  # version or alias -> traffic share (a single entry: 100)
    max_batch_size: int | None = None
    max_latency_seconds: float | None = None


@dataclass(frozen=True)
class Autoscale:
    min: int
    max: int
    target_cpu: int


@dataclass(frozen=True)
class Probe:
    path: str
    port: int
    initial_delay_seconds: float
    startup_timeout_seconds: float = 600.0


@dataclass(frozen=True)
class Service:
    name: str
    process: Process
    model: ModelServing | None = None
    port: int | None = None
    replicas: int = 1
    autoscale: Autoscale | None = None
    health: Probe | None = None
    restart_delay_seconds: float = 1.0
    kind: str = "service"  # or "model-service"


Workload = Job | Pipeline | Service


@dataclass(frozen=True)
class SecretDecl:
    name: str
    keys: tuple[str, ...]
    existing_secret: str | None = None


@dataclass(frozen=True)
class Alert:
    on: tuple[str, ...]
    jobs: tuple[str, ...]
    slower_than_seconds: float | None
    late_after_seconds: float | None
    metric: dict[str, Any] | None
    webhook: str | None  # may still hold ${secrets.X.Y}: resolved only when sending
    format: str
    email: dict[str, Any] | None


@dataclass(frozen=True)
class KubernetesSettings:
    context: str | None
    namespace: str | None
    service_account_name: str | None
    image_pull_secrets: tuple[str, ...]
    default_resources: Resources
    run_as_user: int
    run_as_non_root: bool
    create_namespace: bool


@dataclass(frozen=True)
class Plan:
    project: str
    target: TargetName
    env: str | None
    root: str  # the project directory (absolute)
    spec_file: str
    spec_digest: str
    image: str | None  # the project image reference, tag or digest pinned when known
    store: StoreRef | None  # run records and models live here (None: not recorded in the cluster)
    stores: dict[str, StoreRef]
    config: dict[str, str]
    secrets: dict[str, SecretDecl]
    jobs: dict[str, Job]
    pipelines: dict[str, Pipeline]
    services: dict[str, Service]
    alerts: tuple[Alert, ...]
    kubernetes: KubernetesSettings
    dockerfile: str | None = None  # the project image's Dockerfile, relative to `root`
    datasets: dict[str, DatasetDecl] = field(default_factory=dict)

    def workload(self, name: str) -> Workload:
        for table in (self.jobs, self.pipelines, self.services):
            if name in table:
                return table[name]
        raise KeyError(name)

    @property
    def workloads(self) -> list[Workload]:
        return [*self.jobs.values(), *self.pipelines.values(), *self.services.values()]


def secret_env_name(secret: str, key: str) -> str:
    """The env var a secret key is exposed as (what `mizzen.secret(name, key)` reads)."""
    from mizzen import contract

    return contract.secret_var(secret, key)
