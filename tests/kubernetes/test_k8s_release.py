"""Release logic against the fake cluster: pre-flight, dry-run gate, apply, prune,
revisions, rollback, diff, wait."""

from __future__ import annotations

import base64
import gzip
import json
from pathlib import Path
from typing import Any

import pytest
from fake_cluster import FakeCluster, install_everything, recorded

from mizzen import spec as spec_mod
from mizzen.errors import UsageError
from mizzen.plan import compile_plan
from mizzen.plan.model import Plan
from mizzen.targets.kubernetes import release as rel
from mizzen.targets.kubernetes.cluster import ReleaseError
from mizzen.targets.kubernetes.render import render
from mizzen.targets.kubernetes.revisions import revisions
from mizzen.targets.kubernetes.wait import wait_for_deployments

HERE = Path(__file__).parent
DESIGN = HERE / "specs" / "design" / "mizzen.yaml"
IMAGE = "registry.example.com/analytics/drives@sha256:" + "1" * 64
SECRETS = {
    ("warehouse", "user"): "etl",
    ("warehouse", "password"): "s3cr3t-pw",
    ("alerts", "url"): "https://hooks.example.com/T0",
}


def plan_of(path: Path = DESIGN, env: str | None = "dev", image: str = IMAGE) -> Plan:
    return compile_plan(spec_mod.load(path, env), "kubernetes", image=image, environ={})


def local(secret: str, key: str) -> str | None:
    return SECRETS.get((secret, key))


@pytest.fixture
def cluster() -> FakeCluster:
    c = FakeCluster("drives-dev")
    install_everything(c)
    return c


def do_release(cluster: FakeCluster, plan: Plan | None = None, **kw: Any) -> rel.Result:
    plan = plan or plan_of()
    kw.setdefault("local", local)
    return rel.release(cluster, plan, render(plan), git_sha="abc1234", image=plan.image, **kw)


def test_release_applies_everything_but_on_demand_objects(cluster: FakeCluster) -> None:
    result = do_release(cluster)
    assert result.revision == 1
    kinds = {name.split("/")[0] for name in result.applied}
    assert {
        "Deployment",
        "Service",
        "HorizontalPodAutoscaler",
        "CronWorkflow",
        "Secret",
        "ConfigMap",
    } <= kinds
    assert not kinds & {"Job", "SparkApplication", "PyTorchJob", "Workflow"}  # run on demand
    deploy = cluster.get("apps/v1", "Deployment", "drives-classifier", "drives-dev")
    assert deploy is not None and deploy["metadata"]["labels"]["mizzen.io/revision"] == "1"
    secret = cluster.get("v1", "Secret", "drives-warehouse", "drives-dev")
    assert (
        secret is not None and base64.b64decode(secret["data"]["password"]).decode() == "s3cr3t-pw"
    )
    # dry-run of every object came before the first apply
    calls = [c for c, _ in cluster.calls if c in ("dry-run", "apply")]
    assert calls.index("apply") == calls.count("dry-run")


def test_what_pods_use_is_applied_before_the_workloads(cluster: FakeCluster) -> None:
    do_release(cluster)
    applied = [name for verb, name in cluster.calls if verb == "apply"]
    assert applied[-1] == "Secret/drives-release-v1"  # the revision record, once all landed
    kinds = [name.split("/")[0] for name in applied[:-1]]
    support = [
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Secret",
        "ConfigMap",
        "PersistentVolume",
        "PersistentVolumeClaim",
    ]
    assert set(support) <= set(kinds) and {"Deployment", "CronWorkflow"} <= set(kinds)
    first_other = next(i for i, k in enumerate(kinds) if k not in support)
    assert all(k not in support for k in kinds[first_other:])
    assert kinds[:first_other] == sorted(kinds[:first_other], key=support.index)


def test_a_role_granting_what_the_deployer_lacks_is_refused_before_anything(
    cluster: FakeCluster,
) -> None:
    cluster.denied = {("create", "workflowtaskresults"), ("escalate", "roles")}
    with pytest.raises(ReleaseError) as err:
        do_release(cluster)
    (problem,) = [p for p in err.value.problems if "Role drives-workflow" in p]
    assert "grants create workflowtaskresults.argoproj.io" in problem
    assert "aggregate-to-admin" in problem and "`bind` and `escalate`" in problem
    assert not [c for c in cluster.calls if c[0] == "apply"]
    cluster.denied = {("create", "workflowtaskresults")}  # escalate and bind: may grant it
    assert do_release(cluster).revision == 1


