"""The drives demo: `examples/drives/demo.sh` end to end on a small data set, the spec's
Kubernetes render validated, and the DuckDB and Spark feature jobs agreeing."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mizzen import spec
from mizzen.plan import compile_plan

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "drives"
VENV_BIN = str(Path(sys.executable).parent)


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    root = tmp_path / "drives"
    shutil.copytree(EXAMPLE, root, ignore=shutil.ignore_patterns(".mizzen", "__pycache__"))
    return root


def environ(**extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
        "NO_COLOR": "1",
        **extra,
    }


def mizzen(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "mizzen.cli.main", *args],
        cwd=root,
        env=environ(),
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_demo_runs_end_to_end(project: Path) -> None:
    result = subprocess.run(
        ["bash", str(project / "demo.sh")],
        env=environ(ROWS="3000", DEMO_ENGINE="duckdb", MIZZEN_BIN=VENV_BIN),
        capture_output=True,
        text=True,
        timeout=280,
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    for step in ("generate", "features", "train", "evaluate", "report"):
        assert f"{step}: ok" in out
    # one driver's erasure: counted, erased from both datasets, nothing left after
    erased = next(line for line in out.splitlines() if line.startswith("erased "))
    assert "from 2 dataset(s)" in erased and not erased.startswith("erased 0 ")
    assert "total: 0 rows to remove in 0 of 3 dataset(s)" in out  # classifications: none yet
    assert "drive-classifier@1  trained on features@0: held the subject" in out
    assert "POST /predict -> drive-classifier v1" in out
    # the signals block: computed, then recomputed from the new days' files only
    assert "signal business-share: " in out and "(first run)" in out
    assert "(incremental: new version 1, 1d of late data)" in out
    assert "arms (variant, over all" in out and "VS CONTROL" in out
    assert "label-accuracy" in mizzen(project, "signals", "list").stdout
    assert out.count("(p(business) = ") == 4 and "business (p" in out and "personal (p" in out
    report = next(line.split(": ", 1)[1] for line in out.splitlines() if "report notebook:" in line)
    import nbformat

    nb = nbformat.read(report, as_version=4)
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) >= 3  # the report's plots are in the kept notebook
    assert "accuracy" in mizzen(project, "runs", "drives", "-o", "json").stdout
    assert "drive-classifier" in mizzen(project, "models").stdout


@pytest.mark.parametrize("env", [None, "prod"])  # `spark` is this machine only
def test_demo_renders_valid_kubernetes_objects(env: str | None) -> None:
    from mizzen.targets.kubernetes.render import render

    schemas = _k8s_schemas()
    plan = compile_plan(
        spec.load(EXAMPLE / "mizzen.yaml", env),
        "kubernetes",
        image="registry.example.com/analytics/drives:demo",
    )
    objects = json.loads(json.dumps(render(plan)))
    kinds = {o["kind"] for o in objects}
    assert {"Job", "Deployment", "Service", "CronWorkflow"} <= kinds
    assert {"CronJob", "PrometheusRule", "ServiceMonitor"} <= kinds  # the signals block
    assert ("SparkApplication" in kinds) == (env == "prod")
    problems = [
        f"{o['kind']}/{o['metadata']['name']}: {p}" for o in objects for p in schemas.validate(o)
    ]
    assert problems == []


@pytest.mark.spark
def test_duckdb_and_spark_features_agree(project: Path) -> None:
    import shutil as sh

    if importlib.util.find_spec("pyspark") is None or sh.which("java") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("pyspark and java are required in CI (bash scripts/setup.sh test)")
        pytest.skip("pyspark or java not installed")
    import pandas as pd
    from deltalake import DeltaTable

    mizzen(project, "run", "generate", "--set", "ROWS=2000")
    features = str(project / ".mizzen" / "stores" / "lake" / "tables" / "features")
    mizzen(project, "run", "features")
    mizzen(project, "run", "features", "--env", "spark")

    def version(v: int) -> pd.DataFrame:
        frame = DeltaTable(features, version=v).to_pandas()
        return frame.sort_values("drive_id").reset_index(drop=True)

    duck, spark = version(0), version(1)  # each run replaced the rows: two versions
    assert len(duck) == len(spark) == 2000
    assert DeltaTable(features).to_pyarrow_table().num_rows == 2000
    pd.testing.assert_frame_equal(duck, spark[duck.columns], check_dtype=False, atol=1e-9)


def _k8s_schemas() -> Any:
    path = Path(__file__).resolve().parent / "kubernetes" / "k8s_schemas.py"
    loaded = importlib.util.spec_from_file_location("k8s_schemas_for_demo", path)
    assert loaded is not None and loaded.loader is not None
    module = importlib.util.module_from_spec(loaded)
    loaded.loader.exec_module(module)
    return module
