"""The typed model of `mizzen.yaml`.

Field names follow Kubernetes habits (camelCase in YAML). Unknown keys are errors. Every
field does something on both targets, or its description says which target it is for and
the other target refuses it.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, Field, create_model, field_validator, model_validator

from mizzen.datasets.model import DatasetSpec, check_dataset_name
from mizzen.spec import deps
from mizzen.spec.base import Model
from mizzen.spec.types import (
    BlobPath,
    Cron,
    Duration,
    EnvName,
    Name,
    PositiveDuration,
    Quantity,
    Text,
    check_name,
    parse_quantity,
    scalar_to_str,
)

API_VERSION = "mizzen.io/v1alpha1"
DatasetName = Annotated[str, AfterValidator(check_dataset_name)]


# --- image -----------------------------------------------------------------------------


class ImageSpec(Model):
    """How the project's image is built and where it is pushed."""

    repository: str = Field(description="Registry repository, e.g. registry.example.com/team/app")
    dockerfile: str = Field("Dockerfile", description="Dockerfile path, relative to the project")
    context: str = Field(".", description="Build context, relative to the project")
    build_args: dict[str, Text] = Field(default_factory=dict, description="--build-arg values")
    target: str | None = Field(None, description="Multi-stage build target")
    platform: str | None = Field(None, description="e.g. linux/amd64")
    insecure: bool = Field(False, description="Allow a plain-HTTP registry (local registries only)")

    @field_validator("repository")
    @classmethod
    def _no_tag(cls, value: str) -> str:
        last = value.rsplit("/", 1)[-1]
        if "@" in value or ":" in last:
            raise ValueError(
                f"{value!r} carries a tag or digest; give the repository only "
                "(tags come from git, see `mizzen build`)"
            )
        if value != value.lower():
            raise ValueError(f"{value!r}: image repositories must be lower-case")
        return value


# --- stores and volumes ----------------------------------------------------------------


class StoreSpec(Model):
    """A named blob store. Credentials never go here: they come from the environment,
    the provider's usual config files, workload identity, or the secret named in `secret`."""

    url: str = Field(
        description="s3://bucket/prefix, abfs://container@account.dfs.core.windows.net/prefix, gs://bucket, file:///path or a relative folder"
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="fsspec storage options without credentials, e.g. endpoint_url",
    )
    secret: Name | None = Field(
        None, description="A secret (declared under `secrets:`) holding this store's credentials"
    )

    @field_validator("options")
    @classmethod
    def _no_credentials(cls, value: dict[str, Any]) -> dict[str, Any]:
        banned = {
            "key",
            "secret",
            "password",
            "account_key",
            "sas_token",
            "connection_string",
            "token",
            "client_secret",
            "aws_secret_access_key",
        }
        found = sorted(k for k in value if k.lower() in banned)
        if found:
            raise ValueError(
                f"credentials in the spec ({', '.join(found)}); name a secret in `secret:` instead"
            )
        return value


class ScratchSpec(Model):
    size: Quantity | None = Field(
        None, description="Size limit (emptyDir sizeLimit; checked against free disk locally)"
    )
    path: str | None = Field(
        None, description="Kubernetes: a hostPath on the node's fast disk instead of an emptyDir"
    )
    medium: Literal["Memory"] | None = Field(
        None,
        description="Memory: a tmpfs (emptyDir medium Memory; a tmpfs-backed dir locally when available)",
    )


class FilesSpec(Model):
    claim: Name = Field(
        description="PersistentVolumeClaim name in the cluster; a folder .mizzen/files/<claim> locally"
    )
    sub_path: str | None = Field(None, description="Sub-directory of the claim to mount")
    size: Quantity | None = Field(
        None, description="Create the claim with this size when it does not exist"
    )
    storage_class: str | None = Field(None, description="Storage class for a created claim")
    access_mode: Literal["ReadWriteMany", "ReadWriteOnce", "ReadOnlyMany"] = "ReadWriteMany"


