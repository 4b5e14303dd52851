"""Status reasons from recorded pod and event JSON: one plain sentence each."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fake_cluster import FakeCluster

from mizzen import spec as spec_mod
from mizzen.plan import compile_plan
from mizzen.plan.model import Plan
from mizzen.targets.kubernetes import status
from mizzen.targets.kubernetes.release import applied_set
from mizzen.targets.kubernetes.render import render

FIXTURES = Path(__file__).parent / "fixtures" / "status"
DESIGN = Path(__file__).parent / "specs" / "design" / "mizzen.yaml"


def load(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.json").read_text())


@pytest.mark.parametrize("name", sorted(p.stem for p in FIXTURES.glob("*.json")))
def test_reason_sentence(name: str) -> None:
    data = load(name)
    now = status.ts(data["now"])
    assert now is not None

    def logs(pod: str, container: str) -> list[str]:
        return data["logs"].get(f"{pod}/{container}", [])

    reasons = [status.pod_reason(pod, data["events"], now, logs) for pod in data["pods"]]
    assert reasons[0] == data["expect"]


def test_failed_job_conditions() -> None:
    job = {
        "spec": {"backoffLimit": 2},
        "status": {
            "conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded"}]
        },
    }
    assert status.job_reason(job) == "failed 3 times (every retry used)"
    job["status"]["conditions"][0]["reason"] = "DeadlineExceeded"
    assert status.job_reason(job) == "stopped: it ran past its timeout"


def test_collect_builds_one_row_per_workload() -> None:
    plan = compile_plan(
        spec_mod.load(DESIGN, "dev"),
        "kubernetes",
        image="r.example.com/d@sha256:" + "1" * 64,
        environ={},
    )
    cluster = FakeCluster("drives-dev")
    for obj in applied_set(render(plan), [], 1):
        obj["metadata"]["creationTimestamp"] = "2026-11-23T09:30:00Z"
        if obj["kind"] == "Deployment":
            obj["status"] = {"readyReplicas": obj["spec"].get("replicas", 1)}
        cluster.put(obj)
    crash = load("crash_loop")
    for pod in crash["pods"]:
        pod["metadata"]["namespace"] = "drives-dev"
        cluster.put(pod)
    cluster.logs = {k.split("/")[0]: v for k, v in crash["logs"].items()}
    for event in crash["events"]:
        event["metadata"]["namespace"] = "drives-dev"
        cluster.put(event)
    rows = {r.workload: r for r in status.collect(cluster, plan, status.ts(crash["now"]) or 0)}
    assert set(rows) == {
        "features",
        "train",
        "report",
        "nightly",
        "classifier",
        "ingest",
        "dashboard",
    }
    assert rows["ingest"].phase == "Available 1/1" and rows["ingest"].restarts == 7
    assert rows["ingest"].reason.startswith(
        "keeps crashing (exit code 1, restarted 7 times); last log lines:"
    )
    assert rows["nightly"].phase == "Scheduled" and rows["nightly"].kind == "pipeline"
    assert rows["train"].phase == "Not released" and rows["train"].kind == "training job"
    assert rows["classifier"].age == 3600


def test_a_mount_failure_names_the_spec_volume_and_ignores_events_older_than_the_pod() -> None:
    plan = compile_plan(spec_mod.load(DESIGN, "dev"), "kubernetes", environ={})
    names = status_volumes(plan)
    pv = next(n for n, v in names.items() if v == "raw" and n.startswith("drives-dev-"))
    data = load("failed_mount")
    pod, (event,) = data["pods"][0], data["events"]
    now = status.ts(data["now"])
    assert now is not None
    by_pv = {**event, "message": f'MountVolume.SetUp failed for volume "{pv}" : Access Denied'}
    assert status.pod_reason(pod, [by_pv], now, volumes=names) == (
        "cannot mount the volume raw: Access Denied"
    )
    # a FailedMount from before this pod was created is an earlier pod's history
    old = {**by_pv, "lastTimestamp": "2026-11-23T10:20:00Z"}
    assert "cannot mount" not in (status.pod_reason(pod, [old], now, volumes=names) or "")


def status_volumes(plan: Plan) -> dict[str, str]:
    from mizzen.targets.kubernetes.volumes import kubelet_names

    return kubelet_names(plan, "drives-dev")
