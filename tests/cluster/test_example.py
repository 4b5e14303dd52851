"""The example project on the real cluster: its release life cycle, its pipeline's steps
running as pods through `mizzen exec` with their records visible from the laptop, and the
parity of the environment a job sees on both targets.

The example's pipeline is an Argo CronWorkflow: these tests install the operator CRDs
(objects accepted, no controller runs them), so its steps run one by one with
`mizzen run STEP --target kubernetes`, as a user without Argo would."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from deltalake import DeltaTable

from conftest import MIZZEN, Kube, Project, single_node

pytestmark = [pytest.mark.cluster, pytest.mark.crds]
STEPS = ["generate", "features", "train", "evaluate", "report"]


@pytest.fixture
def example(
    project_copy: Any, kube: Kube, operator_crds: None, tmp_path: Path
) -> tuple[Project, str]:
    p: Project = project_copy()
    ns = kube.namespace("drives")
    p.write(single_node(p.spec(), tmp_path / "lake", ns))
    return p, ns


def names(text: str) -> list[str]:
    return [line.split()[0] for line in text.splitlines() if line and not line.startswith(" ")]


def test_release_history_status_prune_rollback_delete(
    example: tuple[Project, str], kube: Kube
) -> None:
    p, ns = example
    first = p.mizzen("release", "--env", "cluster", "--image", p.image, "--no-wait", check=True)
    assert "revision 1: applied" in first.stdout
    status = {
        r["workload"]: r
        for r in json.loads(p.mizzen("status", "--env", "cluster", "-o", "json", check=True).stdout)
    }
    assert status["drives"]["kind"] == "pipeline" and status["drives"]["phase"] == "Scheduled"
    assert status["classifier"]["kind"] == "model service"
    # a second release: a config change (rolls the service) and a service removed (pruned)
    spec = p.spec()
    spec["config"]["ROWS"] = "4000"
    spec["services"]["extra"] = {"command": ["python", "-m", "http.server", "8001"], "port": 8001}
    p.write(spec)
    second = p.mizzen("release", "--env", "cluster", "--image", p.image, "--no-wait", check=True)
    assert "revision 2: applied" in second.stdout
    del spec["services"]["extra"]
    p.write(spec)
    third = p.mizzen("release", "--env", "cluster", "--image", p.image, "--no-wait", check=True)
    assert "pruned Deployment/drives-extra, Service/drives-extra" in third.stdout
    history = json.loads(p.mizzen("history", "--env", "cluster", "-o", "json", check=True).stdout)
    assert [(h["revision"], h["status"]) for h in history] == [
        (3, "deployed"),
        (2, "superseded"),
        (1, "superseded"),
    ]
    assert "-2" in history[0]["changes"] and "drives-extra" in history[0]["changes"]
    # rollback re-applies revision 2 (with `extra`) as revision 4
    back = p.mizzen("rollback", "--env", "cluster", "--no-wait", check=True)
    assert "revision 4: applied" in back.stdout
    assert kube.get("deployment", "drives-extra", ns) is not None
    assert kube.get("configmap", "drives-config", ns)["data"]["ROWS"] == "4000"
    history = json.loads(p.mizzen("history", "--env", "cluster", "-o", "json", check=True).stdout)
    assert history[0]["note"] == "rollback to 2"
    # revision records are Secrets no workload's Role can read or edit
    records = kube.get("secrets", None, ns)["items"]
    assert sum(1 for s in records if s.get("type") == "mizzen.io/release.v1") == 4
    gone = p.mizzen("delete", "--env", "cluster", "--yes", check=True)
    assert "deleted Deployment/drives-classifier" in gone.stdout
    left = kube.kubectl(
        "get",
        "deploy,job,cronjob,svc,hpa,cm,secret,sa,role,rolebinding,pvc",
        "-n",
        ns,
        "-l",
        "mizzen.io/project=drives",
        "-o",
        "name",
    ).stdout
    assert left.strip() == ""


def test_rollback_after_a_failed_release_goes_back_one(
    example: tuple[Project, str], kube: Kube
) -> None:
    p, ns = example
    p.mizzen("release", "--env", "cluster", "--image", p.image, "--no-wait", check=True)
    spec = p.spec()
    spec["services"]["extra"] = {"command": ["python", "-m", "http.server"], "port": 8001}
    p.write(spec)
    p.mizzen("release", "--env", "cluster", "--image", p.image, "--no-wait", check=True)
    # revision 3 fails to apply: a quota admits one more Service; the dry-run checks each
    # object alone (both fit), the apply of the second one is refused
    services = len(kube.get("services", None, ns)["items"])
    kube.kubectl("create", "quota", "few", f"--hard=services={services + 1}", "-n", ns)
    spec["services"]["more"] = {"command": ["python", "-m", "http.server"], "port": 8002}
    spec["services"]["most"] = {"command": ["python", "-m", "http.server"], "port": 8003}
    p.write(spec)
    failed = p.mizzen("release", "--env", "cluster", "--image", p.image, "--no-wait")
    assert failed.returncode == 1
    assert "revision 3 recorded as failed; nothing was pruned" in failed.stderr, failed.stderr
    kube.kubectl("delete", "quota", "few", "-n", ns)
    history = json.loads(p.mizzen("history", "--env", "cluster", "-o", "json", check=True).stdout)
    assert [(h["revision"], h["status"]) for h in history] == [
        (3, "failed"),
        (2, "deployed"),
        (1, "superseded"),
    ], history
    back = p.mizzen("rollback", "--env", "cluster", "--no-wait", check=True)
    history = json.loads(p.mizzen("history", "--env", "cluster", "-o", "json", check=True).stdout)
    assert history[0]["note"] == "rollback to 2", (back.stdout, history)


DRIVER = 13  # the example's 3,000 drives are by drivers 0..19


def _rows_of(table: Path, driver: int) -> int:
    import pyarrow.compute as pc

    data = DeltaTable(str(table)).to_pyarrow_table(columns=["driver_id"])
    return int(pc.sum(pc.equal(data["driver_id"], driver)).as_py() or 0)


def _held(file: Path, driver: int) -> bool:
    import pyarrow.parquet as pq

    return driver in pq.read_table(file, columns=["driver_id"])["driver_id"].to_pylist()


def in_cluster(p: Project, *argv: str) -> subprocess.CompletedProcess[str]:
    """`mizzen run ARGV` as a pod of the test's namespace."""
    where = ("--env", "cluster", "--target", "kubernetes", "--image", p.image)
    return p.mizzen("run", *argv, *where, timeout=300)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_pipeline_steps_run_as_pods_and_their_records_reach_the_laptop(
    example: tuple[Project, str], kube: Kube
) -> None:
    p, ns = example
    p.mizzen("release", "--env", "cluster", "--image", p.image, "--no-wait", check=True)
    for step in STEPS:
        out = in_cluster(p, step, "--set", "ROWS=3000")
        assert out.returncode == 0, f"{step}:\n{out.stdout}\n{out.stderr}"
    runs = json.loads(p.mizzen("runs", "--env", "cluster", "-o", "json", check=True).stdout)
    by_step = {r["workload"]: r for r in runs}
    assert set(STEPS) <= set(by_step), runs
    assert all(
        by_step[s]["status"] == "succeeded" and by_step[s]["trigger"] == "cluster" for s in STEPS
    )
    evaluate = json.loads(
        p.mizzen(
            "runs", "show", by_step["evaluate"]["id"], "--env", "cluster", "-o", "json", check=True
        ).stdout
    )
    assert evaluate["params"]["ROWS"] == "3000"  # --set, recorded by `mizzen exec` in the pod
    assert evaluate["metrics"]["accuracy"] > 0.5 and evaluate["target"] == "kubernetes"
    log = p.mizzen("logs", by_step["generate"]["id"], "--env", "cluster", check=True).stdout
    assert "generated 3,000 drives" in log
    models = json.loads(p.mizzen("models", "--env", "cluster", "-o", "json", check=True).stdout)
    assert [m["name"] for m in models] == ["drive-classifier"]
    # the pods wrote the datasets in the lake the laptop reads, committed after each step
    lake = p.root.parent / "lake" / "lake"
    for name in ("drives", "features"):
        table = DeltaTable(str(lake / "tables" / name))
        assert table.to_pyarrow_table().num_rows == 3000, name
        writer = by_step["generate" if name == "drives" else "features"]
        assert table.history(1)[0]["mizzen.run_id"] == writer["id"], name
    # the model published by `evaluate` records the dataset version `train` read
    model = lake / "mizzen" / "drives" / "datasets" / "lineage" / "models" / "drive-classifier"
    assert json.loads((model / "1.json").read_text())["trained_on"] == [["features", 0]]
    # the maintenance job mizzen schedules itself runs as a pod like any job
    maintained = in_cluster(p, "mizzen-maintenance")
    assert maintained.returncode == 0, maintained.stdout + maintained.stderr
    # and a driver's erasure: a pod of the cluster, the id only ever in a one-off Secret
    before = {n: _rows_of(lake / "tables" / n, DRIVER) for n in ("drives", "features")}
    assert all(before.values()), before
    where = ("--env", "cluster", "--target", "kubernetes", "--image", p.image)
    dry = p.mizzen("data", "forget", str(DRIVER), *where, timeout=300)
    assert dry.returncode == 0 and "dry run: nothing was changed" in dry.stdout, dry.stdout
    assert "drive-classifier@1" in dry.stdout  # trained on data that held the driver
    gone = p.mizzen("data", "forget", str(DRIVER), "--apply", "--now", *where, timeout=300)
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert f"erased {sum(before.values()):,} rows" in gone.stdout, gone.stdout
    after = {n: _rows_of(lake / "tables" / n, DRIVER) for n in ("drives", "features")}
    assert after == {"drives": 0, "features": 0}
    # --now: no file of any version holds the driver any more
    files = [
        f
        for n in ("drives", "features")
        for f in (lake / "tables" / n).rglob("*.parquet")
        if not any(part.startswith("_") for part in f.relative_to(lake).parts)  # the log
    ]
    assert files and not any(_held(f, DRIVER) for f in files)
    assert kube.get("secrets", None, ns, selector="mizzen.io/one-off-run")["items"] == []
    job = kube.get("jobs", None, ns, selector="mizzen.io/workload=mizzen-forget")["items"]
    for j in job:  # its spec names the Secret, never the id
        container = j["spec"]["template"]["spec"]["containers"][0]
        assert str(DRIVER) not in container["command"]
        assert any(e.get("valueFrom") for e in container["env"] if "FORGET" in e["name"])
    # the classifier's decisions, then a signal computed in a pod: the values a local
    # recomputation of every bucket gives
    classified = in_cluster(p, "classify")
    assert classified.returncode == 0, classified.stdout + classified.stderr
    there = p.mizzen("signals", "compute", "business-share", *where, timeout=300)
    assert there.returncode == 0, there.stdout + there.stderr
    records = json.loads(p.mizzen("runs", "--env", "cluster", "-o", "json", check=True).stdout)
    computed = [r for r in records if r["workload"] == "mizzen-signal-business-share"]
    assert [(r["status"], r["target"]) for r in computed] == [("succeeded", "kubernetes")]
    show = ("signals", "show", "business-share", "--env", "cluster", "--last", "1000", "-o", "json")
    in_pod = json.loads(p.mizzen(*show, check=True).stdout)
    buckets = [v["bucket"] for v in in_pod["values"]]
    assert len(buckets) > 100 and sum(v["n"] for v in in_pod["values"]) == 3000 - before["drives"]
    assert set(in_pod["arms"]) == {"A", "B"} and set(in_pod["segments"]["vehicle"])
    here = p.mizzen(
        "signals", "backfill", "business-share", "--env", "cluster",
        "--from", buckets[0][:10], "--to", buckets[-1][:10], timeout=300,
    )  # fmt: skip
    assert here.returncode == 0, here.stdout + here.stderr
    locally = json.loads(p.mizzen(*show, check=True).stdout)
    for key in ("values", "segments", "arms", "experiment"):
        assert locally[key] == in_pod[key], key
    assert locally["freshness"]["computed_at"] > in_pod["freshness"]["computed_at"]
    # the exporter mizzen adds for watched signals serves the pod-computed latest value
    watched = p.mizzen("signals", "compute", "label-accuracy", *where, timeout=300)
    assert watched.returncode == 0, watched.stdout + watched.stderr
    accuracy = json.loads(p.mizzen(*show[:2], "label-accuracy", *show[3:], check=True).stdout)
    latest = [v for v in accuracy["values"] if v["complete"]][-1]["value"]
    metrics = _get(f"http://{_pod_ip(kube, ns, 'mizzen-signals')}:9464/metrics", timeout=120)
    series = 'mizzen_signal_value{project="drives",signal="label-accuracy",dimension="",'
    (line,) = [m for m in metrics.splitlines() if m.startswith(series) and 'arm=""' in m]
    assert float(line.rsplit(" ", 1)[1]) == pytest.approx(latest, rel=1e-12)
    # and, where the Prometheus operator's kinds are served, its scrape and its alert rules
    rules = kube.get("prometheusrules", f"{p.spec()['name']}-alerts", ns)
    alerts = {
        r.get("labels", {}).get("mizzen_alert") for g in rules["spec"]["groups"] for r in g["rules"]
    }
    assert {"below-0.85", "anomaly-28", "van-accuracy"} <= alerts
    assert kube.get("servicemonitors", f"{p.spec()['name']}-mizzen-signals", ns) is not None
    # and the dashboard shows them
    port = _free_port()
    ui = subprocess.Popen(
        [MIZZEN, "ui", "--env", "cluster", "--port", str(port)],
        cwd=p.root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "KUBECONFIG": str(p.kube.admin)},
    )
    try:
        page = _get(f"http://127.0.0.1:{port}/runs")
        assert all(step in page for step in STEPS)
        record = json.loads(
            _get(f"http://127.0.0.1:{port}/api/runs/evaluate/{by_step['evaluate']['id']}")
        )
        assert record["status"] == "succeeded"
        assert "drive-classifier" in _get(f"http://127.0.0.1:{port}/models")
        assert "business-share" in _get(f"http://127.0.0.1:{port}/signals/business-share")
    finally:
        ui.terminate()
        ui.wait(10)


