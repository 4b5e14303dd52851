"""Spark jobs locally: spark-submit sized to this machine, a clear error for what is missing,
and a real job over parquet in a store (marker `spark`)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from mizzen import spec
from mizzen.errors import MissingExtraError, UsageError
from mizzen.kinds import launches
from mizzen.plan import compile_plan
from mizzen.plan.model import Job
from mizzen.targets.local import spark

VENV_BIN = str(Path(sys.executable).parent)
SPEC = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: sparky
stores:
  lake: data/lake
volumes:
  raw: {blob: lake/raw, readOnly: true}
  agg: {blob: lake/agg}
config:
  MIN_TRIPS: "2"
jobs:
  agg:
    spark:
      mainFile: agg.py
      executors: {instances: 4, cores: 2, memory: 512Mi}
      driver: {memory: 512Mi}
      conf: {spark.sql.session.timeZone: UTC}
    args: ["${volumes.raw}", "${volumes.agg}/by_driver"]
"""
AGG = """\
import os, sys
from pyspark.sql import SparkSession, functions as F

spark = SparkSession.builder.getOrCreate()
source, target = sys.argv[1], sys.argv[2]
assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
trips = spark.read.parquet(source)
out = trips.groupBy("driver").agg(F.count("*").alias("trips"), F.sum("km").alias("km"))
out = out.where(F.col("trips") >= int(os.environ["MIN_TRIPS"]))
out.write.mode("overwrite").parquet(target)
print("aggregated", out.count(), "drivers", flush=True)
spark.stop()
"""


def job_of(root: Path, name: str = "agg") -> Job:
    return compile_plan(spec.load(root / "mizzen.yaml")).jobs[name]


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    (tmp_path / "mizzen.yaml").write_text(SPEC)
    (tmp_path / "agg.py").write_text(AGG)
    return tmp_path


def test_executors_map_onto_this_machine(root: Path) -> None:
    plan = job_of(root).spec
    assert plan is not None
    size = spark.size_for(plan, cpus=2, ram_mib=16384)
    assert (size.threads, size.heap_mib) == (2, 512 + 4 * 512)
    big = spark.size_for(plan, cpus=64, ram_mib=2048)
    assert (big.threads, big.heap_mib) == (8, 1024)  # 4 x 2 cores; heap capped at half the RAM
    assert "local[2]" in size.summary(plan) and "capped" in size.summary(plan)


def test_spark_submit_command_line(root: Path) -> None:
    job = job_of(root)
    size = spark.size_for(job.spec, cpus=2, ram_mib=16384)
    argv = spark.spark_submit_argv(
        job, ["in", "out"], root / "run", home=Path("/opt/spark"), size=size
    )
    assert argv[:3] == ["/opt/spark/bin/spark-submit", "--master", "local[2]"]
    assert argv[-3:] == ["agg.py", "in", "out"]
    joined = " ".join(argv)
    for conf in (
        "spark.ui.enabled=false",
        "spark.ui.showConsoleProgress=false",
        "spark.sql.session.timeZone=UTC",
    ):
        assert f"--conf {conf}" in joined
    assert "--driver-memory 2560m" in joined
    log_config = (root / "run" / "spark" / "log4j2.properties").read_text()
    assert "rootLogger.level = WARN" in log_config


def test_missing_pyspark_names_the_extra(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyspark" else real(name, *a)
    )
    with pytest.raises(MissingExtraError) as info:
        launches(job_of(root), [], {}, root / "run")
    assert "mizzen[spark]" in str(info.value) and "pyspark" in str(info.value)


def test_missing_java_says_what_to_install(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setenv("PATH", str(root))
    with pytest.raises(UsageError) as info:
        spark.java(job_of(root))
    assert "needs Java" in str(info.value) and "JAVA_HOME" in str(info.value)


def _need_spark() -> None:
    import importlib.util
    import shutil

    missing = [
        what
        for what, ok in (
            ("pyspark", importlib.util.find_spec("pyspark")),
            ("java", shutil.which("java")),
        )
        if not ok
    ]
    if missing:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{', '.join(missing)} required in CI (bash scripts/setup.sh test)")
        pytest.skip(f"{', '.join(missing)} not installed")


@pytest.mark.spark
def test_a_spark_job_over_parquet_in_the_store(root: Path) -> None:
    _need_spark()
    import pyarrow as pa
    import pyarrow.parquet as pq

    raw = root / "data" / "lake" / "raw"
    raw.mkdir(parents=True)
    pq.write_table(
        pa.table(
            {
                "driver": ["ann", "ann", "bob", "cy", "cy", "cy"],
                "km": [1.0, 2.0, 5.0, 1.5, 1.5, 1.0],
            }
        ),
        raw / "part-0.parquet",
    )
    env = {
        **os.environ,
        "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
        "NO_COLOR": "1",
    }
    result = subprocess.run(
        [sys.executable, "-m", "mizzen.cli.main", "run", "agg"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=280,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "spark: local[" in out and "aggregated 2 drivers" in out
    assert " INFO " not in out  # Spark's own logging condensed to warnings
    table = pq.read_table(root / "data" / "lake" / "agg" / "by_driver").to_pydict()
    assert dict(zip(table["driver"], table["km"], strict=True)) == {"ann": 3.0, "cy": 4.0}


def test_a_different_local_spark_version_is_said_not_hidden(root: Path) -> None:
    plan = job_of(root).spec
    assert plan is not None
    same = plan.spark_version.rsplit(".", 1)[0] + ".9"
    assert spark.version_note(plan, same) == ""
    note = spark.version_note(plan, "9.0.0")
    assert f"sparkVersion {plan.spark_version} (the cluster) but pyspark 9.0.0 runs here" in note
