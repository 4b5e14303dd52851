from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
import yaml

from mizzen.notify.prometheus import cron_period, prometheus_rule

CRD = (
    Path(__file__).resolve().parents[3]
    / "shared"
    / "crds"
    / "monitoring.coreos.com_prometheusrules.yaml"
)


@pytest.fixture(scope="module")
def schema() -> dict:
    if not CRD.exists():
        pytest.skip(f"{CRD} is not there")
    crd = yaml.safe_load(CRD.read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1"]
    return _strict(version["schema"]["openAPIV3Schema"])


def _strict(node: object) -> object:
    """Refuse unknown fields, as the API server does for a structural schema."""
    if isinstance(node, dict):
        if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
            node.setdefault("additionalProperties", False)
        for value in node.values():
            _strict(value)
    elif isinstance(node, list):
        for value in node:
            _strict(value)
    return node


def validate(rule: dict, schema: dict) -> None:
    jsonschema.Draft7Validator(schema).validate(rule)  # Go regexes in the CRD: no metaschema check


def test_failed_and_late_rules_validate_against_the_crd(make_plan, schema):
    plan = make_plan(
        "  - on: [failed, late]\n    lateAfter: 2h\n    webhook: http://127.0.0.1:9/x\n"
    )
    rule = prometheus_rule(plan)
    assert rule is not None
    validate(rule, schema)
    (group,) = rule["spec"]["groups"]
    failed, late = group["rules"]
    assert failed["alert"] == "MizzenJobFailed"
    assert (
        failed["expr"]
        == 'kube_job_failed{condition="true",job_name=~"(demo-nightly|demo-train)(-[0-9][-0-9a-z]*)?"} == 1'
    )
    assert late["labels"]["mizzen_workload"] == "nightly"
    assert (
        "kube_cronjob_next_schedule_time" in late["expr"]
        and "kube_cronjob_status_last_successful_time" in late["expr"]
    )
    assert 'cronjob="demo-nightly"' in late["expr"]
    assert "> 7200" in late["expr"] and "- 86400)" in late["expr"]


def test_no_rule_without_failed_or_late_alerts(make_plan):
    assert (
        prometheus_rule(
            make_plan("  - on: [slow]\n    slowerThan: 1h\n    webhook: http://127.0.0.1:9/x\n")
        )
        is None
    )


def test_rules_follow_job_globs(make_plan, schema):
    plan = make_plan("  - on: [failed]\n    jobs: [train]\n    webhook: http://127.0.0.1:9/x\n")
    rule = prometheus_rule(plan)
    assert rule is not None
    validate(rule, schema)
    assert '"(demo-train)(-' in rule["spec"]["groups"][0]["rules"][0]["expr"]


def test_cron_period_takes_the_longest_gap(make_plan):
    from mizzen.plan.model import Schedule

    assert cron_period(Schedule("*/15 * * * *")) == 900
    assert cron_period(Schedule("0 3 * * 1-5")) == 3 * 86400
