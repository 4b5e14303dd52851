"""Signals in a cluster: CronJobs of the computation, the exporter (Deployment, Service,
ServiceMonitor) and the PrometheusRule, valid against the Kubernetes schemas and the CRDs;
the rules, run by Prometheus' own rule engine (promtool) over the series the exporter serves,
fire exactly when mizzen's own judgement does."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
import yaml

from mizzen import spec as spec_mod
from mizzen.datasets.model import DatasetSpec
from mizzen.datasets.table import DatasetTable
from mizzen.plan import compile_plan
from mizzen.signals import exporter, report
from mizzen.signals.compute import Where, compute
from mizzen.storage import open_store
from mizzen.targets.kubernetes.render import render

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "kubernetes"))
from k8s_schemas import validate

PROMTOOL = Path(__file__).resolve().parents[2] / ".tools" / "promtool"
IMAGE = "registry.example.com/team/sig@sha256:" + "0" * 64
T0 = dt.datetime(2025, 4, 1, tzinfo=dt.UTC)
SPEC = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: sig
image: {repository: registry.example.com/team/sig}
stores: {lake: s3://lake/sig}
store: lake
kubernetes: {namespace: sig}
secrets: {hooks: [url]}
datasets:
  drives:
    location: lake/tables/drives
    schema: {started_at: timestamp, predicted: string, corrected: string, vehicle: string, variant: string}
signals:
  accuracy:
    dataset: drives
    time: started_at
    mean: "coalesce(corrected, predicted) = predicted"
    dimensions: [vehicle]
    alerts:
      - {below: 0.8, webhook: "${secrets.hooks.url}"}
      - {change: {trailing: 7, percent: 15, direction: down}}
      - {anomaly: {trailing: 10, k: 4}}
      - {name: van-floor, below: 0.7, dimension: vehicle}
  share:
    dataset: drives
    time: started_at
    ratio: {numerator: "predicted = 'business'", denominator: 1}
    arm: variant
    alerts: [{above: 0.9}, {change: {trailing: 5, percent: 50}}]
  spark-share:
    dataset: drives
    time: started_at
    count: "predicted = 'business'"
    engine: spark
    spark: {executors: {instances: 1}, image: registry.example.com/team/sig-spark:1}
"""


@pytest.fixture
def plan(tmp_path: Path) -> Any:
    (tmp_path / "mizzen.yaml").write_text(SPEC)
    return compile_plan(
        spec_mod.load(tmp_path / "mizzen.yaml"), "kubernetes", image=IMAGE, environ={}
    )


