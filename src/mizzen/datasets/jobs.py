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
    from mizzen.datasets.catalog import Catalog, DatasetHandle
    from mizzen.datasets.lineage import Lineage
    from mizzen.datasets.model import DatasetSpec
    from mizzen.datasets.table import DatasetTable
    from mizzen.plan.model import Plan
    from mizzen.storage.base import Store


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
            from mizzen.datasets.table import DatasetTable

            decl = self.payload["datasets"][name]
            store = _payload_store(self.payload, decl["store"], self.environ)
            self.tables[name] = DatasetTable.open(name, _spec(decl["spec"]), store)
        return self.tables[name]

    def lineage(self) -> Lineage | None:
        """Lineage in the project store (None when the run has none to record in)."""
        if self._lineage is None:
            store = _contract_project(self.environ)
            if store is None:
                return None
            from mizzen.datasets.lineage import Lineage

            self._lineage = Lineage(store)
        return self._lineage


def _spec(declared: Mapping[str, Any]) -> DatasetSpec:
    from mizzen.datasets.model import DatasetSpec

    return DatasetSpec.model_validate(declared)


def _payload_store(payload: Mapping[str, Any], name: str, environ: Mapping[str, str]) -> Store:
    """Store `name` of a datasets payload, opened with its secret's credentials."""
    from mizzen.plan.model import StoreRef
    from mizzen.storage.project import open_ref

    store = payload["stores"][name]
    ref = StoreRef(name, store["url"], store.get("options") or {}, store.get("secret"))
    return open_ref(ref, env=environ.get(contract.ENV) or None, environ=environ)


def _contract_project(environ: Mapping[str, str]) -> Store | None:
    from mizzen.storage.project import contract_store

    return contract_store(environ)


def catalog_for(
    plan: Plan, *, project: Store | None = None, environ: Mapping[str, str] | None = None
) -> Catalog:
    """Every dataset of a compiled plan, on its store opened with its credentials (the
    secret's values from `environ`, else `.mizzen/secrets/<env>.env`). `project`: where
    lineage and the audit log live (default: the project store, as `mizzen runs` finds it)."""
    from pathlib import Path

    from mizzen.datasets.catalog import Catalog
    from mizzen.storage.project import open_ref, project_store

    environ = os.environ if environ is None else environ
    root = Path(plan.root)
    specs = {name: _spec(decl.spec) for name, decl in plan.datasets.items()}
    refs = {d.store.name: d.store for d in plan.datasets.values()}
    stores = {
        name: open_ref(ref, root=root, env=plan.env, environ=environ) for name, ref in refs.items()
    }
    if project is None:
        project = project_store(plan.spec_file, plan.env)
    return Catalog(specs, stores, project)


def contract_catalog(environ: Mapping[str, str] | None = None) -> Catalog | None:
    """Every dataset the run-time contract gives this process (`MIZZEN_DATASETS`), or None
    when it gives none: how `mizzen data maintain` and `forget` work in a pod."""
    from mizzen.datasets.catalog import Catalog

    environ = os.environ if environ is None else environ
    payload = contract.read(environ).datasets
    if not payload:
        return None
    project = _contract_project(environ)
    if project is None:
        raise UsageError(
            f"{contract.DATASETS} is set but the contract names no project store "
            f"({contract.STORE}): lineage and the audit log live there",
            hint="declare store: in mizzen.yaml, so every workload is given it",
        )
    decls = payload.get("datasets", {})
    specs = {name: _spec(decl["spec"]) for name, decl in decls.items()}
    used = sorted({decl["store"] for decl in decls.values()})
    stores = {name: _payload_store(payload, name, environ) for name in used}
    return Catalog(specs, stores, project)


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
        hint = f" ({exc.hint})" if exc.hint else ""
        return f"could not commit its outputs: {exc.message}{hint}", []
    return None, [f"dataset {r.dataset}: version {r.version} ({r.rows:,} rows)" for r in results]


def finish(environ: Mapping[str, str], run_id: str) -> None:
    """Mark the run's lineage events complete (the `_done` marker, written last)."""
    job = given(environ)
    lineage = job.lineage() if job is not None else None
    if lineage is not None:
        lineage.finish_run(run_id)
