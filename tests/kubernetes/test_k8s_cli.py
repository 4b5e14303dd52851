"""The commands, cluster selection, one-off runs, logs and API error messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from fake_cluster import FakeCluster, RecordedApiError, install_everything
from test_k8s_release import do_release

from mizzen import spec as spec_mod
from mizzen.cli.main import cli
from mizzen.errors import UsageError
from mizzen.plan import compile_plan
from mizzen.plan.model import KubernetesSettings, Resources
from mizzen.targets.base import Options
from mizzen.targets.kubernetes import target as target_mod
from mizzen.targets.kubernetes.client import select_cluster, to_cluster_error
from mizzen.targets.kubernetes.cluster import Obj
from mizzen.targets.kubernetes.logs import workload_logs

HERE = Path(__file__).parent
DESIGN = HERE / "specs" / "design" / "mizzen.yaml"
IMAGE = "registry.example.com/analytics/drives@sha256:" + "1" * 64


def settings(context: str | None = None, namespace: str | None = None) -> KubernetesSettings:
    return KubernetesSettings(context, namespace, None, (), Resources(), 1000, True, False)


def kubeconfig(path: Path, current: str, namespaces: dict[str, str | None]) -> Path:
    contexts = [
        {"name": n, "context": {"cluster": "c", "user": "u", **({"namespace": ns} if ns else {})}}
        for n, ns in namespaces.items()
    ]
    path.write_text(
        yaml.safe_dump(
            {"apiVersion": "v1", "kind": "Config", "current-context": current, "contexts": contexts}
        )
    )
    return path


def test_cluster_selection_precedence(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / ".kube").mkdir(parents=True)
    kubeconfig(home / ".kube" / "config", "laptop", {"laptop": "scratch", "prod": None})
    exported = kubeconfig(tmp_path / "ci.yaml", "ci", {"ci": "ci-ns"})
    spec = settings("prod", "drives")
    assert select_cluster("x", "y", spec, {"HOME": str(home), "KUBECONFIG": str(exported)}) == (
        "x",
        "y",
    )
    assert select_cluster(None, None, spec, {"HOME": str(home), "KUBECONFIG": str(exported)}) == (
        "ci",
        "ci-ns",
    )
    assert select_cluster(None, None, spec, {"HOME": str(home)}) == ("prod", "drives")
    assert select_cluster(None, None, settings(), {"HOME": str(home)}) == ("laptop", "scratch")
    assert select_cluster(None, None, settings(), {"HOME": str(tmp_path / "nobody")}) == (
        None,
        "default",
    )


@pytest.mark.parametrize(
    ("fixture", "status", "text"),
    [
        (
            "apply_dry_run_invalid.json",
            422,
            "is invalid: spec.template.spec.containers[0].resources.requests",
        ),
        ("apply_forbidden.json", 403, 'cannot patch resource "cronjobs"'),
        ("get_not_found.json", 404, 'secrets "drives-warehouse" not found'),
    ],
)
def test_api_errors_become_one_clear_line(fixture: str, status: int, text: str) -> None:
    err = to_cluster_error(RecordedApiError(fixture), "Deployment/x")
    assert err.status == status and text in err.message and err.message.startswith("Deployment/x: ")
    assert (err.hint != "") == (status == 403)
    assert (
        "cannot connect"
        in to_cluster_error(ConnectionRefusedError(111, "Connection refused")).message
    )


class RunningCluster(FakeCluster):
    """Creates a pod for each run object and finishes it with `exit_code`."""

    exit_code = 0

    def create(self, obj: Obj) -> Obj:
        created = super().create(obj)
        run = created["metadata"]["labels"]["mizzen.io/run"]
        pod = {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": created["metadata"]["name"] + "-pod",
                "labels": {"mizzen.io/run": run},
                "creationTimestamp": "2026-11-23T10:00:00Z",
            },
            "spec": {"containers": [{"name": "main"}]},
            "status": {"phase": "Succeeded" if self.exit_code == 0 else "Failed"},
        }
        self.put(pod)
        self.logs[pod["metadata"]["name"]] = ["loading features", "epoch 1 loss=0.4"]
        done = (
            {"succeeded": 1}
            if self.exit_code == 0
            else {
                "conditions": [
                    {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}
                ]
            }
        )
        self.store[
            next(
                k
                for k, v in self.store.items()
                if v["metadata"]["name"] == created["metadata"]["name"]
            )
        ]["status"] = done
        return created


def plan_of(env: str | None = "dev") -> Any:
    return compile_plan(spec_mod.load(DESIGN, env), "kubernetes", environ={})


@pytest.mark.parametrize("code", [0, 1])
def test_run_creates_a_one_off_job_streams_logs_and_returns_its_status(code: int) -> None:
    cluster = RunningCluster("drives-dev")
    install_everything(cluster)
    do_release(cluster)  # a one-off run uses the released ServiceAccount, ConfigMap, Secrets
    cluster.exit_code = code
    lines: list[str] = []
    result = target_mod.KubernetesTarget(cluster, echo=lines.append, sleep=lambda _: None).run(
        plan_of(), "report", Options(image=IMAGE)
    )
    assert result == code
    job = next(v for v in cluster.store.values() if v["kind"] == "Job")
    assert job["metadata"]["name"].startswith("drives-report-")
    assert job["metadata"]["labels"]["mizzen.io/role"] == "run"
    assert (
        job["spec"]["template"]["metadata"]["labels"]["mizzen.io/run"]
        == job["metadata"]["labels"]["mizzen.io/run"]
    )
    assert "loading features" in lines and "epoch 1 loss=0.4" in lines
    assert lines[-1].endswith("succeeded" if code == 0 else "failed")


def test_run_of_a_scheduled_pipeline_makes_a_workflow() -> None:
    obj = target_mod.one_off(
        plan_of().__class__(**{**plan_of().__dict__, "image": IMAGE}), "nightly", "r1"
    )
    assert obj["kind"] == "Workflow" and obj["metadata"]["generateName"] == "drives-nightly-"
    assert obj["spec"]["podMetadata"]["labels"]["mizzen.io/run"] == "r1"


def test_run_refuses_services_and_unpinned_images() -> None:
    from mizzen.errors import UsageError

    plan = plan_of()
    with pytest.raises(UsageError, match="is a service"):
        target_mod.one_off(plan.__class__(**{**plan.__dict__, "image": IMAGE}), "classifier", "r")
    with pytest.raises(UsageError, match="mizzen build --push"):
        target_mod.resolve_image(plan, None, strict=True)


def test_logs_from_pods_then_from_the_run_store(tmp_path: Path) -> None:
    cluster = FakeCluster("drives-dev")
    plan = plan_of()
    cluster.put(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "drives-ingest-a",
                "labels": {
                    "app.kubernetes.io/managed-by": "mizzen",
                    "mizzen.io/project": "drives",
                    "mizzen.io/workload": "ingest",
                },
            },
            "spec": {"containers": [{"name": "main"}]},
        }
    )
    cluster.logs["drives-ingest-a"] = ["consumed 10 events"]
    lines: list[str] = []
    assert workload_logs(cluster, plan, "ingest", echo=lines.append) == "pods"
    assert lines == ["drives-ingest-a/main | consumed 10 events"]

    from mizzen.plan.model import StoreRef
    from mizzen.storage.base import open_store
    from mizzen.storage.runs import RunRecord, RunStore

    store_url = (tmp_path / "store").as_uri()
    runs = RunStore(open_store(store_url))
    record = RunRecord(
        id="20261123-100000-abcd",
        workload="train",
        kind="job",
        status="failed",
        target="kubernetes",
    )
    runs.save(record)
    runs.put_log(record, "train", b"step 1\nboom\n")
    runs.finish(record)
    plan = plan.__class__(**{**plan.__dict__, "store": StoreRef("lake", store_url)})
    lines = []
    assert workload_logs(cluster, plan, "train", echo=lines.append) == "store"
    assert (
        lines[1:] == ["step 1", "boom"] and "archived logs of run 20261123-100000-abcd" in lines[0]
    )


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeCluster:
    cluster = FakeCluster("drives-dev")
    install_everything(cluster)

    def connect(
        plan: Any, context: str | None = None, namespace: str | None = None
    ) -> tuple[Any, Any]:
        from dataclasses import replace

        return cluster, replace(
            plan, kubernetes=replace(plan.kubernetes, namespace=cluster.namespace)
        )

    monkeypatch.setattr(target_mod, "connect", connect)
    for key, value in {"USER": "etl", "PASSWORD": "pw"}.items():
        monkeypatch.setenv(f"MIZZEN_SECRET_WAREHOUSE_{key}", value)
    monkeypatch.setenv("MIZZEN_SECRET_ALERTS_URL", "https://hooks.example.com/T0")
    return cluster


def invoke(*args: str) -> Any:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_render_command_prints_yaml_or_writes_files(tmp_path: Path) -> None:
    result = invoke("render", "-f", str(DESIGN), "--env", "dev", "--image", IMAGE)
    assert result.exit_code == 0
    docs = list(yaml.safe_load_all(result.stdout))
    assert docs[0]["kind"] == "ServiceAccount" and all(
        d["metadata"]["namespace"] == "drives-dev" for d in docs if d["kind"] != "PersistentVolume"
    )
    assert "no `store:`" in result.stderr
    out = tmp_path / "out"
    assert invoke("render", "-f", str(DESIGN), "--image", IMAGE, "-o", str(out)).exit_code == 0
    assert sorted(p.name for p in out.iterdir())[0] == "01-serviceaccount-drives.yaml"


def test_release_history_rollback_status_delete(fake: FakeCluster) -> None:
    base = ["-f", str(DESIGN), "--env", "dev"]
    result = invoke("release", *base, "--image", IMAGE, "--no-wait")
    assert result.exit_code == 0, result.output
    assert "revision 1: applied" in result.stdout
    newer = IMAGE[:-1] + "2"
    assert invoke("release", *base, "--image", newer, "--no-wait").exit_code == 0
    diff = invoke("release", *base, "--image", IMAGE, "--dry-run", "--diff")
    assert "dry run: would apply" in diff.stdout and f"+        image: {IMAGE}" in diff.stdout
    hist = invoke("history", *base, "-o", "json")
    assert [(r["revision"], r["status"]) for r in json.loads(hist.stdout)] == [
        (2, "deployed"),
        (1, "superseded"),
    ]
    assert invoke("rollback", *base, "--no-wait").exit_code == 0
    assert json.loads(invoke("history", *base, "-o", "json").stdout)[0]["note"] == "rollback to 1"
    rows = json.loads(invoke("status", *base, "-o", "json").stdout)
    assert {r["workload"] for r in rows} >= {"classifier", "ingest", "dashboard", "nightly"}
    refused = CliRunner().invoke(cli, ["delete", *base])
    assert refused.exit_code != 0 and "--yes" in str(refused.exception or refused.output)
    gone = invoke("delete", *base, "--yes")
    assert gone.exit_code == 0 and "deleted Deployment/drives-classifier" in gone.stdout
    assert not [
        v
        for v in fake.store.values()
        if v["metadata"].get("labels", {}).get("mizzen.io/project") == "drives"
    ]


def test_release_without_a_pinned_image_is_refused(fake: FakeCluster) -> None:
    result = CliRunner().invoke(cli, ["release", "-f", str(DESIGN), "--env", "dev", "--no-wait"])
    assert result.exit_code != 0
    assert "mizzen build --push" in str(result.exception)


def test_logs_command_streams_pods_with_target_kubernetes(fake: FakeCluster) -> None:
    fake.put(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "name": "drives-ingest-b",
                "namespace": "drives-dev",
                "labels": {
                    "app.kubernetes.io/managed-by": "mizzen",
                    "mizzen.io/project": "drives",
                    "mizzen.io/workload": "ingest",
                },
            },
            "spec": {"containers": [{"name": "main"}, {"name": "sidecar"}]},
        }
    )
    fake.logs["drives-ingest-b"] = ["offset 42"]
    result = invoke(
        "logs", "--file", str(DESIGN), "--env", "dev", "--target", "kubernetes", "ingest"
    )
    assert result.exit_code == 0, result.output
    assert "drives-ingest-b/main | offset 42" in result.stdout
    assert "drives-ingest-b/sidecar | offset 42" in result.stdout
    with pytest.raises(UsageError, match="--target kubernetes"):
        invoke("logs", "--file", str(DESIGN), "--context", "prod", "ingest")