def test_the_cluster_objects_are_valid_and_complete(plan: Any) -> None:
    objects = render(plan)
    assert [p for o in objects for p in validate(o)] == []
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert {
        ("CronJob", "sig-mizzen-signal-accuracy"),
        ("CronJob", "sig-mizzen-signal-share"),
    } <= kinds
    assert ("ScheduledSparkApplication", "sig-mizzen-signal-spark-share") in kinds
    assert ("ConfigMap", "sig-signals-runner") in kinds  # the runner, for the Spark driver
    assert {("Deployment", "sig-mizzen-signals"), ("Service", "sig-mizzen-signals")} <= kinds
    assert {("ServiceMonitor", "sig-mizzen-signals"), ("PrometheusRule", "sig-alerts")} <= kinds
    cron = next(o for o in objects if o["metadata"]["name"] == "sig-mizzen-signal-accuracy")
    assert cron["spec"]["schedule"] == "30 0 * * *"
    pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    command = pod["containers"][0]["command"] + pod["containers"][0].get("args", [])
    assert "mizzen.signals.runner" in command
    env = {e["name"] for e in pod["containers"][0]["env"]}
    assert {"MIZZEN_DATASETS", "MIZZEN_STORE", "MIZZEN_SECRET_HOOKS_URL"} <= env
    monitor = next(o for o in objects if o["kind"] == "ServiceMonitor")
    service = next(o for o in objects if o["kind"] == "Service")
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    assert service["spec"]["ports"][0]["name"] == monitor["spec"]["endpoints"][0]["port"]
    rule = next(o for o in objects if o["kind"] == "PrometheusRule")
    names = [r["labels"]["mizzen_alert"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert names == ["below-0.8", "change-7", "anomaly-10", "van-floor", "above-0.9", "change-5"]


def test_a_backfill_on_kubernetes_is_a_one_off_job_for_that_range(plan: Any) -> None:
    from mizzen.signals.builtin import with_params
    from mizzen.targets.kubernetes.target import one_off

    ranged = with_params(plan, "mizzen-signal-accuracy", {"from": "2025-04-01", "to": "2025-04-07"})
    job = one_off(ranged, "mizzen-signal-accuracy", "20250408-000000-abcd")
    assert validate(job) == []
    container = job["spec"]["template"]["spec"]["containers"][0]
    argv = container["command"] + container.get("args", [])
    assert "from=2025-04-01" in argv and "to=2025-04-07" in argv
    assert job["kind"] == "Job" and "schedule" not in job["spec"]
    spark = one_off(
        with_params(plan, "mizzen-signal-spark-share", {"from": "2025-04-01", "to": "2025-04-02"}),
        "mizzen-signal-spark-share",
        "r2",
    )
    assert spark["kind"] == "SparkApplication" and "to=2025-04-02" in spark["spec"]["arguments"]
    assert validate(spark) == []


def test_no_alerts_no_exporter(tmp_path: Path) -> None:
    text = (
        SPEC.split("signals:")[0]
        + "signals:\n  n:\n    dataset: drives\n    time: started_at\n    count: '*'\n"
    )
    (tmp_path / "mizzen.yaml").write_text(text)
    plan = compile_plan(
        spec_mod.load(tmp_path / "mizzen.yaml"), "kubernetes", image=IMAGE, environ={}
    )
    kinds = {o["kind"] for o in render(plan)}
    assert "CronJob" in kinds and not kinds & {"ServiceMonitor", "PrometheusRule", "Deployment"}


def _data(lake: Any, days: int = 14) -> DatasetTable:
    """14 days: accuracy steady near 0.92, then 0.725 on the last day (vans 0.5); the
    business share steady at 0.40."""
    spec = DatasetSpec.model_validate(
        {
            "location": "lake/tables/drives",
            "schema": {
                "started_at": "timestamp",
                "predicted": "string",
                "corrected": "string",
                "vehicle": "string",
                "variant": "string",
            },
        }
    )
    table = DatasetTable.open("drives", spec, lake)
    rng = np.random.default_rng(5)
    for day in range(days):
        n = 200
        right = np.zeros(n, bool)
        share = 0.92 + rng.uniform(-0.01, 0.01)
        right[: round(share * n)] = True
        vehicle = np.array(["van" if i % 4 == 0 else "car" for i in range(n)])
        if day == 13:
            right = np.array(
                [(i % 4 != 0 and i % 5 != 0) or (i % 4 == 0 and i % 8 == 0) for i in range(n)]
            )
        predicted = np.array(["business" if i % 5 < 2 else "personal" for i in range(n)])
        corrected = [
            None if r else ("personal" if p == "business" else "business")
            for r, p in zip(right, predicted, strict=True)
        ]
        table.write(
            pa.table(
                {
                    "started_at": pa.array(
                        [T0 + dt.timedelta(days=day, minutes=5 * i) for i in range(n)],
                        pa.timestamp("us", tz="UTC"),
                    ),
                    "predicted": predicted,
                    "corrected": pa.array(corrected, pa.string()),
                    "vehicle": vehicle,
                    "variant": ["A" if i % 2 else "B" for i in range(n)],
                }
            )
        )
    return table


def test_no_trailing_series_before_mizzen_has_the_history_to_judge(
    plan: Any, tmp_path: Path
) -> None:
    lake = open_store((tmp_path / "lake").as_uri())
    table = _data(lake, days=2)  # two complete buckets: one before the latest
    project = lake.child("project")
    signals = report.definitions(plan)
    compute(signals["accuracy"], Where(table, project))
    now = T0 + dt.timedelta(days=2, hours=1)
    text = exporter.render("sig", [signals["accuracy"]], project, now)
    assert "mizzen_signal_value{" in text
    assert not [line for line in text.splitlines() if line.startswith("mizzen_signal_trailing_")]
    firing = [line for line in text.splitlines() if line.startswith("mizzen_signal_alert_firing{")]
    assert firing and not [
        line for line in firing if 'alert="change' in line and line.endswith(" 1.0")
    ]


def _series(text: str) -> list[dict[str, str]]:
    """The exporter's samples as promtool input series, with the labels a scrape adds."""
    out = []
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        name_labels, value = line.rsplit(" ", 1)
        series = (
            name_labels[:-1]
            + ',namespace="sig",pod="sig-mizzen-signals-1",job="sig-mizzen-signals"}'
        )
        out.append({"series": series, "values": f"{float(value)!r}x30"})
    return out


@pytest.mark.skipif(
    not PROMTOOL.exists() and os.environ.get("CI") != "true",
    reason="no .tools/promtool (scripts/setup.sh test)",
)
def test_prometheus_fires_the_rules_mizzen_fires(plan: Any, tmp_path: Path) -> None:
    lake = open_store((tmp_path / "lake").as_uri())
    table = _data(lake)
    project = lake.child("project")
    signals = report.definitions(plan)
    for name in ("accuracy", "share"):
        compute(signals[name], Where(table, project))
    now = T0 + dt.timedelta(days=14, hours=1)
    text = exporter.render("sig", [signals["accuracy"], signals["share"]], project, now)
    verdicts = {
        (
            line.split('alert="')[1].split('"')[0],
            line.split('segment="')[1].split('"')[0],
        ): line.endswith(" 1.0")
        for line in text.splitlines()
        if line.startswith("mizzen_signal_alert_firing{")
    }
    # what mizzen itself says: accuracy fell (below 0.8, -15% and more, an anomaly), vans below 0.7
    assert verdicts == {
        ("below-0.8", ""): True,
        ("change-7", ""): True,
        ("anomaly-10", ""): True,
        ("van-floor", "car"): False,
        ("van-floor", "van"): True,
        ("above-0.9", ""): False,
        ("change-5", ""): False,
    }
    rule = next(o for o in render(plan) if o["kind"] == "PrometheusRule")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule["spec"]))
    check = subprocess.run(
        [str(PROMTOOL), "check", "rules", str(tmp_path / "rules.yaml")],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    rules = [r for g in rule["spec"]["groups"] for r in g["rules"]]
    expr_tests = []
    for r in rules:
        fired = sum(v for (a, _), v in verdicts.items() if a == r["labels"]["mizzen_alert"])
        expr_tests.append(
            {
                "expr": f"count({r['expr']}) or vector(0)",
                "eval_time": "10m",
                "exp_samples": [{"labels": "{}", "value": fired}],
            }
        )

    def fired(alert: str, dimension: str, segment: str, value: str) -> dict[str, Any]:
        r = next(r for r in rules if r["labels"]["mizzen_alert"] == alert)
        where = f" ({dimension}={segment})" if dimension else ""
        return {
            # Prometheus keeps no empty label: dimension="" is no label at all
            "exp_labels": {
                **r["labels"],
                "project": "sig",
                "signal": "accuracy",
                **({"dimension": dimension, "segment": segment} if dimension else {}),
            },
            "exp_annotations": {
                "summary": f"signal accuracy{where} is below {alert.split('-')[-1] if alert != 'van-floor' else '0.7'}",
                "description": f"Signal accuracy of mizzen project sig{where}: the latest complete bucket's value is {value} (`mizzen signals show accuracy`).",
            },
        }

    unit = {
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": _series(text),
                "promql_expr_test": expr_tests,
                "alert_rule_test": [
                    {
                        "eval_time": "10m",
                        "alertname": "MizzenSignalThreshold",
                        "exp_alerts": [
                            fired("below-0.8", "", "", "0.725"),
                            fired("van-floor", "vehicle", "van", "0.5"),
                        ],
                    }
                ],
            }
        ],
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump(unit))
    out = subprocess.run(
        [str(PROMTOOL), "test", "rules", str(tmp_path / "test.yaml")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout + out.stderr
