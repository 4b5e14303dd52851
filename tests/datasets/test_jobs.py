"""Datasets in jobs: `inputs`/`outputs` in the spec, `mizzen.dataset(name)` in job code, the
outputs checked against their schema and committed only once the job succeeded, lineage of
runs and of the models they publish."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from mizzen import spec as spec_mod
from mizzen.errors import SpecError

MIZZEN = str(Path(sys.executable).parent / "mizzen")
SPEC = """\
apiVersion: mizzen.io/v1alpha1
kind: Project
name: dsp
stores: {lake: data/lake}
store: lake
datasets:
  trips:
    location: lake/tables/trips
    schema:
      driver_id: {type: string, nullable: false}
      day: date
      km: double
    subject: driver_id
jobs:
  gen:
    command: [python, jobs/gen.py]
    outputs: [trips]
  bad:
    command: [python, jobs/gen.py, bad]
    outputs: [trips]
  late:
    command: [python, jobs/gen.py, late]
    outputs: [trips]
  replace:
    command: [python, jobs/gen.py, replace]
    outputs: [trips]
  mixed:
    command: [python, jobs/gen.py, mixed]
    outputs: [trips]
  train:
    command: [python, jobs/train.py]
    inputs: [trips]
  pinned:
    command: [python, -c, "import mizzen; print('rows', mizzen.dataset('trips').to_table().num_rows)"]
    inputs: ["trips@0"]
  stray:
    command: [python, -c, "import mizzen; mizzen.dataset('trips')"]
"""
GEN = """\
import datetime, sys
import pyarrow as pa
import mizzen
mode = sys.argv[1] if len(sys.argv) > 1 else ""
n = 10
table = pa.table({
    "driver_id": [None] * n if mode == "bad" else [f"d{i % 3}" for i in range(n)],
    "day": [datetime.date(2026, 11, 1 + i % 5) for i in range(n)],
    "km": [str(i) for i in range(n)] if mode == "bad" else [float(i) for i in range(n)],
})
trips = mizzen.dataset("trips")
if mode == "replace":  # an engine writing files itself: a sixth of the rows, replacing all
    import pyarrow.parquet as pq
    path = trips.output_path(mode="overwrite").removeprefix("file://")
    import os; os.makedirs(path, exist_ok=True)
    pq.write_table(table.slice(0, 6), f"{path}/part-0.parquet")
else:
    trips.write(table)
if mode == "mixed":
    trips.write(table, mode="overwrite")
if mode == "late":
    raise SystemExit("failed after writing")
"""
TRAIN = """\
import numpy as np
from sklearn.linear_model import LinearRegression
import mizzen
table = mizzen.dataset("trips").to_table()
x = np.array(table.column("km").to_pylist(), dtype=np.float32).reshape(-1, 1)
model = LinearRegression().fit(x, x[:, 0] * 2)
mizzen.publish_model("km-model", model, example=x[:2])
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "jobs").mkdir()
    (tmp_path / "mizzen.yaml").write_text(SPEC)
    (tmp_path / "jobs" / "gen.py").write_text(GEN)
    (tmp_path / "jobs" / "train.py").write_text(TRAIN)
    return tmp_path


