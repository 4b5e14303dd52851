"""Spec -> Plan: everything a target needs, resolved the same way for both targets."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from textwrap import dedent

import pytest

from mizzen import spec
from mizzen.errors import UsageError
from mizzen.kinds.distributed import DistributedPlan
from mizzen.kinds.notebook import NotebookPlan
from mizzen.kinds.service import model_server_argv
from mizzen.plan import compile_plan, secret_env_name
from mizzen.plan import model as p
from mizzen.spec.interpolate import fill_run

HEAD = "apiVersion: mizzen.io/v1alpha1\nkind: Project\nname: drives\n"
DESIGN = Path(__file__).parents[1] / "spec" / "good" / "design.yaml"

Compile = Callable[..., p.Plan]


@pytest.fixture
def plan_of(tmp_path: Path) -> Compile:
    def compile_(
        body: str, target: p.TargetName = "local", env: str | None = None, **kw: object
    ) -> p.Plan:
        path = tmp_path / "mizzen.yaml"
        path.write_text(HEAD + dedent(body).lstrip("\n"))
        return compile_plan(spec.load(path, env), target, **kw)  # type: ignore[arg-type]

    return compile_


@pytest.fixture
def design(tmp_path: Path) -> Path:
    path = tmp_path / "mizzen.yaml"
    path.write_text(DESIGN.read_text())
    return path


def env_of(process: p.Process) -> dict[str, p.EnvVar]:
    return {e.name: e for e in process.env}


VOLUMES = """
stores:
  lake: s3://analytics-lake
volumes:
  raw: {blob: lake/raw/drives, readOnly: true, cache: 10m}
  features: {blob: lake/features}
  tmp: {scratch: {size: 20Gi}}
  share: {files: {claim: team-share, subPath: drives}}
  custom: {scratch: {}, mountPath: /data/custom}
"""


def test_volume_paths_local(plan_of: Compile, tmp_path: Path) -> None:
    plan = plan_of(
        VOLUMES
        + """
jobs:
  train:
    command: [python, train.py, "${volumes.raw}", "${volumes.tmp}", "${volumes.share}"]
"""
    )
    job = plan.jobs["train"]
    root = tmp_path.resolve()
    raw, tmp, share = job.process.mounts
    assert (
        raw.path == str(root / ".mizzen/cache/volumes/raw") and raw.read_only and raw.kind == "blob"
    )
    assert raw.blob is not None and raw.blob.cache_seconds == 600
    assert raw.blob.url == (root / ".mizzen/stores/lake").as_uri() + "/raw/drives"
    assert tmp.path == str(root / ".mizzen/scratch/${run.id}/tmp") and tmp.size == "20Gi"
    assert (
        share.path == str(root / ".mizzen/files/team-share/drives") and share.claim == "team-share"
    )
    assert job.process.command == ("python", "train.py", raw.path, tmp.path, share.path)
    env = env_of(job.process)
    assert env["MIZZEN_VOLUME_RAW"].value == raw.path
    assert env["MIZZEN_VOLUME_SHARE"].value == share.path


def test_volume_paths_kubernetes(plan_of: Compile) -> None:
    plan = plan_of(
        VOLUMES
        + """
jobs:
  train:
    command: [python, train.py, "${volumes.raw}", "${volumes.custom}"]
""",
        "kubernetes",
    )
    job = plan.jobs["train"]
    assert job.process.command == ("python", "train.py", "/mnt/mizzen/raw", "/data/custom")
    assert [m.path for m in job.process.mounts] == ["/mnt/mizzen/raw", "/data/custom"]
    assert job.process.mounts[0].blob is not None
    assert job.process.mounts[0].blob.store.url == "s3://analytics-lake"
    assert plan.store is None  # no project store declared: nothing recorded in the cluster


def test_mounted_volumes_are_explicit_plus_referenced(plan_of: Compile) -> None:
    plan = plan_of(
        VOLUMES
        + """
jobs:
  train:
    command: [python, train.py]
    args: ["${volumes.features}"]
    env: {TMP: "${volumes.tmp}"}
    volumes: [share, features]
  bare:
    command: [python, bare.py]
