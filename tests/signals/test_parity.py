"""The same values on both targets: the command and environment the rendered CronJob gives
its pod (secrets and config resolved as Kubernetes would), run here against a real S3 server
(SeaweedFS), store the same values as `mizzen signals compute` on the local target. The real
cluster run is in the lead's cluster tier; this pins what the pod is told."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from tests.signals.conftest import DRIVES, ingest

from mizzen import spec as spec_mod
from mizzen.datasets.model import DatasetSpec
from mizzen.datasets.table import DatasetTable
from mizzen.plan import compile_plan
from mizzen.signals import values
from mizzen.storage import open_store
from mizzen.targets.kubernetes.render import render

pytestmark = pytest.mark.s3
BIN = Path(sys.executable).parent
SPEC = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: parity
image: {{repository: registry.example.com/team/parity}}
stores:
  lake: {{url: "{url}", options: {{endpoint_url: "{endpoint}"}}, secret: lake}}
store: lake
secrets: {{lake: [access_key_id, secret_access_key]}}
config: {{TEAM: quality}}
datasets:
  drives:
    location: lake/tables/drives
    schema: {schema}
signals:
  business-share:
    dataset: drives
    time: started_at
    timeZone: Europe/Paris
    ratio: {{numerator: "predicted = 'business' AND confidence >= 0.9"}}
    dimensions: [vehicle]
    arm: variant
environments:
  real: {{}}
"""


def test_the_cronjobs_pod_computes_the_values_the_local_target_computes(
    seaweedfs: Any, tmp_path: Path
) -> None:
    import json

    url = seaweedfs.new_bucket() + "/parity"
    schema = json.dumps(DRIVES["schema"])
    (tmp_path / "mizzen.yaml").write_text(
        SPEC.format(url=url, endpoint=seaweedfs.endpoint, schema=schema)
    )
    secrets = {"access_key_id": seaweedfs.access_key, "secret_access_key": seaweedfs.secret_key}
    lake = open_store(url, **seaweedfs.options)
    ingest(DatasetTable.open("drives", DatasetSpec.model_validate(DRIVES), lake), range(4))
    project = lake.child("mizzen/parity")
    environ = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}",
        "MIZZEN_SECRET_LAKE_ACCESS_KEY_ID": secrets["access_key_id"],
        "MIZZEN_SECRET_LAKE_SECRET_ACCESS_KEY": secrets["secret_access_key"],
    }
    for key in [k for k in environ if k.startswith("MIZZEN_") and "SECRET" not in k]:
        environ.pop(key)

    local = subprocess.run(
        [str(BIN / "mizzen"), "signals", "compute", "business-share", "--env", "real"],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert local.returncode == 0, local.stdout + local.stderr
    here = _values(project)
    shutil.rmtree(tmp_path / ".mizzen", ignore_errors=True)
    project.delete_prefix("signals")
    assert values.table(project).version() is None

    plan = compile_plan(
        spec_mod.load(tmp_path / "mizzen.yaml", "real"),
        "kubernetes",
        image="registry.example.com/team/parity@sha256:" + "0" * 64,
        environ={},
    )
    cron = next(
        o
        for o in render(plan)
        if o["kind"] == "CronJob" and o["metadata"]["name"] == "parity-mizzen-signal-business-share"
    )
    container = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    pod_env = {"PATH": environ["PATH"], "HOME": str(tmp_path)}
    for var in container["env"]:
        ref = var.get("valueFrom", {})
        if "secretKeyRef" in ref:
            pod_env[var["name"]] = secrets[ref["secretKeyRef"]["key"]]
        elif "configMapKeyRef" in ref:
            pod_env[var["name"]] = plan.config[ref["configMapKeyRef"]["key"]]
        else:
            pod_env[var["name"]] = var["value"]
    argv = container["command"] + container.get("args", [])
    assert argv[:4] == ["mizzen", "exec", "--workload", "mizzen-signal-business-share"]
    pod = subprocess.run(
        argv, cwd=tmp_path, env=pod_env, capture_output=True, text=True, timeout=300
    )
    assert pod.returncode == 0, pod.stdout + pod.stderr
    there = _values(project)
    assert there == here and len({k[0] for k in here}) == 5  # 4 UTC days are 5 Paris days
    runs = [
        k for k in project.list("runs/mizzen-signal-business-share") if k.key.endswith("run.json")
    ]
    assert len(runs) == 2  # both recorded in the project store: the local run and the pod's


def _values(project: Any) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    rows = values.read(values.table(project), "business-share").to_pylist()
    return {
        (r["bucket"], r["dimension"], r["segment"], r["arm"]): (
            r["n"],
            r["value"],
            r["sum_x"],
            r["source_version"],
            r["definition"],
        )
        for r in rows
    }
