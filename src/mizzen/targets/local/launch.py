"""How one Job becomes the processes that run it on this machine.

A plain command is one process. Spark, distributed training and notebooks are added by the
workload-kinds issue; until then they are refused, never silently run as something else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from mizzen.errors import NotSupportedError
from mizzen.plan.model import Job


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
        raise NotSupportedError(f"job {job.name!r}: spark", "local")
    if job.distributed is not None:
        raise NotSupportedError(f"job {job.name!r}: distributed training", "local")
    return [Launch(argv=argv, label=job.name)]
