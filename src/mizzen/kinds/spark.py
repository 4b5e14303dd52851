"""A Spark application: `spark-submit --master local[N]` on this machine (pyspark from the
`[spark]` extra, see targets/local/spark.py), a SparkApplication of the Spark operator in a
cluster (a ScheduledSparkApplication with a `schedule`), run in `spark.image`."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from mizzen.kinds.base import Compiled, JobKind, Launch, Obj, Rules
from mizzen.spec.base import Model
from mizzen.spec.types import Quantity

if TYPE_CHECKING:
    from mizzen.plan.model import Job, Pipeline, Plan, Process, Step
    from mizzen.targets.kubernetes.render import Renderer

API = "sparkoperator.k8s.io/v1beta2"


class SparkExecutors(Model):
    instances: int = Field(1, ge=1)
    cores: int = Field(1, ge=1)
    memory: Quantity = "1Gi"


class SparkDriver(Model):
    cores: int = Field(1, ge=1)
    memory: Quantity = "1Gi"


class SparkSizing(Model):
    """How a Spark run is sized and where it runs: a spark job's, and a sql job's with
    `engine: spark`."""

    executors: SparkExecutors = Field(default_factory=SparkExecutors)
    driver: SparkDriver = Field(default_factory=SparkDriver)
    conf: dict[str, str] = Field(default_factory=dict, description="Extra spark conf")
    spark_version: str = Field(
        "3.5.3", description="Spark version the image carries (SparkApplication.spec.sparkVersion)"
    )
    image: str | None = Field(
        None,
        description="Kubernetes: the image the Spark operator runs the driver and executors in; "
        "it needs Spark (spark-submit) and the project under /app. Default: the job's image",
    )

    def plan(
        self, main_file: str, main_class: str | None = None, packages: Sequence[str] = ()
    ) -> SparkPlan:
        return SparkPlan(
            main_file=main_file,
            main_class=main_class,
            executors=self.executors.instances,
            executor_cores=self.executors.cores,
            executor_memory=self.executors.memory,
            driver_cores=self.driver.cores,
            driver_memory=self.driver.memory,
            conf=dict(self.conf),
            spark_version=self.spark_version,
            packages=tuple(packages),
            image=self.image,
        )


class SparkSpec(SparkSizing):
    main_file: str = Field(
        description="Python file (or jar with mainClass) relative to the project"
    )
    main_class: str | None = None
    packages: list[str] = Field(default_factory=list, description="--packages Maven coordinates")


@dataclass(frozen=True)
class SparkPlan:
    main_file: str
    main_class: str | None
    executors: int
    executor_cores: int
    executor_memory: str
    driver_cores: int
    driver_memory: str
    conf: dict[str, str]
    spark_version: str
    packages: tuple[str, ...] = ()
    image: str | None = None  # kubernetes: an image with Spark (default: the job's image)


class Spark(JobKind):
    name = "spark"
    field = "spark"
    label = "spark job"
    wraps_args = True
    example: ClassVar[dict[str, Any]] = {
        "spark": {"mainFile": "jobs/count.py", "executors": {"instances": 1, "cores": 1}},
        "args": ["3"],
    }
    example_files: ClassVar[dict[str, str]] = {
        "jobs/count.py": "import sys\nfrom pyspark.sql import SparkSession\n"
        "spark = SparkSession.builder.getOrCreate()\n"
        "print('counted', spark.range(int(sys.argv[1])).count())\nspark.stop()\n"
    }
    controllers = ((API, "ScheduledSparkApplication"), (API, "SparkApplication"))
    operator = "sparkoperator.k8s.io"
    installs = "the Spark operator (kubeflow/spark-operator: `helm install spark-operator spark-operator/spark-operator`)"

    def fields(self) -> dict[str, Any]:
        return {"spark": (SparkSpec | None, None)}

    def texts(self, job: Any) -> list[tuple[tuple[str, ...], str, bool]]:
        return [(("spark", "mainFile"), job.spark.main_file, False)]

    def compile(self, c: Any, name: str, job: Any) -> Compiled:
        s = job.spark
        payload = s.plan(s.main_file, s.main_class, s.packages)
        return Compiled(argv=[*job.args], payload=payload)

    def warnings(self, plan: Plan, job: Job, field: str = "spark") -> list[str]:
        """A Spark job needs an image with Spark, and cannot commit through a Mountpoint mount
        (`field`: where the job's Spark settings are, for the sentence)."""
        spark: SparkPlan = job.spec
        out = []
        if spark.image is None and job.process.image is None and not _built_on_spark(plan):
            out.append(
                f"job {job.name} ({field}): the Spark operator runs its driver and executors in the "
                f"project image, built FROM an image without Spark ({plan.dockerfile or 'no Dockerfile'}): "
                f"the driver will not start. Set `{field}.image` to an image with Spark "
                f"{spark.spark_version} and the project under /app (e.g. built FROM "
                f"spark:{spark.spark_version}-python3; see docs/workloads.md)"
            )
        for m in job.process.mounts:
            if m.kind == "blob" and m.blob is not None and not m.read_only:
                url = m.blob.url
                if url.startswith(("s3://", "s3a://")):
                    out.append(
                        f"job {job.name} ({field}) mounts volume {m.volume} read-write from S3 through "
                        "Mountpoint: Spark commits its output by renaming files, which Mountpoint does "
                        f"not support. Have Spark write to {'s3a://' + url.split('://', 1)[1]} (its own "
                        "S3 client: org.apache.hadoop:hadoop-aws in spark.packages) and leave the "
                        "volume out of the job (`volumes: []`), or make the volume readOnly"
                    )
        return out

    # --- this machine ------------------------------------------------------------------
    def launches(
        self, job: Job, argv: list[str], env: dict[str, str], run_dir: Path
    ) -> list[Launch]:
        from mizzen.targets.local import spark
        from mizzen.targets.local.env import unresolved

        plan: SparkPlan = job.spec
        home = spark.spark_home(job)
        java = spark.java(job, spark.min_java())
        cpus, ram = spark.machine()
        size = spark.size_for(plan, cpus, ram)
        submit = spark.spark_submit_argv(job, unresolved(argv), run_dir, home=home, size=size)
        wrapped = [
            sys.executable,
            "-m",
            "mizzen.targets.local.spark",
            size.summary(plan) + spark.version_note(plan),
            "--",
            *submit,
        ]
        return [Launch(argv=wrapped, label=job.name, env=spark.spark_env(home, java, env))]

    # --- Kubernetes ---------------------------------------------------------------------
    def render(
        self, r: Renderer, workload: Any, extra: Sequence[tuple[Obj, Obj]] = ()
    ) -> list[Obj]:
        from mizzen.targets.kubernetes import naming

        job: Job = workload
        name = naming.object_name(r.project, job.name)
        spec = self.application(r, job, job.process, extra)
        if job.schedule is None:
            return [r.on_demand(API, "SparkApplication", name, job.name, spec)]
        s = job.schedule
        obj = r.meta(API, "ScheduledSparkApplication", name, job.name)
        sched: Obj = {"schedule": s.cron}
        if s.time_zone:
            sched["timeZone"] = s.time_zone
        sched["concurrencyPolicy"] = s.concurrency
        sched["successfulRunHistoryLimit"] = 3
        sched["failedRunHistoryLimit"] = 3
        sched["template"] = spec
        obj["spec"] = sched
        return [obj]

    def application(
        self, r: Renderer, job: Job, process: Process, extra: Sequence[tuple[Obj, Obj]] = ()
    ) -> Obj:
        """The SparkApplication spec of one run of `job` with `process` (`extra`: more
        (volume, mount) pairs for the driver and executors)."""
        from mizzen.errors import NotSupportedError
        from mizzen.targets.kubernetes import naming
        from mizzen.targets.kubernetes.render import APP_DIR, check_image, spark_memory

        spark: SparkPlan = job.spec
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
        k = r.plan.kubernetes
        env = r.env(process)
        mounts = r.volume_mounts(process) + [mount for _, mount in extra]
        annotations = r.annotations(process)

        def side(cores: int, memory: str, extra: Obj) -> Obj:
            out: Obj = {"cores": cores, "memory": spark_memory(memory)}
            out.update(extra)
            out["labels"] = {
                **naming.workload_labels(r.project, job.name),
                **process.placement.labels,
            }
            if annotations:
                out["annotations"] = annotations
            out["env"] = env
            if mounts:
                out["volumeMounts"] = mounts
            out["securityContext"] = r.security(process)
            out["podSecurityContext"] = r.pod_security()
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
            else r.image(process, job.name),
            "imagePullPolicy": "IfNotPresent",
        }
        if jar is False:
            spec["pythonVersion"] = "3"
        if k.image_pull_secrets:
            spec["imagePullSecrets"] = list(k.image_pull_secrets)
        main = spark.main_file
        main = main if main.startswith("/") else f"{APP_DIR}/{main.lstrip('./')}"
        spec["mainApplicationFile"] = f"local://{main}"
        if spark.main_class:
            spec["mainClass"] = spark.main_class
        if process.command:
            spec["arguments"] = list(process.command)
        spec["sparkVersion"] = spark.spark_version
        conf = dict(spark.conf)
        recorded = not jar and self.recorded(job, process)
        if recorded:
            from mizzen.kinds.spark_driver import COMMAND

            conf.setdefault("spark.pyspark.driver.python", COMMAND)
        if conf:
            spec["sparkConf"] = dict(sorted(conf.items()))
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
        volumes = r.volumes(process) + [volume for volume, _ in extra]
        if volumes:
            spec["volumes"] = volumes
        sa = process.placement.service_account_name
        spec["driver"] = side(
            spark.driver_cores,
            spark.driver_memory,
            {"serviceAccount": r.role_account("spark", sa)},
        )
        if recorded:
            spec["driver"]["env"] = env + r.run_env(env)
        spec["executor"] = side(
            spark.executor_cores,
            spark.executor_memory,
            {"instances": spark.executors, "serviceAccount": sa or r.sa},
        )
        return spec

    @staticmethod
    def recorded(job: Job, process: Process) -> bool:
        """Whether the driver runs its Python program through mizzen (a recorded run, its
        datasets' outputs committed): when its image has mizzen, as the project image does,
        and always for a job with datasets (its program needs `mizzen[datasets]` anyway)."""
        spark: SparkPlan = job.spec
        return not spark.image or bool(process.datasets)

    def step(
        self,
        r: Renderer,
        pipe: Pipeline,
        step: Step,
        job: Job,
        process: Process,
        extra: Sequence[tuple[Obj, Obj]] = (),
    ) -> Obj | None:
        return r.resource_step(
            pipe,
            step,
            {"apiVersion": API, "kind": "SparkApplication"},
            self.application(r, job, process, extra),
            ok="status.applicationState.state == COMPLETED",
            bad="status.applicationState.state in (FAILED, SUBMISSION_FAILED)",
        )

    def roles(self, r: Renderer) -> dict[str, Rules]:
        mine = [j for j in r.plan.jobs.values() if j.kind == self.name]
        stepped = [j for j in r.stepped_jobs() if j.kind == self.name]
        return self.rules(bool(mine), bool(stepped))

    def rules(self, drivers: bool, stepped: bool) -> dict[str, Rules]:
        """Drivers create their executors; Argo's executor creates SparkApplications for
        pipeline steps."""
        out: dict[str, Rules] = {}
        if drivers or stepped:
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
        if stepped:
            verbs = ["create", "get", "list", "watch", "patch", "delete"]
            out["workflow"] = [
                {
                    "apiGroups": ["sparkoperator.k8s.io"],
                    "resources": ["sparkapplications"],
                    "verbs": verbs,
                }
            ]
        return out

    def one_off(self, obj: Obj) -> Obj:
        from mizzen.kinds.base import scheduled_twin

        return scheduled_twin(obj, "SparkApplication", "template")

    def outcome(self, obj: Obj) -> int | None:
        from mizzen.errors import EXIT_FAILED, EXIT_OK

        state = ((obj.get("status") or {}).get("applicationState") or {}).get("state")
        if state == "COMPLETED":
            return EXIT_OK
        if state in ("FAILED", "SUBMISSION_FAILED", "INVALIDATING"):
            return EXIT_FAILED
        return None


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