def test_revision_record_has_objects_but_never_secret_values(cluster: FakeCluster) -> None:
    do_release(cluster)
    record = cluster.get("v1", "Secret", "drives-release-v1", "drives-dev")
    assert record is not None and record["type"] == "mizzen.io/release.v1"
    data = {k: base64.b64decode(v) for k, v in record["data"].items()}
    assert data["gitSha"] == b"abc1234" and data["image"] == IMAGE.encode()
    objects = json.loads(gzip.decompress(data["objects.json.gz"]))
    assert any(o["kind"] == "Deployment" for o in objects)
    for value in SECRETS.values():
        assert value not in json.dumps(objects)
        assert not any(value.encode() in v for v in data.values())
    # only secrets something reads: the train job's, and the webhook the pods' alerts use
    assert json.loads(data["secrets"]) == ["drives-alerts", "drives-warehouse"]


def test_records_of_earlier_versions_are_still_read(cluster: FakeCluster) -> None:
    """mizzen once kept revisions in ConfigMaps: history and rollback still find them."""
    from mizzen.targets.kubernetes.revisions import RECORD_TYPE

    do_release(cluster)
    secret = cluster.get("v1", "Secret", "drives-release-v1", "drives-dev")
    assert secret is not None and secret["type"] == RECORD_TYPE
    data = {
        k: base64.b64decode(v).decode() for k, v in secret["data"].items() if k != "objects.json.gz"
    }
    cluster.delete("v1", "Secret", "drives-release-v1", "drives-dev")
    cluster.put(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {**secret["metadata"], "name": "drives-release-v1"},
            "data": data,
            "binaryData": {"objects.json.gz": secret["data"]["objects.json.gz"]},
        }
    )
    assert [(r.number, r.kind) for r in revisions(cluster, "drives")] == [(1, "ConfigMap")]
    do_release(cluster)
    assert [(r.number, r.status) for r in revisions(cluster, "drives")] == [
        (2, "deployed"),
        (1, "superseded"),
    ]


def test_a_failed_dry_run_applies_nothing(cluster: FakeCluster) -> None:
    cluster.dry_run_errors["Deployment/drives-dashboard"] = recorded("apply_dry_run_invalid.json")
    with pytest.raises(ReleaseError) as err:
        do_release(cluster)
    assert "nothing was applied" in str(err.value)
    assert (
        'Deployment/drives-dashboard: Deployment.apps "drives-dashboard" is invalid'
        in err.value.problems[0]
    )
    assert not [c for c in cluster.calls if c[0] in ("apply", "delete")]
    assert revisions(cluster, "drives") == []


def test_prune_removes_what_the_spec_no_longer_has(cluster: FakeCluster, tmp_path: Path) -> None:
    do_release(cluster)
    cron_owned = {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": "owned",
            "labels": {"app.kubernetes.io/managed-by": "mizzen", "mizzen.io/project": "drives"},
            "ownerReferences": [{"kind": "X", "name": "y"}],
        },
    }
    cluster.put(cron_owned)
    text = DESIGN.read_text()
    smaller = text.split("  dashboard:\n")[0] + text[text.index("\nalerts:") + 1 :]
    (tmp_path / "mizzen.yaml").write_text(smaller)
    cluster.calls.clear()
    result = do_release(cluster, plan_of(tmp_path / "mizzen.yaml"))
    assert result.revision == 2
    assert sorted(result.pruned) == ["Deployment/drives-dashboard", "Service/drives-dashboard"]
    assert "drives-dashboard" not in cluster.names("Deployment")
    assert "owned" in cluster.names("CronJob")  # owned by another object: never pruned
    assert "drives-release-v1" in cluster.names("Secret")  # revision records survive
    verbs = [c for c, _ in cluster.calls if c in ("apply", "delete")]
    assert verbs.index("delete") > max(
        i for i, v in enumerate(verbs) if v == "apply" and i < verbs.index("delete")
    )


def test_a_failed_apply_prunes_nothing_and_records_a_failed_revision(
    cluster: FakeCluster, tmp_path: Path
) -> None:
    do_release(cluster)
    cluster.put(
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": "leftover",
                "labels": {"app.kubernetes.io/managed-by": "mizzen", "mizzen.io/project": "drives"},
            },
        }
    )
    cluster.apply_errors["HorizontalPodAutoscaler/drives-classifier"] = recorded(
        "apply_forbidden.json"
    )
    with pytest.raises(ReleaseError) as err:
        do_release(cluster)
    assert "nothing was pruned" in str(err.value)
    assert "leftover" in cluster.names("Deployment")
    history = revisions(cluster, "drives")
    assert [(r.number, r.status) for r in history] == [(2, "failed"), (1, "deployed")]