def mizzen(root: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([MIZZEN, *argv], cwd=root, capture_output=True, text=True, timeout=300)


def versions(root: Path) -> list[int]:
    from deltalake import DeltaTable

    table = DeltaTable(str(root / "data" / "lake" / "tables" / "trips"))
    return [int(h["version"]) for h in table.history()]


def test_an_output_is_committed_once_the_job_succeeded(project: Path) -> None:
    run = mizzen(project, "run", "gen")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "gen: dataset trips: version 0 (10 rows)" in run.stderr + run.stdout
    assert versions(project) == [0]
    # a job that fails after writing leaves no version behind
    assert mizzen(project, "run", "late").returncode == 1
    assert versions(project) == [0]


def test_an_output_can_replace_the_rows_and_one_run_writes_it_one_way(project: Path) -> None:
    assert mizzen(project, "run", "gen").returncode == 0
    run = mizzen(project, "run", "replace")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "dataset trips: version 1 (6 rows)" in run.stderr + run.stdout
    from deltalake import DeltaTable

    table = DeltaTable(str(project / "data" / "lake" / "tables" / "trips"))
    assert table.to_pyarrow_table().num_rows == 6
    assert table.history(1)[0]["operation"] in ("CREATE OR REPLACE TABLE", "WRITE")
    mixed = mizzen(project, "run", "mixed")
    assert mixed.returncode == 1
    assert "already staged an append" in mixed.stderr + mixed.stdout
    assert versions(project) == [1, 0]


def test_a_contract_violation_fails_the_run_and_keeps_the_old_version(project: Path) -> None:
    assert mizzen(project, "run", "gen").returncode == 0
    run = mizzen(project, "run", "bad")
    assert run.returncode == 1
    [record] = json.loads(mizzen(project, "runs", "bad", "-o", "json").stdout)
    assert record["status"] == "failed"
    assert "trips.km: expected double, got string" in record["reason"]
    assert "trips.driver_id: 10 nulls in a non-nullable column" in record["reason"]
    assert "nothing was committed" in record["reason"]
    assert versions(project) == [0]
    assert mizzen(project, "run", "replace").returncode == 0  # version 1: fewer rows
    assert versions(project) == [1, 0]
    pinned = mizzen(project, "run", "pinned")  # reads trips@0, not the newest
    assert "rows 10" in pinned.stdout, pinned.stdout + pinned.stderr


def test_runs_and_models_record_what_they_read(project: Path) -> None:
    from mizzen.datasets.lineage import Lineage
    from mizzen.storage.base import open_store

    assert mizzen(project, "run", "gen").returncode == 0
    train = mizzen(project, "run", "train")
    assert train.returncode == 0, train.stdout + train.stderr
    lineage = Lineage(open_store((project / "data" / "lake" / "mizzen" / "dsp").as_uri()))
    graph = lineage.upstream("model:km-model@1")
    ids = {n.id for n in graph.nodes.values()}
    assert "dataset:trips@0" in ids, ids
    down = lineage.downstream("trips@0")
    assert "model:km-model@1" in {n.id for n in down.nodes.values()}


def test_a_dataset_the_job_does_not_name_is_refused(project: Path) -> None:
    run = mizzen(project, "run", "stray")
    assert run.returncode == 1
    assert "dataset 'trips' is not given to job 'stray'" in run.stdout + run.stderr
    assert "add it to `inputs:`" in run.stdout + run.stderr


def test_inputs_and_outputs_name_declared_datasets(project: Path) -> None:
    text = (
        SPEC
        + '  oops:\n    command: [python, -c, pass]\n    inputs: [tripz]\n    outputs: ["trips@3"]\n'
    )
    (project / "mizzen.yaml").write_text(text)
    with pytest.raises(SpecError) as err:
        spec_mod.load(project / "mizzen.yaml")
    lines = [str(p) for p in err.value.problems]
    assert any(
        "jobs.oops.inputs[0]: unknown dataset 'tripz'" in x and "did you mean 'trips'" in x
        for x in lines
    ), lines
    assert any(
        "jobs.oops.outputs[0]: 'trips@3': a job writes the next version" in x for x in lines
    ), lines


def test_mizzen_schedules_the_datasets_maintenance_itself(project: Path) -> None:
    from mizzen.plan import compile_plan

    plan = compile_plan(spec_mod.load(project / "mizzen.yaml"), "local")
    job = plan.jobs["mizzen-maintenance"]
    assert job.process.command == ("mizzen", "data", "maintain")
    assert job.schedule is not None and job.schedule.cron == "0 4 * * *"
    assert job.inputs == ("trips",)  # every dataset reaches it through the contract
    (project / "mizzen.yaml").write_text(SPEC + "maintenance: {schedule: null}\n")
    plan = compile_plan(spec_mod.load(project / "mizzen.yaml"), "local")
    assert plan.jobs["mizzen-maintenance"].schedule is None
    (project / "mizzen.yaml").write_text(SPEC.replace("  gen:\n", "  mizzen-gen:\n", 1))
    with pytest.raises(SpecError, match="names starting with `mizzen-` are mizzen's own"):
        spec_mod.load(project / "mizzen.yaml")


def test_a_notebook_session_reads_every_dataset(project: Path) -> None:
    from mizzen.cli.notebook_cmd import session_env
    from mizzen.datasets.jobs import handle
    from mizzen.plan import compile_plan

    assert mizzen(project, "run", "gen").returncode == 0
    plan = compile_plan(spec_mod.load(project / "mizzen.yaml"), "local")

    class NoVolumes:
        def path(self, mount: object) -> str:
            return "/x"

    kernel = session_env(plan, NoVolumes(), (), "notebook-1")
    trips = handle("trips", environ=kernel)
    assert trips.to_table().num_rows == 10 and not trips.stage