class VolumeSpec(Model):
    """Exactly one of `blob`, `scratch`, `files`."""

    blob: BlobPath | None = Field(None, description="<store>/<path> inside a named store")
    read_only: bool = Field(False, description="Mount read-only; never written back")
    cache: Duration | None = Field(
        None, description="Reuse a local copy for this long before checking the store again"
    )
    include: list[str] = Field(
        default_factory=list, description="Only objects matching these globs"
    )
    exclude: list[str] = Field(
        default_factory=list, description="Skip objects matching these globs"
    )
    sync: Literal["update", "mirror"] = Field(
        "update",
        description="Write-back mode: update (new and changed files) or mirror (also delete)",
    )
    scratch: ScratchSpec | None = None
    files: FilesSpec | None = None
    mount_path: str | None = Field(
        None, description="Mount path in containers (default /mnt/mizzen/<name>)"
    )

    @model_validator(mode="after")
    def _one_kind(self) -> VolumeSpec:
        kinds = [k for k in ("blob", "scratch", "files") if getattr(self, k) is not None]
        if len(kinds) != 1:
            got = ", ".join(kinds) if kinds else "none"
            raise ValueError(f"a volume needs exactly one of blob, scratch, files (got {got})")
        blob_only = {"cache": self.cache, "include": self.include, "exclude": self.exclude}
        if self.blob is None:
            used = [k for k, v in blob_only.items() if v] + (
                ["sync"] if self.sync != "update" else []
            )
            if used:
                raise ValueError(f"{', '.join(used)} only apply to blob volumes")
        if self.mount_path is not None and not self.mount_path.startswith("/"):
            raise ValueError("mountPath must be an absolute path")
        return self

    @property
    def kind(self) -> str:
        return (
            "blob" if self.blob is not None else "scratch" if self.scratch is not None else "files"
        )


# --- secrets -----------------------------------------------------------------------------


class SecretSpec(Model):
    keys: list[str] = Field(description="Key names; values never go in this file")
    existing_secret: str | None = Field(
        None,
        description="Kubernetes: use this existing Secret instead of creating one from local values",
    )

    @field_validator("keys")
    @classmethod
    def _keys(cls, value: list[str]) -> list[str]:
        import re

        for key in value:
            if not re.match(r"^[A-Za-z0-9_.-]+$", key):
                raise ValueError(
                    f"secret key {key!r} may only contain letters, digits, '_', '-' and '.'"
                )
        if len(set(value)) != len(value):
            raise ValueError("secret keys must be unique")
        return value


# --- workloads ---------------------------------------------------------------------------


class Resources(Model):
    cpu: Quantity | None = Field(
        None, description="CPU request (limit too unless limits.cpu is set)"
    )
    memory: Quantity | None = Field(
        None, description="Memory request and limit; enforced locally by a watchdog"
    )
    gpu: int = Field(0, ge=0, description="nvidia.com/gpu count")
    limits: dict[Literal["cpu", "memory"], Quantity] = Field(
        default_factory=dict, description="Limits when they differ from the requests"
    )

    @field_validator("memory")
    @classmethod
    def _memory_units(cls, value: str | None) -> str | None:
        if value is not None and value.endswith("m") and parse_quantity(value) < 1024:
            raise ValueError(
                f"{value!r} is {parse_quantity(value)} bytes (m means milli); did you mean {value[:-1]}Mi?"
            )
        return value

    @model_validator(mode="after")
    def _limits_above_requests(self) -> Resources:
        for key in ("cpu", "memory"):
            req = getattr(self, key)
            lim = self.limits.get(key)
            if req is not None and lim is not None and parse_quantity(lim) < parse_quantity(req):
                raise ValueError(f"limits.{key} ({lim}) is below the request ({req})")
        return self


