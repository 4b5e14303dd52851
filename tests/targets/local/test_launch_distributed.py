"""Distributed training locally: N workers with the training operator's environment."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mizzen import spec
from mizzen.kinds import launches
from mizzen.plan import compile_plan
from mizzen.plan.model import Job

VENV_BIN = str(Path(sys.executable).parent)


def project(tmp_path: Path, jobs: str, files: dict[str, str] | None = None) -> Path:
    (tmp_path / "mizzen.yaml").write_text(
        f"apiVersion: mizzen.io/v1alpha1\nkind: Project\nname: dist\njobs:\n{jobs}"
    )
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text)
    return tmp_path


def job(root: Path, name: str) -> Job:
    return compile_plan(spec.load(root / "mizzen.yaml")).jobs[name]


def mizzen_run(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
        "NO_COLOR": "1",
    }
    return subprocess.run(
        [sys.executable, "-m", "mizzen.cli.main", "run", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )


def test_pytorch_workers_get_the_operator_env(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        "  train:\n    command: [python, train.py]\n    distributed: {framework: pytorch, workers: 3}\n",
    )
    found = launches(job(root, "train"), ["python", "train.py"], {}, tmp_path / "run")
    assert [launch.label for launch in found] == [
        "train/worker-0",
        "train/worker-1",
        "train/worker-2",
    ]
    assert all(launch.argv == ["python", "train.py"] for launch in found)
    envs = [launch.env for launch in found]
    assert [e["RANK"] for e in envs] == ["0", "1", "2"]
    assert {e["WORLD_SIZE"] for e in envs} == {"3"}
    assert {e["MASTER_ADDR"] for e in envs} == {"127.0.0.1"}
    assert len({e["MASTER_PORT"] for e in envs}) == 1
    assert [e["PET_NODE_RANK"] for e in envs] == ["0", "1", "2"]


def test_a_busy_master_port_is_replaced_by_a_free_one(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        root = project(
            tmp_path,
            f"  train:\n    command: [python, t.py]\n    distributed: {{framework: pytorch, workers: 2, masterPort: {port}}}\n",
        )
        found = launches(job(root, "train"), ["python", "t.py"], {}, tmp_path / "run")
    chosen = {launch.env["MASTER_PORT"] for launch in found}
    assert len(chosen) == 1 and chosen != {str(port)}


def test_tensorflow_workers_get_tf_config(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        "  train:\n    command: [python, t.py]\n    distributed: {framework: tensorflow, workers: 2}\n",
    )
    configs = [
        json.loads(launch.env["TF_CONFIG"])
        for launch in launches(job(root, "train"), ["python", "t.py"], {}, tmp_path / "run")
    ]
    workers = configs[0]["cluster"]["worker"]
    assert (
        len(workers) == 2
        and all(w.startswith("127.0.0.1:") for w in workers)
        and len(set(workers)) == 2
    )
    assert [c["task"] for c in configs] == [
        {"type": "worker", "index": 0},
        {"type": "worker", "index": 1},
    ]
    assert all(c["cluster"] == configs[0]["cluster"] for c in configs)


WAITER = """\
import os, sys, time, pathlib
rank = int(os.environ["RANK"])
print("worker", rank, "of", os.environ["WORLD_SIZE"], flush=True)
if rank == 1:
    sys.exit(3)
pathlib.Path("worker0.pid").write_text(str(os.getpid()))
time.sleep(600)
"""


def test_one_failing_worker_stops_the_others(tmp_path: Path) -> None:
    root = project(
        tmp_path,
        "  train:\n    command: [python, waiter.py]\n    distributed: {framework: pytorch, workers: 2}\n",
        {"waiter.py": WAITER},
    )
    result = mizzen_run(root, "train")
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "train/worker-1" in out and "worker 1 of 2" in out
    pid_file = root / "worker0.pid"
    if pid_file.exists():  # worker 0 got going before worker 1 failed: it must be gone now
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid_file.read_text()), 0)


ALL_REDUCE = """\
import os
import torch
import torch.distributed as dist

dist.init_process_group("gloo")
rank = dist.get_rank()
value = torch.tensor([float(rank + 1)])
dist.all_reduce(value, op=dist.ReduceOp.SUM)
print(f"rank {rank}/{dist.get_world_size()} all-reduced {value.item():g}", flush=True)
dist.destroy_process_group()
"""


@pytest.mark.torch
def test_torch_gloo_all_reduce_across_two_local_workers(tmp_path: Path) -> None:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("torch is required in CI (bash scripts/setup.sh test)")
        pytest.skip("torch is not installed")
    root = project(
        tmp_path,
        "  train:\n    command: [python, reduce.py]\n    distributed: {framework: pytorch, workers: 2}\n",
        {"reduce.py": ALL_REDUCE},
    )
    result = mizzen_run(root, "train")
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "rank 0/2 all-reduced 3" in out and "rank 1/2 all-reduced 3" in out