"""
    )
    assert [m.volume for m in plan.jobs["train"].process.mounts] == ["share", "features", "tmp"]
    assert plan.jobs["bare"].process.mounts == ()
    assert (
        env_of(plan.jobs["train"].process)["TMP"].value == plan.jobs["train"].process.mounts[2].path
    )


def test_config_env_and_escapes(plan_of: Compile) -> None:
    plan = plan_of(
        """
        config: {HOST: dw.internal, URL: "https://${env.DW_DOMAIN}/api", PORT: 5432}
        jobs:
          q:
            command: [python, q.py, "--host=${config.HOST}", "--user=${env.USER_NAME}", "$${HOME}", "${run.id}", "${run.date}"]
            env: {OUT: "runs/${run.id}", LITERAL: "$${config.HOST}", BOTH: "$${HOME}/${run.id}"}
        """,
        environ={"DW_DOMAIN": "dw.example.com", "USER_NAME": "ada"},
    )
    proc = plan.jobs["q"].process
    assert proc.command == (
        "python",
        "q.py",
        "--host=dw.internal",
        "--user=ada",
        "${HOME}",
        "${run.id}",
        "${run.date}",
    )
    env = env_of(proc)
    assert env["HOST"].value == "dw.internal"
    assert env["URL"].value == "https://dw.example.com/api"
    assert env["PORT"].value == "5432"
    assert env["MIZZEN_CONFIG_KEYS"].value == "HOST,PORT,URL"
    assert env["OUT"].value == "runs/${run.id}"  # filled by the runner at process start
    assert env["LITERAL"].value == "${config.HOST}"
    # escapes stay until the runner fills run.* (fill_run then unescapes)
    assert env["BOTH"].value == "$${HOME}/${run.id}"
    assert fill_run(env["BOTH"].value or "", "r-1", "d") == "${HOME}/r-1"
    assert env["MIZZEN_PROJECT"].value == "drives" and env["MIZZEN_WORKLOAD"].value == "q"
    assert plan.config["URL"] == "https://dw.example.com/api"


def test_secrets_are_references_never_values(plan_of: Compile) -> None:
    plan = plan_of(
        """
        secrets:
          warehouse: [user, password]
          api: {keys: [token], existingSecret: api-prod}
        jobs:
          q:
            command: [python, q.py]
            secrets: [warehouse]
            env: {API_TOKEN: "${secrets.api.token}"}
        """,
        environ={"MIZZEN_SECRET_WAREHOUSE_PASSWORD": "hunter2"},
    )
    env = env_of(plan.jobs["q"].process)
    assert env["MIZZEN_SECRET_WAREHOUSE_USER"] == p.EnvVar(
        "MIZZEN_SECRET_WAREHOUSE_USER", secret=p.SecretRef("warehouse", "user")
    )
    assert env["MIZZEN_SECRET_WAREHOUSE_PASSWORD"].value is None
    assert env["API_TOKEN"] == p.EnvVar("API_TOKEN", secret=p.SecretRef("api", "token"))
    assert set(plan.jobs["q"].process.secret_refs) == {
        p.SecretRef("warehouse", "user"),
        p.SecretRef("warehouse", "password"),
        p.SecretRef("api", "token"),
    }
    assert plan.secrets["api"] == p.SecretDecl("api", ("token",), "api-prod")
    assert "hunter2" not in json.dumps(plan, default=str)
    assert secret_env_name("db-main", "pass.word") == "MIZZEN_SECRET_DB_MAIN_PASS_WORD"


def test_local_store_sandbox_and_real_urls(tmp_path: Path) -> None:
    path = tmp_path / "mizzen.yaml"
    path.write_text(
        HEAD
        + dedent(
            """
            stores:
              lake: s3://analytics-lake/prefix
              disk: file:///srv/data
              rel: data/lake
              records: s3://records
            store: records
            environments:
              prod: {}
            """
        )
    )
    root = tmp_path.resolve()
    sandbox = compile_plan(spec.load(path), "local")
    assert sandbox.stores["lake"].url == (root / ".mizzen/stores/lake").as_uri()
    assert sandbox.stores["disk"].url == "file:///srv/data"
    assert sandbox.stores["rel"].url == (root / "data/lake").as_uri()
    assert sandbox.store is not None
    assert sandbox.store.url == (root / ".mizzen/stores/records").as_uri() + "/mizzen/drives"
    prod = compile_plan(spec.load(path, "prod"), "local")
    assert prod.stores["lake"].url == "s3://analytics-lake/prefix"
    assert prod.store is not None and prod.store.url == "s3://records/mizzen/drives"
    k8s = compile_plan(spec.load(path), "kubernetes")
    assert k8s.stores["lake"].url == "s3://analytics-lake/prefix"


def test_default_project_store_is_local_folder(plan_of: Compile, tmp_path: Path) -> None:
    plan = plan_of("jobs: {a: {command: [x]}}\n")
    assert plan.store == p.StoreRef(
        name="local", url=(tmp_path.resolve() / ".mizzen/store").as_uri()
    )


def test_notebook_job_runs_papermill(plan_of: Compile) -> None:
    plan = plan_of(
        """
        volumes:
          features: {scratch: {}}
        jobs:
          report:
            notebook: notebooks/report.ipynb
            parameters: {days: 7, data: "${volumes.features}"}
        """,
        "kubernetes",
    )
    job = plan.jobs["report"]
    assert job.kind == "notebook" and job.spec == NotebookPlan(
        "notebooks/report.ipynb", {"days": 7, "data": "/mnt/mizzen/features"}
    )
    argv = job.process.command
    assert argv[:6] == (
        "python",
        "-m",
        "papermill",
        "notebooks/report.ipynb",
        "${run.outputs}/report.ipynb",
        "--log-output",
    )
    assert argv[6] == "-y" and json.loads(argv[7]) == {"data": "/mnt/mizzen/features", "days": 7}
    assert [m.volume for m in job.process.mounts] == ["features"]


def test_model_service_runs_mizzen_serve(plan_of: Compile) -> None:
    plan = plan_of(
        """
        services:
          classifier:
            model: drive-classifier
            versions: {"3": 90, "4": 10}
            batching: {maxBatchSize: 16, maxLatency: 5ms}
            replicas: 2
            autoscale: {max: 10, targetCPU: 70}
          latest:
            model: ranker
          web:
            command: [streamlit, run, app.py]
            port: 8501
            health: {path: /healthz}
        """
    )
    svc = plan.services["classifier"]
    assert svc.process.command == (
        "mizzen", "serve", "drive-classifier", "--versions", '{"3":90,"4":10}', "--host", "127.0.0.1", "--port", "8080",
        "--max-batch-size", "16", "--max-latency", "0.005s",
    )  # fmt: skip
    assert svc.port == 8080 and svc.replicas == 2 and svc.autoscale == p.Autoscale(1, 10, 70)
    assert svc.health == p.Probe("/v2/health/ready", 8080, 2)
    latest = plan.services["latest"]
    assert latest.model == p.ModelServing("ranker", {"latest": 100})
    assert list(latest.process.command) == model_server_argv(latest.model, 8080, host="127.0.0.1")
    web = plan.services["web"]
    assert web.model is None and web.process.command == ("streamlit", "run", "app.py")
    assert web.health == p.Probe("/healthz", 8501, 5)


def test_resources_and_limits(plan_of: Compile) -> None:
    plan = plan_of(
        """
        jobs:
          a: {command: [x], resources: {cpu: 2, memory: 4Gi, gpu: 1}}
          b: {command: [x], resources: {cpu: 500m, memory: 1Gi, limits: {cpu: "2", memory: 2Gi}}}
          c: {command: [x]}
        """
    )
    assert plan.jobs["a"].process.resources == p.Resources("2", "4Gi", 1, "2", "4Gi")
    assert plan.jobs["b"].process.resources == p.Resources("500m", "1Gi", 0, "2", "2Gi")
    assert plan.jobs["c"].process.resources == p.Resources()
    assert plan.kubernetes.default_resources == p.Resources("500m", "1Gi", 0, "500m", "1Gi")


def test_limits_below_requests_are_refused(tmp_path: Path) -> None:
    from mizzen.errors import SpecError

    path = tmp_path / "mizzen.yaml"
    path.write_text(
        HEAD + "jobs: {a: {command: [x], resources: {memory: 2Gi, limits: {memory: 1Gi}}}}\n"
    )
    with pytest.raises(SpecError, match=r"limits.memory \(1Gi\) is below the request \(2Gi\)"):
        spec.load(path)


def test_job_timing_schedule_and_placement(plan_of: Compile) -> None:
    plan = plan_of(
        """
        jobs:
          train:
            command: [python, train.py]
            retries: 2
            retryDelay: 30s
            timeout: 2h
            ttlAfterFinished: 1h
            schedule: {cron: "0 3 * * *", timeZone: Europe/Paris, concurrency: Replace}
            nodeSelector: {pool: gpu}
            tolerations: [{key: gpu, operator: Exists, effect: NoSchedule}]
            serviceAccountName: trainer
            annotations: {team: analytics}
            labels: {tier: batch}
            workingDir: src
        pipelines:
          nightly:
            schedule: "@daily"
            parallelism: 2
            timeout: 6h
            steps: [train]
        """,
        "kubernetes",
    )
    job = plan.jobs["train"]
    assert (job.retries, job.retry_delay_seconds, job.timeout_seconds, job.ttl_seconds) == (
        2,
        30,
        7200,
        3600,
    )
    assert job.schedule == p.Schedule("0 3 * * *", "Europe/Paris", False, "Replace")
    placement = job.process.placement
    assert placement.node_selector == {"pool": "gpu"}
    assert placement.tolerations == ({"key": "gpu", "operator": "Exists", "effect": "NoSchedule"},)
    assert placement.service_account_name == "trainer"
    assert placement.annotations == {"team": "analytics"} and placement.labels == {"tier": "batch"}
    assert job.process.working_dir == "src"
    pipe = plan.pipelines["nightly"]
    assert (
        pipe.schedule == p.Schedule("@daily")
        and pipe.parallelism == 2
        and pipe.timeout_seconds == 21600
    )


def test_pipeline_steps_and_arg_overrides(plan_of: Compile) -> None:
    plan = plan_of(
        """
        volumes:
          raw: {scratch: {}}
          other: {scratch: {}}
        config: {DAYS: "7"}
        jobs:
          train: {command: [python, train.py], args: ["${volumes.raw}"]}
        pipelines:
          twice:
            steps:
              - train
              - {job: train, name: retrain, after: [train], args: ["${volumes.other}", "--days=${config.DAYS}"]}
        """,
        "kubernetes",
    )
    first, second = plan.pipelines["twice"].steps
    assert first == p.Step("train", "train", ())
    assert second.name == "retrain" and second.after == ("train",)
    assert second.args == ("/mnt/mizzen/other", "--days=7")
    assert second.process is not None
    assert second.process.command == ("python", "train.py", "/mnt/mizzen/other", "--days=7")
    assert [m.volume for m in second.process.mounts] == ["other"]
    assert env_of(second.process)["MIZZEN_WORKLOAD"].value == "train"


def test_set_overrides_config_and_refuses_unknown_keys(plan_of: Compile) -> None:
    body = "config: {DAYS: '7', HOST: dw}\njobs: {a: {command: [x, '--days=${config.DAYS}']}}\n"
    plan = plan_of(body, sets={"DAYS": "30"})
    assert plan.jobs["a"].process.command == ("x", "--days=30")
    assert env_of(plan.jobs["a"].process)["DAYS"].value == "30"
    with pytest.raises(UsageError) as caught:
        plan_of(body, sets={"DAY": "30"})
    assert caught.value.message == "--set DAY=...: 'DAY' is not a config key of this project"
    assert caught.value.hint.startswith("did you mean 'DAYS'?")


def test_design_example_compiles_for_both_targets(design: Path) -> None:
    for target in ("local", "kubernetes"):
        plan = compile_plan(spec.load(design), target)  # type: ignore[arg-type]
        assert [w.name for w in plan.workloads] == [
            "features",
            "train",
            "report",
            "nightly",
            "classifier",
            "ingest",
            "dashboard",
        ]
        assert plan.jobs["features"].kind == "spark" and plan.jobs["features"].spec.executors == 4
        assert plan.jobs["train"].spec == DistributedPlan("pytorch", 2)
        assert plan.alerts[0].webhook == "${secrets.alerts.url}"
    prod = compile_plan(
        spec.load(design, "prod"),
        "kubernetes",
        image="registry.example.com/analytics/drives@sha256:ab",
    )
    assert prod.env == "prod" and prod.image.endswith("@sha256:ab")
    assert prod.jobs["train"].process.resources.gpu == 4
    assert prod.kubernetes.namespace == "drives"


def test_model_servers_bind_and_size_for_where_they_run(plan_of: Compile) -> None:
    body = """
        services:
          small: {model: ranker}
          big: {model: ranker, resources: {cpu: 1500m, limits: {cpu: "3"}}}
        """
    local = plan_of(body)
    assert "--workers" not in local.services["small"].process.command  # one per CPU here
    assert local.services["small"].process.command[5:7] == ("--host", "127.0.0.1")
    big = local.services["big"].process.command
    assert big[big.index("--workers") + 1] == "3"  # its CPU limit
    cluster = plan_of(body, "kubernetes", image="r.example/x:1")
    small = cluster.services["small"].process.command
    assert small[5:7] == ("--host", "0.0.0.0")
    assert small[small.index("--workers") + 1] == "1"  # the default 500m request of a pod
