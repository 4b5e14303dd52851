"""A Spark job's driver on Kubernetes runs its program through `mizzen-spark-driver`: proved
with real Spark here (no Spark operator in the test cluster). The test starts spark-submit as
the operator would, with the SparkApplication's `sparkConf` and the driver's environment
from `mizzen render`: the program's run is recorded and its dataset output committed once it
succeeded, and a program that fails commits nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from tests.targets.local.test_launch_spark import _need_spark

pytestmark = pytest.mark.spark
VENV_BIN = Path(sys.executable).parent
SPEC = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: sparkds
image: {{repository: example.com/sparkds}}
stores: {{lake: "file://{lake}"}}
store: lake
datasets:
  totals:
    location: lake/tables/totals
    schema:
      driver: {{type: string, nullable: false}}
      km: double
    subject: driver
jobs:
  agg:
    spark:
      mainFile: agg.py
      executors: {{instances: 1, cores: 1, memory: 512Mi}}
      driver: {{memory: 512Mi}}
    outputs: [totals]
"""
AGG = """\
import sys
from pyspark.sql import SparkSession
import mizzen

spark = SparkSession.builder.getOrCreate()
rows = [("ann", 3.0), ("bob", 5.0)]
path = mizzen.dataset("totals").output_path(mode="overwrite")
spark.createDataFrame(rows, "driver string, km double").write.mode("overwrite").parquet(path)
print("staged", len(rows), "totals", flush=True)
spark.stop()
if len(sys.argv) > 1:
    raise SystemExit(4)
"""


def application(root: Path) -> dict[str, Any]:
    rendered = subprocess.run(
        [str(VENV_BIN / "mizzen"), "render", "--image", "x/y:1"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "SparkApplication")


def submit(root: Path, app: dict[str, Any], *args: str) -> subprocess.CompletedProcess[str]:
    """spark-submit as the operator starts it, on this machine: the application's conf, the
    driver's environment (its literal values: this spec has no secrets)."""
    import pyspark

    home = Path(pyspark.__file__).parent
    conf = [f"--conf={k}={v}" for k, v in app["spec"].get("sparkConf", {}).items()]
    driver_env = {e["name"]: e["value"] for e in app["spec"]["driver"]["env"] if "value" in e}
    env = {
        **os.environ,
        **driver_env,
        "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "PYSPARK_PYTHON": sys.executable,
    }
    env.pop("PYSPARK_DRIVER_PYTHON", None)
    argv = [str(home / "bin" / "spark-submit"), "--master", "local[1]", *conf, "agg.py", *args]
    return subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=280)


def test_the_driver_records_its_run_and_commits_its_outputs(tmp_path: Path) -> None:
    _need_spark()
    from deltalake import DeltaTable

    lake = tmp_path / "lake"
    (tmp_path / "mizzen.yaml").write_text(SPEC.format(lake=lake))
    (tmp_path / "agg.py").write_text(AGG)
    app = application(tmp_path)
    assert app["spec"]["sparkConf"]["spark.pyspark.driver.python"] == "mizzen-spark-driver"
    names = {e["name"] for e in app["spec"]["driver"]["env"]}
    assert {"MIZZEN_DATASETS", "MIZZEN_WORKLOAD", "MIZZEN_SPEC_DIGEST"} <= names

    failed = submit(tmp_path, app, "fail")
    assert failed.returncode != 0
    assert not (lake / "tables" / "totals" / "_delta_log").exists()  # nothing committed

    done = submit(tmp_path, app)
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "staged 2 totals" in out and "dataset totals: version 0 (2 rows)" in out
    table = DeltaTable(str(lake / "tables" / "totals")).to_pyarrow_table().to_pydict()
    assert dict(zip(table["driver"], table["km"], strict=True)) == {"ann": 3.0, "bob": 5.0}

    runs = subprocess.run(
        [str(VENV_BIN / "mizzen"), "runs", "agg", "-o", "json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    records = json.loads(runs.stdout)
    assert sorted(r["status"] for r in records) == ["failed", "succeeded"]
    assert {r["target"] for r in records} == {"kubernetes"}
