"""Workload kinds: one extension point, a registry of `"name": "module:Class"` entries
imported when first needed (docs/kinds.md says how a kind is added).

Job kinds, in the order a job spec is matched against them (the first that selects it is
its kind): a `distributed` command before a plain one.
"""

from __future__ import annotations

import importlib
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mizzen.kinds.base import JobKind, WorkloadKind

JOB_KINDS: dict[str, str] = {
    "spark": "mizzen.kinds.spark:Spark",
    "distributed": "mizzen.kinds.distributed:Distributed",
    "notebook": "mizzen.kinds.notebook:Notebook",
    "sql": "mizzen.kinds.sql:Sql",
    "command": "mizzen.kinds.command:Command",
}
OTHER_KINDS: dict[str, str] = {
    "pipeline": "mizzen.kinds.pipeline:Pipeline",
    "service": "mizzen.kinds.service:Service",
    "model-service": "mizzen.kinds.service:ModelService",
}


@cache
def _load(path: str) -> Any:
    module, cls = path.split(":")
    return getattr(importlib.import_module(module), cls)()


def job_kinds() -> list[JobKind]:
    return [_load(path) for path in JOB_KINDS.values()]


def workload_kinds() -> list[WorkloadKind]:
    return [*job_kinds(), *(_load(path) for path in OTHER_KINDS.values())]


def kind(name: str) -> WorkloadKind:
    """The kind registered under `name` (a plan workload's `kind`)."""
    path = JOB_KINDS.get(name) or OTHER_KINDS.get(name)
    if path is None:
        raise KeyError(f"no workload kind {name!r}")
    found: WorkloadKind = _load(path)
    return found


def job_kind(name: str) -> JobKind:
    found = kind(name)
    from mizzen.kinds.base import JobKind

    assert isinstance(found, JobKind), name
    return found


def kind_of_spec(job: Any) -> JobKind:
    """The kind a validated job spec is."""
    for k in job_kinds():
        if k.selects(job):
            return k
    raise ValueError("no kind selects this job")  # pragma: no cover - validation refuses it


def job_fields() -> dict[str, Any]:
    """The fields job kinds add to the job model: name -> (annotation, default)."""
    out: dict[str, Any] = {}
    for k in job_kinds():
        out.update(k.fields())
    return out


def check_job(job: Any) -> None:
    """The rules across kinds, with the sentences `mizzen validate` shows."""
    kinds = job_kinds()
    # a plain `command` first in what the sentences list
    runners = sorted((k for k in kinds if k.runner), key=lambda k: k.field is not None)
    chosen = [k for k in runners if k.selects(job)]
    if len(chosen) > 1:
        names = ", ".join(k.field or "command" for k in chosen)
        raise ValueError(f"a job runs one thing: {names} are exclusive")
    if not chosen:
        fields = [f"`{k.field or 'command'}`" for k in runners]
        raise ValueError(f"a job needs {', '.join(fields[:-1])} or {fields[-1]}")
    own = kind_of_spec(job)
    for k in kinds:
        if k is own or (not k.runner and k.selects(job)):
            continue
        for name in k.fields():
            value = getattr(job, name, None)
            if value not in (None, "", {}, []) and name != k.field:
                raise ValueError(k.misplaced(name))
    for k in kinds:
        if k.selects(job):
            k.check(job)


def launches(job: Any, argv: list[str], env: dict[str, str], run_dir: Any) -> list[Any]:
    """The processes one attempt of a plan job starts on this machine (its kind says)."""
    return job_kind(job.kind).launches(job, argv, env, run_dir)