def _get(url: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=5) as answer:
                return str(answer.read().decode())
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


PROBE = (Path(__file__).parent / "probe.py").read_text()
# What differs between the targets by design (docs/kubernetes.md, "Parity"): the cluster
# adds the image and spec digest a pod runs from.
CLUSTER_ONLY = {"MIZZEN_IMAGE", "MIZZEN_SPEC_DIGEST"}


def _contract(log: str) -> dict[str, Any]:
    line = next(text for text in log.splitlines() if "CONTRACT " in text)
    return dict(json.loads(line.split("CONTRACT ", 1)[1]))


def test_a_job_sees_the_same_contract_on_both_targets(example: tuple[Project, str]) -> None:
    p, _ = example
    spec = p.spec()
    spec["secrets"] = {"probe": ["token"]}
    spec["jobs"]["probe"] = {
        "command": ["python", "-c", PROBE, "${volumes.artifacts}"],
        "inputs": ["drives"],
        "secrets": ["probe"],
        "resources": {"cpu": "100m", "memory": "256Mi"},
    }
    spec["jobs"]["probe-fails"] = {**spec["jobs"]["probe"], "args": ["exit=3"]}
    p.write(spec)
    secret = {"MIZZEN_SECRET_PROBE_TOKEN": "t0ken-value"}
    env = {**os.environ, **secret}
    release = subprocess.run(
        [MIZZEN, "release", "--env", "cluster", "--image", p.image, "--no-wait"],
        cwd=p.root,
        env={**env, "KUBECONFIG": str(p.kube.admin)},
        capture_output=True,
        text=True,
    )
    assert release.returncode == 0, release.stderr
    local = subprocess.run(
        [MIZZEN, "run", "probe", "--env", "cluster"],
        cwd=p.root,
        env=env,
        capture_output=True,
        text=True,
    )
    cluster = p.mizzen(
        "run", "probe", "--env", "cluster", "--target", "kubernetes", "--image", p.image
    )
    assert local.returncode == 0 and cluster.returncode == 0, (
        local.stdout,
        local.stderr,
        cluster.stdout,
    )
    here, there = _contract(local.stdout), _contract(cluster.stdout)
    assert here["target"] == "local" and there["target"] == "kubernetes"
    assert set(there["mizzen_vars"]) - set(here["mizzen_vars"]) == CLUSTER_ONLY
    assert set(here["mizzen_vars"]) - set(there["mizzen_vars"]) == set()
    for key in (
        "volumes",
        "config",
        "sdk_config",
        "secret_vars",
        "sdk_secret",
        "cwd_is_project",
        "pythonunbuffered",
        "run_id_matches",
        "datasets",
    ):
        assert here[key] == there[key], (key, here[key], there[key])
    assert here["datasets"] == {"drives": True}
    assert here["volumes"]["artifacts"] == {
        "sdk_matches_env": True,
        "argument_matches_env": True,
        "exists": True,
        "writable": True,
    }
    # a failing job: exit code and record the same on both
    local_fail = subprocess.run(
        [MIZZEN, "run", "probe-fails", "--env", "cluster"],
        cwd=p.root,
        env=env,
        capture_output=True,
        text=True,
    )
    cluster_fail = p.mizzen(
        "run", "probe-fails", "--env", "cluster", "--target", "kubernetes", "--image", p.image
    )
    assert local_fail.returncode == cluster_fail.returncode == 1
    runs = json.loads(
        p.mizzen("runs", "probe-fails", "--env", "cluster", "-o", "json", check=True).stdout
    )
    assert sorted(r["target"] for r in runs) == ["kubernetes", "local"]
    records = [
        json.loads(
            p.mizzen("runs", "show", r["id"], "--env", "cluster", "-o", "json", check=True).stdout
        )
        for r in runs
    ]
    assert {r["status"] for r in records} == {"failed"}
    assert {r["steps"][0]["exit_code"] for r in records} == {3}
    assert set(records[0]) == set(records[1])  # the same record fields


