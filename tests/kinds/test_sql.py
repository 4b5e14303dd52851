"""The `sql` kind: a SQL file over the project's volumes, its last query written as Parquet,
with DuckDB (a process here, a Job in a cluster) or Spark SQL (spark-submit here, a
SparkApplication with the runner in a ConfigMap there). Its shared contract is in
test_kinds_contract.py; this file holds what only it does."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from mizzen import spec as spec_mod
from mizzen.errors import SpecError
from mizzen.kinds.sql_runner import split_statements
from mizzen.plan import compile_plan
from mizzen.targets.kubernetes.render import render

MIZZEN = str(Path(sys.executable).parent / "mizzen")
SPEC = {
    "apiVersion": "mizzen.io/v1alpha1",
    "kind": "Project",
    "name": "trips",
    "image": {"repository": "registry.example.com/team/trips"},
    "stores": {"lake": "data/lake"},
    "volumes": {"raw": {"blob": "lake/raw"}, "out": {"blob": "lake/out"}},
    "config": {"MIN_KM": "2"},
    "jobs": {
        "seed": {
            "command": [
                "python",
                "-c",
                'import duckdb, sys; duckdb.sql(f"COPY (SELECT range AS driver_id, range * 1.5 AS km, '
                "DATE '2026-11-01' + (range % 5)::INT AS day FROM range(100)) "
                "TO '{sys.argv[1]}/trips.parquet' (FORMAT PARQUET)\")",
                "${volumes.raw}",
            ]
        },
        "daily": {
            "sql": {
                "file": "sql/daily.sql",
                "output": "${volumes.out}/daily-${run.date}.parquet",
                "parameters": {"days": "3"},
            }
        },
    },
}
DAILY = """\
-- trips per day over the last ${parameters.days} days, of drives of ${config.MIN_KM} km or more
CREATE VIEW trips AS SELECT * FROM read_parquet('${volumes.raw}/trips.parquet');
SELECT day, count(*) AS trips, round(sum(km), 1) AS km
FROM trips WHERE km >= ${config.MIN_KM}
GROUP BY day ORDER BY day DESC LIMIT ${parameters.days}
"""


def make(root: Path, spec: dict[str, Any] = SPEC, sql: str = DAILY) -> Path:
    (root / "sql").mkdir(parents=True, exist_ok=True)
    (root / "sql" / "daily.sql").write_text(sql)
    (root / "mizzen.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    return root


def mizzen(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MIZZEN, *argv], cwd=root, capture_output=True, text=True, timeout=300)


def test_a_sql_file_runs_over_volumes_and_is_recorded(tmp_path: Path) -> None:
    root = make(tmp_path)
    assert mizzen(root, "run", "seed").returncode == 0
    run = mizzen(root, "run", "daily")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "sql: 3 rows with duckdb" in run.stdout
    [written] = (root / "data" / "lake" / "out").glob("daily-*.parquet")  # written back
    import duckdb

    rows = duckdb.sql(f"SELECT * FROM '{written}' ORDER BY day").fetchall()
    assert [r[1] for r in rows] == [20, 20, 20]  # 100 drives over 5 days, the last 3
    assert all(r[2] > 0 for r in rows)
    [record] = json.loads(mizzen(root, "runs", "daily", "-o", "json").stdout)
    shown = json.loads(mizzen(root, "runs", "show", record["id"], "-o", "json").stdout)
    assert shown["metrics"]["rows"] == 3 and shown["params"]["output"].endswith(written.name)


def test_a_failing_query_fails_the_run_with_the_engines_sentence(tmp_path: Path) -> None:
    root = make(tmp_path, sql="SELECT * FROM no_such_table\n")
    run = mizzen(root, "run", "daily")
    assert run.returncode == 1
    assert (
        "sql/daily.sql: Catalog Error: Table with name no_such_table does not exist" in run.stdout
    )
    assert "Traceback" not in run.stdout + run.stderr


def test_validate_reads_the_sql_file(tmp_path: Path) -> None:
    sql = "SELECT * FROM '${volumes.nope}/x'\nWHERE a > ${config.NOPE} AND b = ${parameters.day}\n"
    root = make(tmp_path, sql=sql)
    with pytest.raises(SpecError) as err:
        spec_mod.load(root / "mizzen.yaml")
    lines = [str(p) for p in err.value.problems]
    second = sql.split("\n")[1]
    col = {
        "nope": sql.index("${volumes") + 1,
        "NOPE": second.index("${config") + 1,
        "day": second.index("${parameters") + 1,
    }
    assert any(f"sql/daily.sql:1:{col['nope']}: unknown volume 'nope'" in x for x in lines), lines
    assert any(f"sql/daily.sql:2:{col['NOPE']}: unknown config key 'NOPE'" in x for x in lines)
    assert any(f"sql/daily.sql:2:{col['day']}: unknown parameter 'day'" in x for x in lines)
    assert all("mizzen.yaml:" in line and "jobs.daily.sql.file" in line for line in lines)
    (root / "sql" / "daily.sql").unlink()
    with pytest.raises(SpecError, match=r"sql/daily\.sql is not a file in the project"):
        spec_mod.load(root / "mizzen.yaml")
    (root / "sql" / "daily.sql").write_bytes(b"SELECT '\xe9t\xe9'\n")  # Latin-1, not UTF-8
    with pytest.raises(SpecError, match=r"sql/daily\.sql is not UTF-8 text \(byte 8"):
        spec_mod.load(root / "mizzen.yaml")


def test_sql_jobs_take_parameters_not_args(tmp_path: Path) -> None:
    spec = json.loads(json.dumps(SPEC))
    spec["jobs"]["daily"]["args"] = ["--x"]
    with pytest.raises(SpecError, match=r"a sql job takes `sql\.parameters`, not `args`"):
        spec_mod.load(make(tmp_path, spec) / "mizzen.yaml")


def test_the_volumes_the_sql_file_names_are_mounted(tmp_path: Path) -> None:
    """`raw` appears only inside the SQL file: the job still mounts it."""
    root = make(tmp_path)
    plan = compile_plan(spec_mod.load(root / "mizzen.yaml"), "local")
    assert {m.volume for m in plan.jobs["daily"].process.mounts} == {"raw", "out"}


def test_in_a_cluster_duckdb_is_a_job_and_spark_sql_a_spark_application(tmp_path: Path) -> None:
    spec = json.loads(json.dumps(SPEC))
    spec["stores"] = {"lake": "s3://lake/team"}
    root = make(tmp_path, spec)
    image = "registry.example.com/team/trips:1"
    objects = render(
        compile_plan(spec_mod.load(root / "mizzen.yaml"), "kubernetes", image=image, environ={})
    )
    job = next(o for o in objects if o["kind"] == "Job" and o["metadata"]["name"] == "trips-daily")
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    assert command[:5] == ["mizzen", "exec", "--workload", "daily", "--"]
    assert command[5:8] == ["python", "-m", "mizzen.kinds.sql_runner"]
    assert command[-2:] == ["--param", "days=3"]
    spec["jobs"]["daily"]["sql"]["engine"] = "spark"
    spec["jobs"]["daily"]["sql"]["spark"] = {"image": "registry.example.com/team/spark:3.5.3"}
    (root / "mizzen.yaml").write_text(yaml.safe_dump(spec))
    objects = render(
        compile_plan(spec_mod.load(root / "mizzen.yaml"), "kubernetes", image=image, environ={})
    )
    runner = next(o for o in objects if o["metadata"]["name"] == "trips-sql-runner")
    assert "def run_spark" in runner["data"]["run.py"]  # the Spark image needs no mizzen
    app = next(o for o in objects if o["kind"] == "SparkApplication")["spec"]
    assert app["mainApplicationFile"] == "local:///opt/mizzen-sql/run.py"
    assert app["image"] == "registry.example.com/team/spark:3.5.3"
    assert app["arguments"][:2] == ["--file", "/app/sql/daily.sql"]
    assert {"name": "mizzen-sql", "configMap": {"name": "trips-sql-runner"}} in app["volumes"]
    assert any(m["mountPath"] == "/opt/mizzen-sql" for m in app["driver"]["volumeMounts"])
    # a second such job, both in a pipeline: one runner, each Role's rules once, and
    # `mizzen status` looks for their SparkApplications
    spec["jobs"]["weekly"] = spec["jobs"]["daily"]
    spec["pipelines"] = {"both": {"steps": ["daily", {"job": "weekly", "after": ["daily"]}]}}
    (root / "mizzen.yaml").write_text(yaml.safe_dump(spec))
    plan = compile_plan(spec_mod.load(root / "mizzen.yaml"), "kubernetes", image=image, environ={})
    objects = render(plan)
    named = [(o["kind"], o["metadata"]["name"]) for o in objects]
    assert named.count(("ConfigMap", "trips-sql-runner")) == 1
    assert len(named) == len(set(named))
    for role in (o for o in objects if o["kind"] == "Role"):
        rules = [json.dumps(r, sort_keys=True) for r in role["rules"]]
        assert len(rules) == len(set(rules)), role["metadata"]["name"]
    from mizzen.targets.kubernetes.status import _controller_kinds

    assert ("sparkoperator.k8s.io/v1beta2", "SparkApplication") in _controller_kinds(plan)


def test_statements_split_outside_quotes_and_comments() -> None:
    sql = "CREATE VIEW v AS SELECT ';' AS s; -- a; comment\nSELECT * /* ; */ FROM v;"
    assert split_statements(sql) == ["CREATE VIEW v AS SELECT ';' AS s", "SELECT *  FROM v"]


@pytest.mark.spark
def test_spark_sql_runs_the_same_file_with_spark_submit(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("pyspark") is None:
        pytest.skip("pyspark is not installed")
    spec = json.loads(json.dumps(SPEC))
    spec["jobs"]["daily"]["sql"]["engine"] = "spark"
    spec["jobs"]["daily"]["resources"] = {"memory": "3Gi"}
    sql = DAILY.replace(
        "read_parquet('${volumes.raw}/trips.parquet')", "parquet.`${volumes.raw}/trips.parquet`"
    )
    root = make(tmp_path, spec, sql)
    assert mizzen(root, "run", "seed").returncode == 0
    run = mizzen(root, "run", "daily")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "sql: 3 rows with spark" in run.stdout
    import duckdb

    [written] = (root / "data" / "lake" / "out").glob("daily-*.parquet")
    counts = duckdb.sql(f"SELECT trips FROM read_parquet('{written}/*.parquet')").fetchall()
    assert sorted(c[0] for c in counts) == [20, 20, 20]