def test_preflight_reports_every_problem_in_one_line_each(cluster: FakeCluster) -> None:
    cluster.missing_kinds = {"CronWorkflow", "SparkApplication"}
    cluster.store = {
        k: v for k, v in cluster.store.items() if v["kind"] not in ("CSIDriver", "Node")
    }
    cluster.denied = {("patch", "deployments")}
    with pytest.raises(ReleaseError) as err:
        do_release(cluster, local=lambda s, k: None)
    text = "\n".join(err.value.problems)
    assert (
        "CronWorkflow (argoproj.io/v1alpha1, used by nightly) is not installed in the cluster: install Argo Workflows"
        in text
    )
    # on-demand kinds are not applied: their missing operator is a warning for `mizzen run`
    assert "SparkApplication" not in text
    assert any("SparkApplication" in w and "mizzen run features" in w for w in err.value.warnings)
    assert (
        "secrets.warehouse: no value for password, user (set MIZZEN_SECRET_WAREHOUSE_PASSWORD, MIZZEN_SECRET_WAREHOUSE_USER"
        in text
    )
    assert "CSI driver s3.csi.aws.com (Mountpoint for Amazon S3 CSI driver)" in text
    assert "you may not patch deployments.apps in namespace drives-dev" in text
    assert all("\n" not in p for p in err.value.problems)
    assert not [c for c in cluster.calls if c[0] in ("apply", "dry-run")]


def test_unreachable_cluster_and_missing_namespace(cluster: FakeCluster) -> None:
    cluster.reachable = False
    with pytest.raises(ReleaseError, match="cannot reach the cluster"):
        do_release(cluster)
    other = FakeCluster("elsewhere")
    install_everything(other)
    other.store = {k: v for k, v in other.store.items() if v["kind"] != "Namespace"}
    with pytest.raises(ReleaseError, match="namespace elsewhere does not exist"):
        do_release(other)


def test_gpu_requests_without_gpu_nodes_warn(cluster: FakeCluster) -> None:
    cluster.store = {k: v for k, v in cluster.store.items() if v["kind"] != "Node"}
    result = do_release(cluster)
    assert any("no node offers nvidia.com/gpu" in w for w in result.warnings)


def test_existing_secret_in_cluster_is_kept_when_no_local_value(cluster: FakeCluster) -> None:
    do_release(cluster)
    result = do_release(cluster, local=lambda s, k: None)
    assert any("keeping the Secret drives-warehouse" in w for w in result.warnings)
    assert "drives-warehouse" in cluster.names("Secret")
    assert not [p for p in result.pruned if p.startswith("Secret/")]


