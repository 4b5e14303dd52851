"""Datasets inside a job, from the run-time contract only (so a local process and a pod do
the same): the handles its code opens (`mizzen.dataset(name)`), and, once the job
succeeded, the commit of what it staged for its `outputs`.

Inside a run, a write to an output dataset is checked and *staged*; it becomes a version
only when the job has succeeded (a job that fails after writing leaves no version behind),
and only if every output keeps its contract: otherwise nothing is committed, the previous
versions stay current, and the job fails with the reasons.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from mizzen import contract
from mizzen.errors import UsageError

if TYPE_CHECKING:
    from mizzen.datasets.catalog import DatasetHandle
    from mizzen.datasets.lineage import Lineage
    from mizzen.datasets.table import DatasetTable


@dataclass
class JobDatasets:
    """The datasets a job was given: tables opened on their stores, lineage, inputs, outputs."""

    payload: dict[str, Any]
    environ: Mapping[str, str]
    tables: dict[str, DatasetTable] = field(default_factory=dict)
    _lineage: Lineage | None = None

    @property
    def inputs(self) -> list[str]:
        return list(self.payload.get("inputs", []))

    @property
    def outputs(self) -> list[str]:
        return list(self.payload.get("outputs", []))

    def names(self) -> list[str]:
        return list(self.payload.get("datasets", {}))

    def table(self, name: str) -> DatasetTable:
        if name not in self.tables:
            from mizzen.datasets.model import DatasetSpec
            from mizzen.datasets.table import DatasetTable
            from mizzen.plan.model import StoreRef
            from mizzen.storage.project import open_ref

            decl = self.payload["datasets"][name]
            store = self.payload["stores"][decl["store"]]
            ref = StoreRef(
                decl["store"], store["url"], store.get("options") or {}, store.get("secret")
            )
            opened = open_ref(ref, env=self.environ.get(contract.ENV) or None, environ=self.environ)
            self.tables[name] = DatasetTable.open(
                name, DatasetSpec.model_validate(decl["spec"]), opened
            )
        return self.tables[name]

    def lineage(self) -> Lineage | None:
        """Lineage in the project store (None when the run has none to record in)."""
        if self._lineage is None:
            given = contract.read(self.environ)
            if given.store is None:
                return None
            from mizzen.datasets.lineage import Lineage
            from mizzen.plan.model import StoreRef
            from mizzen.storage.project import open_ref

            ref = StoreRef("project", given.store.url, given.store.options, given.store.secret)
            self._lineage = Lineage(open_ref(ref, env=given.env, environ=self.environ))
        return self._lineage


def given(environ: Mapping[str, str] | None = None) -> JobDatasets | None:
    environ = os.environ if environ is None else environ
    found = contract.read(environ).datasets
    return JobDatasets(found, environ) if found else None


def handle(name: str, environ: Mapping[str, str] | None = None) -> DatasetHandle:
    """`mizzen.dataset(name)`: a dataset the job names in its `inputs` or `outputs`."""
    from mizzen.datasets.catalog import DatasetHandle
    from mizzen.datasets.model import parse_ref

    environ = os.environ if environ is None else environ
    job = given(environ)
    workload = environ.get(contract.WORKLOAD)
    where = f"job {workload!r}" if workload else "this process (not started by mizzen)"
    if job is None or name not in job.names():
        hint = (
            f"add it to `inputs:` (to read) or `outputs:` (to write) of {workload} in mizzen.yaml"
            if workload
            else "start it with `mizzen run JOB` (or `mizzen notebook`), which gives it its datasets"
        )
        raise UsageError(f"dataset {name!r} is not given to {where}", hint=hint)
    run_id = environ.get(contract.RUN_ID) or None
    pinned = next(
        (parse_ref(r) for r in job.inputs if parse_ref(r).name == name and "@" in r), None
    )
    return DatasetHandle(
        job.table(name),
        job.lineage(),
        run_id,
        workload,
        stage=bool(run_id) and name in job.outputs,
        pinned=pinned,
    )


def commit(environ: Mapping[str, str], run_id: str, workload: str) -> tuple[str | None, list[str]]:
    """After the job succeeded: commit what it staged for its outputs. (None, what was
    committed) when all went in, or (why the job fails, []) when nothing was committed."""
    from mizzen.datasets.catalog import commit_staged_outputs
    from mizzen.datasets.errors import ContractViolation
    from mizzen.errors import MizzenError

    job = given(environ)
    if job is None or not job.outputs:
        return None, []
    try:
        results = commit_staged_outputs(
            job.table, job.lineage(), run_id, job.outputs, workload=workload
        )
    except ContractViolation as exc:
        prefix = f"{exc.report.dataset}." if exc.report.dataset else ""
        reasons = "; ".join(
            f"{'' if v.column.startswith(prefix) else prefix}{v.column}: {v.message}"
            for v in exc.report.violations
        )
        return (
            f"wrote outputs that break their datasets' schema (nothing was committed): {reasons}",
            [],
        )
    except MizzenError as exc:
        return f"could not commit its outputs: {exc.message}", []
    return None, [f"dataset {r.dataset}: version {r.version} ({r.rows:,} rows)" for r in results]


def finish(environ: Mapping[str, str], run_id: str) -> None:
    """Mark the run's lineage events complete (the `_done` marker, written last)."""
    job = given(environ)
    lineage = job.lineage() if job is not None else None
    if lineage is not None:
        lineage.finish_run(run_id)
