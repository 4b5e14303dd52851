"""What the dashboard shows, read from the project store (and the plan when there is one).

Listing stays fast with thousands of runs: run ids come from folder listings (one per
workload) and records are read only for the visible page; finished records never change,
so they are cached.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from mizzen.errors import install_hint
from mizzen.plan.model import Plan
from mizzen.storage.base import Store
from mizzen.storage.runs import FINAL, RunRecord, RunStore, seen

PAGE_SIZE = 50
STALE_AFTER = 30.0  # a running record not updated for this long: "its writer may have died"
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@dataclass
class RunFilter:
    workload: str = ""
    status: str = ""
    trigger: str = ""
    q: str = ""  # matches run id, git sha, reason

    @property
    def needs_records(self) -> bool:
        return bool(self.status or self.trigger or self.q)

    def accepts(self, rec: RunRecord) -> bool:
        if self.status and rec.status != self.status:
            return False
        if self.trigger and rec.trigger != self.trigger:
            return False
        if self.q:
            text = " ".join([rec.id, rec.git_sha or "", rec.reason, rec.user]).lower()
            return self.q.lower() in text
        return True


@dataclass
class RunPage:
    runs: list[RunRecord]
    page: int
    has_next: bool
    total: int | None  # known when no record-level filter is set
    workloads: list[str] = field(default_factory=list)


class RecordCache:
    """Finished run records by (workload, id); bounded, thread-safe."""

    def __init__(self, size: int = 20000) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, str], RunRecord] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> RunRecord | None:
        with self._lock:
            rec = self._items.get(key)
            if rec is not None:
                self._items.move_to_end(key)
            return rec

    def put(self, key: tuple[str, str], rec: RunRecord) -> None:
        with self._lock:
            self._items[key] = rec
            while len(self._items) > self.size:
                self._items.popitem(last=False)


class Dashboard:
    def __init__(self, store: Store, plan: Plan | None = None) -> None:
        self.store = store
        self.plan = plan
        self.runs = RunStore(store)
        self.cache = RecordCache()
        self._scrapes: dict[str, tuple[float, Samples]] = {}
        self._catalog: tuple[Any, str] | None = None
        self._lock = threading.Lock()

    # --- runs ------------------------------------------------------------------------------
    def record(self, workload: str, run_id: str) -> RunRecord | None:
        key = (workload, run_id)
        rec = self.cache.get(key)
        if rec is not None:
            return rec
        try:
            rec = RunRecord.from_json(self.store.read_bytes(f"runs/{workload}/{run_id}/run.json"))
        except (FileNotFoundError, ValueError):
            return None
        if rec.status in FINAL and rec.ended is not None:
            self.cache.put(key, rec)
        return seen(rec)

    def workloads(self) -> list[str]:
        return self.runs.workloads()

    def run_ids(self, workload: str = "") -> list[tuple[str, str]]:
        """(run id, workload), newest first."""
        names = [workload] if workload else self.workloads()
        ids = [(rid, name) for name in names for rid in self.store.list_dirs(f"runs/{name}")]
        ids.sort(reverse=True)
        return ids

    def run_page(self, flt: RunFilter, page: int = 1, size: int = PAGE_SIZE) -> RunPage:
        ids = self.run_ids(flt.workload)
        page = max(page, 1)
        if not flt.needs_records:
            chunk = ids[(page - 1) * size : page * size]
            runs = [r for rid, name in chunk if (r := self.record(name, rid)) is not None]
            return RunPage(runs, page, page * size < len(ids), len(ids))
        skip, found = (page - 1) * size, []
        for rid, name in ids:
            rec = self.record(name, rid)
            if rec is None or not flt.accepts(rec):
                continue
            if skip:
                skip -= 1
                continue
            found.append(rec)
            if len(found) > size:
                break
        return RunPage(found[:size], page, len(found) > size, None)

    def history(self, workload: str, limit: int = 100) -> list[RunRecord]:
        """The latest runs of a workload, oldest first (for charts across runs)."""
        ids = self.run_ids(workload)[:limit]
        return [r for rid, name in reversed(ids) if (r := self.record(name, rid)) is not None]

    def latest(self, workload: str) -> RunRecord | None:
        ids = self.run_ids(workload)
        return self.record(ids[0][1], ids[0][0]) if ids else None

    def log_names(self, rec: RunRecord) -> list[str]:
        names = [
            i.key.rsplit("/", 1)[-1].removesuffix(".log")
            for i in self.store.list(f"{rec.prefix}/logs")
        ]
        order = {s.name: n for n, s in enumerate(rec.steps)}
        return sorted(names, key=lambda n: (order.get(n, len(order)), n))

    def log_tail(
        self, rec: RunRecord, step: str, offset: int = 0, limit: int = 256 * 1024
    ) -> tuple[str, int]:
        """Text of a step's log from `offset`; a long log starts at its last `limit` bytes."""
        data = self.runs.log(rec, step)
        start = offset if offset else max(0, len(data) - limit)
        if start > len(data):  # rewritten shorter: start over
            start = 0
        return data[start:].decode(errors="replace"), len(data)

    def is_live(self, rec: RunRecord) -> bool:
        """Running and heard from lately (a record is shown `lost` only after LOST_AFTER)."""
        return rec.status not in FINAL and time.time() - rec.heartbeat < STALE_AFTER

    # --- models ----------------------------------------------------------------------------
    def models(self) -> list[dict[str, Any]]:
        from mizzen.storage.registry import ModelRegistry

        reg = ModelRegistry(self.store)
        out = []
        for name in reg.names():
            versions: list[dict[str, Any]] = []
            for v in reversed(reg.versions(name)):
                mv = reg.get(name, v)
                versions.append(
                    {
                        "version": v,
                        "format": mv.format,
                        "created": mv.created,
                        "metrics": mv.metrics,
                        "signature": mv.signature,
                        "tags": mv.tags,
                        "run_id": mv.meta.get("run_id"),
                        "workload": mv.meta.get("workload"),
                        "git_sha": mv.meta.get("git_sha"),
                    }
                )
            metric_names = sorted(
                {
                    k
                    for v in versions
                    for k, val in v["metrics"].items()
                    if isinstance(val, int | float)
                }
            )
            best = {m: best_value(m, [v["metrics"].get(m) for v in versions]) for m in metric_names}
            out.append(
                {
                    "name": name,
                    "versions": versions,
                    "aliases": reg.aliases(name),
                    "metric_names": metric_names,
                    "best": best,
                }
            )
        return out

    def trained_on(self) -> dict[tuple[str, int], list[tuple[str, int]]]:
        """(model, version) -> the dataset versions it was trained on (from lineage)."""
        from mizzen.datasets.lineage import Lineage

        return {(m.model, m.version): list(m.trained_on) for m in Lineage(self.store).models()}

    # --- datasets --------------------------------------------------------------------------
    def catalog(self) -> tuple[Any, str]:
        """The plan's datasets on their stores (opened once), or (None, why not)."""
        with self._lock:
            if self._catalog is None and self.plan is not None and self.plan.datasets:
                from mizzen.datasets.jobs import catalog_for
                from mizzen.errors import MizzenError

                try:
                    self._catalog = (catalog_for(self.plan, project=self.store), "")
                except MizzenError as exc:  # not kept: a secret added or a store back is seen
                    return None, str(exc)
            return self._catalog or (None, "")

    def datasets(self) -> dict[str, Any]:
        from mizzen.datasets.maintenance import AuditLog
        from mizzen.datasets.summary import audit_rows, missing_module, overview

        catalog, error = self.catalog()
        missing = missing_module()
        rows = (
            [overview(catalog, n, tables=missing is None) for n in catalog.names()]
            if catalog is not None
            else []
        )
        return {
            "declared": bool(self.plan and self.plan.datasets),
            "missing": missing,
            "error": error,
            "datasets": rows,
            "audit": audit_rows(AuditLog(self.store).list()),
        }

    def dataset(self, name: str, version: int | None = None) -> dict[str, Any] | None:
        """One dataset: declaration, columns and versions (with the extra), lineage both
        ways, its audit records; None when the plan does not declare it."""
        from mizzen.datasets.errors import DatasetNotFound
        from mizzen.datasets.lineage import Lineage
        from mizzen.datasets.maintenance import AuditLog
        from mizzen.datasets.model import DatasetRef
        from mizzen.datasets.summary import (
            audit_rows,
            columns,
            declaration,
            detail,
            lineage,
            missing_module,
        )
        from mizzen.errors import first_line

        catalog, error = self.catalog()
        if catalog is None or name not in catalog.specs:
            return None
        spec = catalog.spec(name)
        view: dict[str, Any] = {
            **declaration(name, spec),
            "missing": missing_module(),
            "error": error,
            "columns": columns(spec),
            "versions": [],
            "selected": version,  # asked for (None: the current one, lineage of every version)
            "version": version,
            "current": None,
            "uri": None,
        }
        if view["missing"] is None:
            try:
                if catalog.table(name).version() is None:
                    view["empty"] = True
                else:
                    view.update(detail(catalog, DatasetRef(name, version), limit=50))
            except DatasetNotFound as exc:
                if version is not None:
                    raise  # no such version: a 404 that says so
                view["error"] = first_line(exc)
            except Exception as exc:  # shown on the page; the declaration still is
                view["error"] = first_line(exc)
        ref = name if version is None else f"{name}@{version}"
        view["lineage"] = lineage(Lineage(self.store).graph(), ref, max_depth=12)
        view["audit"] = audit_rows(AuditLog(self.store).list(), name)
        return view

    # --- services --------------------------------------------------------------------------
    def services(self) -> list[dict[str, Any]]:
        if self.plan is None:
            return []
        out = []
        for svc in self.plan.services.values():
            item: dict[str, Any] = {
                "name": svc.name,
                "port": svc.port,
                "replicas": svc.replicas,
                "model": svc.model,
                "command": " ".join(svc.process.command),
            }
            item.update(self.scrape(svc.name, svc.port) if svc.port else {"up": None})
            out.append(item)
        return out

    def scrape(self, name: str, port: int) -> dict[str, Any]:
        """Health, request rate and mean latency per version from the server's /metrics."""
        import urllib.error
        import urllib.request

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=0.5) as resp:
                text = resp.read().decode(errors="replace")
        except (urllib.error.URLError, OSError, ValueError):
            return {"up": False}
        samples = parse_prometheus(text)
        now = time.time()
        previous = self._scrapes.get(name)
        self._scrapes[name] = (now, samples)
        versions: dict[str, dict[str, float]] = {}
        for (metric, labels), value in samples.items():
            lab = dict(labels)
            version = lab.get("version")
            if version is None:
                continue
            entry = versions.setdefault(
                version,
                {"requests": 0.0, "errors": 0.0, "lat_sum": 0.0, "lat_count": 0.0, "rate": 0.0},
            )
            if metric == "mizzen_requests_total":
                entry["requests"] += value
                if lab.get("code", "200")[:1] in ("4", "5"):
                    entry["errors"] += value
                if previous and now > previous[0]:
                    entry["rate"] += max(0.0, value - previous[1].get((metric, labels), 0.0)) / (
                        now - previous[0]
                    )
            elif metric == "mizzen_request_duration_seconds_sum":
                entry["lat_sum"] += value
            elif metric == "mizzen_request_duration_seconds_count":
                entry["lat_count"] += value
        for entry in versions.values():
            entry["latency_ms"] = (
                1000 * entry["lat_sum"] / entry["lat_count"] if entry["lat_count"] else 0.0
            )
        total = sum(e["requests"] for e in versions.values())
        for entry in versions.values():
            entry["share"] = 100 * entry["requests"] / total if total else 0.0
        return {
            "up": True,
            "versions": dict(sorted(versions.items())),
            "rate_known": previous is not None,
        }

    # --- releases --------------------------------------------------------------------------
    def releases(self) -> dict[str, Any]:
        """Release history and status from the cluster, when the kubernetes target offers it."""
        if self.plan is None or not (
            self.plan.kubernetes.context or self.plan.kubernetes.namespace
        ):
            return {
                "configured": False,
                "why": "no cluster is configured for this environment (kubernetes.context / namespace in mizzen.yaml)",
            }
        try:
            from mizzen.targets.kubernetes.target import dashboard_view
        except ImportError:
            return {
                "configured": False,
                "why": "the kubernetes extra is not installed "
                f"({install_hint('mizzen[kubernetes]')})",
            }
        try:
            return {"configured": True, **dashboard_view(self.plan)}
        except Exception as exc:
            return {"configured": True, "error": str(exc), "revisions": [], "status": []}


LOWER_IS_BETTER = ("loss", "error", "mae", "mse", "rmse", "mape", "latency", "time")


def best_value(metric: str, values: list[Any]) -> float | None:
    """The best of a metric's values across versions (lower for losses and errors)."""
    nums = [float(v) for v in values if isinstance(v, int | float)]
    if not nums:
        return None
    return min(nums) if any(w in metric.lower() for w in LOWER_IS_BETTER) else max(nums)


def parse_prometheus(text: str) -> Samples:
    """Prometheus text exposition -> {(metric, sorted labels): value}."""
    import re

    out: Samples = {}
    label_re = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, rest = line.rpartition(" ") if "}" not in line else line.partition("} ")
        if "{" in head:
            name, _, labels = head.partition("{")
            pairs = tuple(sorted(label_re.findall(labels)))
        else:
            name, pairs = head, ()
        try:
            out[(name.strip(), pairs)] = float(rest.split()[0])
        except (ValueError, IndexError):
            continue
    return out