def test_history_and_rollback(cluster: FakeCluster) -> None:
    do_release(cluster)
    newer = "registry.example.com/analytics/drives@sha256:" + "2" * 64
    do_release(cluster, plan_of(image=newer))
    deploy = cluster.get("apps/v1", "Deployment", "drives-classifier", "drives-dev")
    assert (
        deploy is not None and deploy["spec"]["template"]["spec"]["containers"][0]["image"] == newer
    )
    cluster.calls.clear()
    result = rel.rollback(cluster, plan_of(image=newer))
    assert result.revision == 3
    deploy = cluster.get("apps/v1", "Deployment", "drives-classifier", "drives-dev")
    assert (
        deploy is not None and deploy["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE
    )
    assert deploy["metadata"]["labels"]["mizzen.io/revision"] == "3"
    assert ("apply", "Secret/drives-warehouse") not in cluster.calls  # reused, not recreated
    history = revisions(cluster, "drives")
    assert [(r.number, r.status) for r in history] == [
        (3, "deployed"),
        (2, "superseded"),
        (1, "superseded"),
    ]
    assert history[0].note == "rollback to 1" and history[0].image == IMAGE
    with pytest.raises(UsageError, match="no revision 9"):
        rel.rollback(cluster, plan_of(), 9)


NIGHTLY = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: tz
jobs:
  nightly:
    command: [python, -c, pass]
    schedule: {cron: "30 2 * * *", timeZone: Europe/Paris}
"""


@pytest.mark.parametrize("version", ["v1.24.0", "v1.24.0-alpha.1", "v1.31.2"])
def test_cron_time_zone_on_a_server_older_than_1_25(version: str, tmp_path: Path) -> None:
    (tmp_path / "mizzen.yaml").write_text(NIGHTLY)
    cluster = FakeCluster("tz")
    cluster.server_version = version
    result = do_release(cluster, plan_of(tmp_path / "mizzen.yaml", env=None))
    (cron,) = [o for o in cluster.store.values() if o["kind"] == "CronJob"]
    if version.startswith("v1.24"):
        assert "timeZone" not in cron["spec"]
        assert cron["spec"]["schedule"] == "CRON_TZ=Europe/Paris 30 2 * * *"
        assert any("CRON_TZ=Europe/Paris" in w and version in w for w in result.warnings)
    else:
        assert cron["spec"]["timeZone"] == "Europe/Paris"
        assert cron["spec"]["schedule"] == "30 2 * * *"
        assert not any("CRON_TZ" in w for w in result.warnings)


def test_a_rollback_after_an_upgrade_to_1_25_gives_the_time_zone_back(tmp_path: Path) -> None:
    (tmp_path / "mizzen.yaml").write_text(NIGHTLY)
    plan = plan_of(tmp_path / "mizzen.yaml", env=None)
    cluster = FakeCluster("tz")
    cluster.server_version = "v1.24.17"
    do_release(cluster, plan)
    do_release(cluster, plan, note="second")
    cluster.server_version = "v1.29.0"  # refuses CRON_TZ= in a schedule
    rel.rollback(cluster, plan)
    (cron,) = [o for o in cluster.store.values() if o["kind"] == "CronJob"]
    assert cron["spec"]["timeZone"] == "Europe/Paris"
    assert cron["spec"]["schedule"] == "30 2 * * *"


def test_rollback_needs_a_history() -> None:
    with pytest.raises(UsageError, match="no release"):
        rel.rollback(FakeCluster("drives-dev"), plan_of())


def test_dry_run_and_diff_change_nothing(cluster: FakeCluster) -> None:
    do_release(cluster)
    before = json.dumps(sorted(map(str, cluster.store.items())))
    newer = "registry.example.com/analytics/drives@sha256:" + "3" * 64
    result = do_release(cluster, plan_of(image=newer), dry_run=True, diff=True)
    assert result.revision is None
    assert json.dumps(sorted(map(str, cluster.store.items()))) == before
    assert f"+        image: {newer}" in result.diff
    assert f"-        image: {IMAGE}" in result.diff
    assert "s3cr3t" not in result.diff


def test_wait_follows_deployments_until_available(cluster: FakeCluster) -> None:
    do_release(cluster)
    objects = [o for o in render(plan_of()) if o["kind"] == "Deployment"]
    ticks = {"n": 0}

    def sleep(_: float) -> None:
        ticks["n"] += 1
        for obj in cluster.list("apps/v1", "Deployment", "drives-dev"):
            want = obj["spec"].get("replicas", 1)
            obj["status"] = {
                "observedGeneration": 1,
                "updatedReplicas": want,
                "availableReplicas": want,
                "replicas": want,
            }
            cluster.put(obj)

    lines: list[str] = []
    late = wait_for_deployments(cluster, objects, sleep=sleep, report=lines.append)
    assert late == [] and ticks["n"] == 1
    assert any(line.startswith("drives-classifier: available") for line in lines)
    clock = iter(range(0, 1000, 100))
    late = wait_for_deployments(
        FakeCluster("drives-dev"),
        objects,
        timeout=250,
        sleep=lambda _: None,
        clock=lambda: next(clock),
    )
    assert [item.name for item in late] == sorted(o["metadata"]["name"] for o in objects)
    assert not any(item.stuck for item in late)


def test_alert_rules_are_applied_where_prometheus_operator_runs(cluster: FakeCluster) -> None:
    result = do_release(cluster)
    assert any(name.startswith("PrometheusRule/") for name in result.applied)
    rule = cluster.get("monitoring.coreos.com/v1", "PrometheusRule", "drives-alerts", "drives-dev")
    assert rule is not None
    assert "https://hooks.example.com/T0" not in json.dumps(
        rule
    )  # a webhook secret never lands in it


def test_alert_rules_are_left_out_with_a_warning_without_prometheus_operator(
    cluster: FakeCluster,
) -> None:
    cluster.missing_kinds = {"PrometheusRule"}
    result = do_release(cluster)
    assert not any(name.startswith("PrometheusRule/") for name in result.applied)
    assert any("prometheus-operator" in w and "not applied" in w for w in result.warnings)
    # and pruning does not trip over the missing kind on the next release
    assert do_release(cluster).revision == 2
