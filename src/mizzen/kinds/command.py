"""A job that runs one command: a process on this machine, a `batch/v1` Job in a cluster
(a CronJob with a `schedule`), through `mizzen exec` so the run is recorded."""

from __future__ import annotations

from typing import Any, ClassVar

from mizzen.kinds.base import Compiled, JobKind


class Command(JobKind):
    name = "command"
    field = None
    label = "job"
    example: ClassVar[dict[str, Any]] = {"command": ["python", "-c", "print('hello')"]}

    def selects(self, job: Any) -> bool:
        return bool(job.command)

    def compile(self, c: Any, name: str, job: Any) -> Compiled:
        return Compiled(argv=[*(job.command or []), *job.args])
