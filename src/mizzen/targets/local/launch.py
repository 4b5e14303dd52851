"""How one Job becomes the processes that run it on this machine.

A plain command is one process. A spark job is one `spark-submit --master local[N]`; a
distributed training job is N worker processes with the training operator's environment; a
notebook job is papermill writing the executed notebook into the run's outputs.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from mizzen.plan.model import Job
from mizzen.targets.local.env import unresolved


@dataclass
class Launch:
    argv: list[str]
    label: str  # the log prefix: "train", or "train/worker-1"
    env: dict[str, str] = field(default_factory=dict)  # on top of the job's own env


def launches(job: Job, argv: list[str], env: dict[str, str], run_dir: Path) -> list[Launch]:
    """The processes to start together for one attempt of `job` (all stopped if one fails).

    `argv` is the job's command with run-time references filled; `env` its full environment;
    `run_dir` the run's local staging folder (outputs go to run_dir/"outputs").
    """
    if job.spark is not None:
        return [spark_launch(job, unresolved(argv), env, run_dir)]
    if job.notebook is not None:
        return [notebook_launch(job, unresolved(argv), run_dir)]
    if job.distributed is not None:
        return distributed_launches(job, argv)
    return [Launch(argv=argv, label=job.name)]


def spark_launch(job: Job, args: list[str], env: dict[str, str], run_dir: Path) -> Launch:
    from mizzen.targets.local import spark

    home = spark.spark_home(job)
    java = spark.java(job, spark.min_java())
    assert job.spark is not None
    cpus, ram = spark.machine()
    size = spark.size_for(job.spark, cpus, ram)
    argv = spark.spark_submit_argv(job, args, run_dir, home=home, size=size)
    argv = [
        sys.executable,
        "-m",
        "mizzen.targets.local.spark",
        size.summary(job.spark) + spark.version_note(job.spark),
        "--",
        *argv,
    ]
    return Launch(argv=argv, label=job.name, env=spark.spark_env(home, java, env))


def distributed_launches(job: Job, argv: list[str]) -> list[Launch]:
    from mizzen.targets.local.distributed import worker_envs

    assert job.distributed is not None
    envs = worker_envs(job.distributed)
    return [
        Launch(argv=list(argv), label=f"{job.name}/worker-{i}", env=env)
        for i, env in enumerate(envs)
    ]


def notebook_launch(job: Job, argv: list[str], run_dir: Path) -> Launch:
    """papermill, run by this interpreter; a failing cell fails the process with its error."""
    import importlib.util

    if importlib.util.find_spec("papermill") is None:
        from mizzen.errors import MissingExtraError

        raise MissingExtraError(f"notebook job {job.name!r}", "notebook", "papermill")
    (run_dir / "outputs").mkdir(parents=True, exist_ok=True)
    argv = list(argv)
    if argv[:3] == ["python", "-m", "papermill"]:
        argv[:3] = [sys.executable, "-m", "mizzen.targets.local.notebook_run"]
    if "--no-progress-bar" not in argv and "--progress-bar" not in argv:
        argv.insert(
            argv.index("--log-output") + 1 if "--log-output" in argv else len(argv),
            "--no-progress-bar",
        )
    return Launch(argv=argv, label=job.name, env={"PYTHONUNBUFFERED": "1"})