def _pod_ip(kube: Kube, ns: str, workload: str, timeout: float = 180) -> str:
    """The IP of the workload's ready pod (the host reaches pods by IP; Services do not route)."""
    deadline = time.monotonic() + timeout
    while True:
        pods = kube.get("pods", None, ns, selector=f"mizzen.io/workload={workload}") or {}
        for pod in pods.get("items", []):
            conditions = pod.get("status", {}).get("conditions", [])
            if any(c["type"] == "Ready" and c["status"] == "True" for c in conditions):
                return str(pod["status"]["podIP"])
        if time.monotonic() > deadline:
            raise AssertionError(f"no ready pod of {workload} in {ns} after {timeout:.0f} s")
        time.sleep(2)


# What a cluster admin does once so namespace admins may grant the operators' verbs the
# example's Roles hold (Argo installs a similar aggregated ClusterRole itself).
OPERATOR_RIGHTS = """\
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata:
  name: mizzen-test-operator-rights
  labels: {rbac.authorization.k8s.io/aggregate-to-admin: "true"}
rules:
- apiGroups: [argoproj.io, sparkoperator.k8s.io, monitoring.coreos.com]
  resources: ["*"]
  verbs: ["*"]
"""


def test_a_namespace_admin_is_told_which_rights_an_admin_gives_once(
    project_copy: Any, kube: Kube, operator_crds: None, tmp_path: Path
) -> None:
    p: Project = project_copy()
    ns = kube.namespace("drives", deployer=True)
    p.write(single_node(p.spec(), tmp_path / "lake", ns))
    release = ("release", "--env", "cluster", "--image", p.image, "--no-wait")
    refused = p.mizzen(*release, user="deployer")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    err = refused.stderr
    assert "pre-flight failed, nothing was applied" in err
    assert "Role drives-workflow grants create workflowtaskresults.argoproj.io" in err, err
    assert "aggregate-to-admin" in err
    assert kube.get("configmaps", None, ns, selector="mizzen.io/project=drives")["items"] == []
    kube.kubectl("apply", "-f", "-", stdin=OPERATOR_RIGHTS)
    try:
        deadline = time.monotonic() + 60
        while kube.kubectl(
            "auth", "can-i", "create", "cronworkflows.argoproj.io", "-n", ns,
            user="deployer", check=False,
        ).returncode != 0:  # fmt: skip
            assert time.monotonic() < deadline, "the aggregated rights never reached `admin`"
            time.sleep(1)
        done = p.mizzen(*release, user="deployer")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "revision 1: applied" in done.stdout
        assert kube.get("roles", "drives-workflow", ns) is not None
    finally:
        kube.kubectl("delete", "clusterrole", "mizzen-test-operator-rights", check=False)