class ScheduleSpec(Model):
    cron: Cron
    time_zone: str | None = Field(
        None, description="IANA time zone, e.g. Europe/Paris (default UTC)"
    )
    catch_up: bool = Field(False, description="Replay a run missed while the scheduler was down")
    concurrency: Literal["Forbid", "Allow", "Replace"] = Field(
        "Forbid", description="What to do when the previous run is still going"
    )

    @field_validator("time_zone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        if value is None:
            return value
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            import difflib
            from zoneinfo import available_timezones

            close = difflib.get_close_matches(value, sorted(available_timezones()), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else " (e.g. Europe/Paris, UTC)"
            raise ValueError(f"{value!r} is not a known IANA time zone{hint}") from None
        deps.note_zone(value)
        return value


def _schedule(value: Any) -> Any:
    return {"cron": value} if isinstance(value, str) else value


class PlacementFields(Model):
    """Kubernetes placement, passed through as written (no effect on the local target: one machine)."""

    node_selector: dict[str, str] = Field(default_factory=dict, description="Kubernetes only")
    tolerations: list[dict[str, Any]] = Field(default_factory=list, description="Kubernetes only")
    affinity: dict[str, Any] | None = Field(None, description="Kubernetes only")
    service_account_name: str | None = Field(None, description="Kubernetes only")
    annotations: dict[str, str] = Field(
        default_factory=dict, description="Pod annotations (Kubernetes only)"
    )
    labels: dict[str, str] = Field(
        default_factory=dict, description="Extra pod labels; locally recorded on the run"
    )
    security_context: dict[str, Any] | None = Field(
        None, description="Container securityContext override (Kubernetes only)"
    )


class ProcessFields(PlacementFields):
    """What every runnable workload shares: command, environment, volumes, resources."""

    command: list[Text] | None = Field(
        None, description="argv; a string is split like a shell would"
    )
    args: list[Text] = Field(default_factory=list)
    image: str | None = Field(None, description="Image override (default: the project image)")
    working_dir: str | None = None
    env: dict[EnvName, Text] = Field(
        default_factory=dict, description="Extra env; values may use ${secrets.NAME.KEY}"
    )
    secrets: list[Name] = Field(
        default_factory=list, description="Secrets exposed as env vars (all keys)"
    )
    volumes: list[Name] | None = Field(
        None, description="Volumes to mount (default: those referenced as ${volumes.X})"
    )
    resources: Resources = Field(default_factory=Resources)

    @field_validator("command", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return shlex.split(value) if isinstance(value, str) else value


_scalar_to_str = scalar_to_str


class JobBase(ProcessFields):
    """What every job has; each workload kind adds its own section (mizzen.kinds)."""

    inputs: list[str] = Field(
        default_factory=list,
        description="Datasets the job reads (`mizzen.dataset(name)`); `name@version` pins one",
    )
    outputs: list[str] = Field(
        default_factory=list,
        description="Datasets the job writes: checked against their schema and committed "
        "once it succeeded",
    )

    retries: int = Field(0, ge=0, le=100, description="Retries after a failure (backoffLimit)")
    retry_delay: Duration = Field("10s", description="First retry delay; doubles each retry")
    timeout: PositiveDuration | None = Field(
        None, description="Kill and fail after this long (activeDeadlineSeconds)"
    )
    schedule: ScheduleSpec | None = None
    ttl_after_finished: Duration = Field(
        "1d", description="Kubernetes: delete finished Jobs after this long"
    )

    _sched = field_validator("schedule", mode="before")(classmethod(lambda cls, v: _schedule(v)))

    @model_validator(mode="after")
    def _one_kind(self) -> JobBase:
        from mizzen.kinds import check_job

        check_job(self)
        return self


def _job_spec() -> type[JobBase]:
    """The job model: the common fields and every registered kind's section."""
    from mizzen.kinds import job_fields

    model: type[JobBase] = create_model(
        "JobSpec", __base__=JobBase, __module__=__name__, **job_fields()
    )
    return model


if TYPE_CHECKING:
    JobSpec = JobBase
else:
    JobSpec = _job_spec()


class StepSpec(Model):
    job: Name
    name: Name | None = Field(
        None, description="Step name (default: the job name); lets one job appear twice"
    )
    after: list[Name] = Field(default_factory=list, description="Steps that must succeed first")
    args: list[Text] | None = Field(None, description="Replace the job's args for this step")

    @property
    def step_name(self) -> str:
        return self.name or self.job


class PipelineSpec(Model):
    steps: list[StepSpec] = Field(min_length=1)
    schedule: ScheduleSpec | None = None
    parallelism: int | None = Field(None, ge=1, description="How many steps may run at once")
    timeout: PositiveDuration | None = Field(
        None, description="Fail the whole pipeline after this long"
    )

    _sched = field_validator("schedule", mode="before")(classmethod(lambda cls, v: _schedule(v)))

    @field_validator("steps", mode="before")
    @classmethod
    def _steps(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"job": v} if isinstance(v, str) else v for v in value]
        return value


class Autoscale(Model):
    min: int = Field(1, ge=1)
    max: int = Field(ge=1)
    target_cpu: int = Field(
        70, ge=1, le=100, alias="targetCPU", description="Target CPU utilisation (%)"
    )

    @model_validator(mode="after")
    def _range(self) -> Autoscale:
        if self.min > self.max:
            raise ValueError(f"autoscale.min ({self.min}) is above max ({self.max})")
        return self


class Batching(Model):
    max_batch_size: int = Field(32, ge=1)
    max_latency: Duration = Field(
        "2ms", description="How long a request may wait for others to batch with"
    )


class Probe(Model):
    path: str = "/"
    port: int | None = None
    initial_delay: Duration = "5s"
    startup_timeout: PositiveDuration = Field(
        "10m",
        description="How long a starting service may take to answer before failed checks "
        "restart it (a model that loads slowly); Kubernetes: the startupProbe",
    )


class ServiceSpec(ProcessFields):
    model: Name | None = Field(None, description="Serve a model from the project registry")
    version: Text | None = Field(
        None, description="A version number, 'latest' (default) or an alias"
    )
    versions: dict[str, int] | None = Field(
        None, description="Traffic shares per version or alias, e.g. {'3': 90, '4': 10}"
    )
    batching: Batching | None = None
    port: int | None = Field(None, ge=1, le=65535)
    replicas: int = Field(1, ge=0)
    autoscale: Autoscale | None = None
    health: Probe | None = Field(None, description="HTTP readiness/liveness probe")
    restart_delay: Duration = Field(
        "1s", description="Local supervisor: first restart delay; doubles up to 1m"
    )

    @field_validator("versions", mode="before")
    @classmethod
    def _versions(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
        return value

    @field_validator("versions")
    @classmethod
    def _shares(cls, value: dict[str, int] | None) -> dict[str, int] | None:
        if value is None:
            return value
        if not value:
            raise ValueError("`versions` needs at least one entry")
        if any(w < 0 for w in value.values()):
            raise ValueError("traffic shares cannot be negative")
        if sum(value.values()) != 100:
            raise ValueError(f"traffic shares add up to {sum(value.values())}, not 100")
        return value

    @model_validator(mode="after")
    def _shape(self) -> ServiceSpec:
        if self.model and self.command:
            raise ValueError("a service runs either a `model` or a `command`, not both")
        if not self.model and not self.command:
            raise ValueError("a service needs `command` or `model`")
        if not self.model:
            used = [k for k in ("version", "versions", "batching") if getattr(self, k) is not None]
            if used:
                raise ValueError(f"{', '.join(used)} only apply to model services")
        if self.version is not None and self.versions is not None:
            raise ValueError("give `version` or `versions`, not both")
        return self


# --- alerts ------------------------------------------------------------------------------


class MetricCondition(Model):
    name: str
    below: float | None = None
    above: float | None = None

    @model_validator(mode="after")
    def _bound(self) -> MetricCondition:
        if (self.below is None) == (self.above is None):
            raise ValueError("a metric condition needs exactly one of below, above")
        return self


class EmailSpec(Model):
    to: list[str] = Field(min_length=1)
    sender: str = Field("mizzen@localhost", alias="from")
    smtp: str = Field(description="host:port of the SMTP server")
    secret: Name | None = Field(None, description="Secret with `user` and `password` keys")
    starttls: bool = True


class AlertSpec(Model):
    on: list[Literal["failed", "late", "slow", "metric"]] = Field(min_length=1)
    jobs: list[str] = Field(
        default_factory=lambda: ["*"], description="Job and pipeline names or globs"
    )
    slower_than: Duration | None = Field(None, description="For `slow`: a run longer than this")
    late_after: Duration | None = Field(
        None, description="For `late`: no success this long after the scheduled time (default 1h)"
    )
    metric: MetricCondition | None = None
    webhook: str | None = Field(None, description="URL; may be ${secrets.NAME.KEY}")
    format: Literal["json", "slack", "teams"] = "json"
    email: EmailSpec | None = None

    @model_validator(mode="after")
    def _shape(self) -> AlertSpec:
        if not self.webhook and not self.email:
            raise ValueError("an alert needs a `webhook` or an `email` to notify")
        if "slow" in self.on and self.slower_than is None:
            raise ValueError("`slow` needs `slowerThan`, e.g. slowerThan: 30m")
        if "metric" in self.on and self.metric is None:
            raise ValueError("`metric` needs `metric: {name: accuracy, below: 0.8}`")
        if self.slower_than is not None and "slow" not in self.on:
            raise ValueError("`slowerThan` is set but `slow` is not in `on`")
        if self.metric is not None and "metric" not in self.on:
            raise ValueError("`metric` is set but `metric` is not in `on`")
        return self


# --- kubernetes and project -----------------------------------------------------------------


class MaintenanceSpec(Model):
    """When mizzen maintains the project's datasets (retention, vacuum of old versions past
    their time-travel window, completed erasures): a job it schedules itself."""

    schedule: ScheduleSpec | None = Field(
        # built without validation: a spec with no datasets never imports the cron parser
        default_factory=lambda: ScheduleSpec.model_construct(
            cron="0 4 * * *", time_zone=None, catch_up=False, concurrency="Forbid"
        ),
        description="When it runs (default: daily at 04:00 UTC); null: only when run by hand",
    )
    resources: Resources = Field(default_factory=Resources)

    _sched = field_validator("schedule", mode="before")(classmethod(lambda cls, v: _schedule(v)))


class KubernetesSpec(Model):
    context: str | None = None
    namespace: str | None = None
    service_account_name: str | None = Field(
        None, description="Use this ServiceAccount instead of creating one per project"
    )
    image_pull_secrets: list[str] = Field(default_factory=list)
    default_resources: Resources = Field(
        default_factory=lambda: Resources(cpu="500m", memory="1Gi"),
        description="Requests/limits for workloads that set none",
    )
    run_as_user: int = Field(
        1000, ge=0, description="UID the containers run as (runAsNonRoot is always on)"
    )
    run_as_non_root: bool = True
    create_namespace: bool = False

    @field_validator("namespace")
    @classmethod
    def _ns(cls, value: str | None) -> str | None:
        return check_name(value) if value is not None else value


OVERLAY_KEYS = (
    "image",
    "stores",
    "store",
    "volumes",
    "datasets",
    "config",
    "secrets",
    "jobs",
    "pipelines",
    "services",
    "alerts",
    "maintenance",
    "signals",
    "kubernetes",
)

from mizzen.signals.model import SignalSpec, check_signal_name  # noqa: E402 (built on the above)

SignalName = Annotated[str, AfterValidator(check_signal_name)]


class Project(Model):
    api_version: Literal["mizzen.io/v1alpha1"] = Field(description=f"Always {API_VERSION}")
    kind: Literal["Project"]
    name: Name
    image: ImageSpec | None = None
    stores: dict[Name, StoreSpec] = Field(default_factory=dict)
    store: Name | None = Field(
        None, description="Store holding run records and models (default: .mizzen/store)"
    )
    volumes: dict[Name, VolumeSpec] = Field(default_factory=dict)
    datasets: dict[DatasetName, DatasetSpec] = Field(
        default_factory=dict,
        description="Tables with a schema (a contract), versions, lineage, retention, erasure",
    )
    config: dict[EnvName, Text] = Field(
        default_factory=dict,
        description="Plain settings, exposed to workloads as env vars of the same name",
    )
    secrets: dict[Name, SecretSpec] = Field(default_factory=dict)
    jobs: dict[Name, JobSpec] = Field(default_factory=dict)
    pipelines: dict[Name, PipelineSpec] = Field(default_factory=dict)
    services: dict[Name, ServiceSpec] = Field(default_factory=dict)
    alerts: list[AlertSpec] = Field(default_factory=list)
    maintenance: MaintenanceSpec = Field(default_factory=MaintenanceSpec)
    signals: dict[SignalName, SignalSpec] = Field(
        default_factory=dict,
        description="Named metrics over datasets, computed per time bucket by mizzen (docs/signals.md)",
    )
    kubernetes: KubernetesSpec = Field(default_factory=KubernetesSpec)
    environments: dict[Name, dict[str, Any] | None] = Field(
        default_factory=dict, description="Overlays: any of " + ", ".join(OVERLAY_KEYS)
    )

    @field_validator("image", mode="before")
    @classmethod
    def _image(cls, value: Any) -> Any:
        return {"repository": value} if isinstance(value, str) else value

    @field_validator("stores", mode="before")
    @classmethod
    def _stores(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"url": v} if isinstance(v, str) else v for k, v in value.items()}
        return value

    @field_validator("secrets", mode="before")
    @classmethod
    def _secrets(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: {"keys": v} if isinstance(v, list) else v for k, v in value.items()}
        return value

    def workload_names(self) -> list[str]:
        return [*self.jobs, *self.pipelines, *self.services]
