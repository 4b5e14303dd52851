"""The dashboard's pages and JSON endpoints (read-only)."""

from __future__ import annotations

import json
import mimetypes
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from markupsafe import Markup

from mizzen.errors import install_hint
from mizzen.plan.model import Plan
from mizzen.storage.base import Store
from mizzen.storage.runs import FINAL, RunRecord
from mizzen.ui.asgi import AllowedHosts, HostGuard, HTTPError, Request, Response, Router
from mizzen.ui.data import PAGE_SIZE, Dashboard, RunFilter
from mizzen.ui.svg import COLOURS, Bar, Box, Node, dag, gantt, graph

HERE = Path(__file__).parent
STATIC = HERE / "static"
CHART_LIB = STATIC / "vendor" / "uPlot.iife.min.js"
STATUSES = ("running", "succeeded", "failed", "cancelled", "lost", "skipped", "pending")
TRIGGERS = ("manual", "schedule", "cluster")


def fmt_time(ts: float | None) -> str:
    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S") if ts else ""


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    return f"{minutes}m{sec:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def _summary() -> Any:
    """`mizzen.datasets.summary`, imported on first use (it loads pydantic)."""
    from mizzen.datasets import summary

    return summary


def _templates() -> Any:
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=select_autoescape(["html"]),
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["time"] = fmt_time
    env.filters["duration"] = fmt_duration
    env.filters["bytes"] = lambda v: _summary().fmt_bytes(v)
    env.filters["marks"] = lambda c: _summary().marks(c)
    env.filters["tojson_safe"] = lambda v: Markup(json.dumps(v, default=str).replace("</", "<\\/"))
    env.globals["colours"] = COLOURS
    return env


def bars(rec: RunRecord) -> list[Bar]:
    if not rec.steps:
        return [Bar(rec.workload, rec.status, rec.started, rec.ended)]
    return [Bar(s.name, s.status, s.started, s.ended) for s in rec.steps]


def metric_series(dash: Dashboard, rec: RunRecord) -> dict[str, dict[str, list[Any]]]:
    """Each metric over steps (or over time when steps are not given) within one run."""
    out: dict[str, dict[str, list[Any]]] = {}
    points = dash.runs.metrics(rec)
    for name in sorted({m.name for m in points}):
        mine = [m for m in points if m.name == name]
        by_step = all(m.step is not None for m in mine)
        mine.sort(key=lambda m: (m.step, m.time) if by_step else (m.time, 0))
        xs = [m.step for m in mine] if by_step else [round(m.time - rec.started, 3) for m in mine]
        out[name] = {"x": xs, "y": [m.value for m in mine], "xlabel": ["seconds", "step"][by_step]}  # type: ignore[dict-item]
    return out


def across_runs(
    dash: Dashboard, workload: str, limit: int = 100
) -> dict[str, dict[str, list[Any]]]:
    """Each metric's final value across the latest runs of a workload (x: run start time)."""
    runs = dash.history(workload, limit)
    names = sorted({k for r in runs for k, v in r.metrics.items() if isinstance(v, int | float)})
    out: dict[str, dict[str, list[Any]]] = {}
    for name in names:
        pts = [
            (r.started, r.metrics[name], r.id)
            for r in runs
            if isinstance(r.metrics.get(name), int | float)
        ]
        out[name] = {"x": [p[0] for p in pts], "y": [p[1] for p in pts], "ids": [p[2] for p in pts]}
    return out


class UI:
    def __init__(self, store: Store, plan: Plan | None = None, *, title: str = "") -> None:
        self.dash = Dashboard(store, plan)
        self.plan = plan
        self.title = title or (plan.project if plan else "mizzen")
        self.env = _templates()
        self._notebooks: dict[tuple[str, int], str] = {}
        self._lock = threading.Lock()
        self.router = Router(self.error_page)
        r = self.router
        r.get("/")(lambda req: Response(b"", 302, headers={"location": "/runs"}))
        r.get("/runs")(self.runs_page)
        r.get("/runs/{workload}/{run_id}")(self.run_page)
        r.get("/runs/{workload}/{run_id}/outputs/{name:path}")(self.output)
        r.get("/api/runs/{workload}/{run_id}")(self.run_json)
        r.get("/pipelines")(self.pipelines_page)
        r.get("/models")(self.models_page)
        r.get("/datasets")(self.datasets_page)
        r.get("/datasets/{name}")(self.dataset_page)
        r.get("/services")(self.services_page)
        r.get("/releases")(self.releases_page)
        r.get("/static/{name:path}")(self.static)
        r.get("/healthz")(lambda req: Response.text("ok"))
        from mizzen.ui.signals import add_routes as add_signal_routes

        add_signal_routes(self)

    def render(self, template: str, **ctx: Any) -> Response:
        page = self.env.get_template(template).render(
            title=self.title, plan=self.plan, chart_lib=CHART_LIB.exists(), **ctx
        )
        return Response.html(page)

    def error_page(self, status: int, message: str) -> Response:
        resp = self.render("error.html", status=status, message=message, nav="")
        resp.status = status
        return resp

    def _record(self, req: Request) -> RunRecord:
        rec = self.dash.record(req.params["workload"], req.params["run_id"])
        if rec is None:
            raise HTTPError(
                404, f"no run {req.params['workload']}/{req.params['run_id']} in this store"
            )
        return rec

    # --- pages -----------------------------------------------------------------------------
    def runs_page(self, req: Request) -> Response:
        flt = RunFilter(req.arg("workload"), req.arg("status"), req.arg("trigger"), req.arg("q"))
        size = min(max(req.int_arg("size", PAGE_SIZE), 1), 500)
        page = self.dash.run_page(flt, req.int_arg("page", 1), size)
        ctx = {
            "size": size,
            "page": page,
            "flt": flt,
            "nav": "runs",
            "workloads": self.dash.workloads(),
            "statuses": STATUSES,
            "triggers": TRIGGERS,
            "now": time.time(),
        }
        if req.arg("fragment"):
            return self.render("runs_rows.html", **ctx)
        return self.render("runs.html", **ctx)

    def run_page(self, req: Request) -> Response:
        rec = self._record(req)
        logs = {name: self.dash.log_tail(rec, name) for name in self.dash.log_names(rec)}
        return self.render(
            "run.html",
            nav="runs",
            run=rec,
            live=rec.status not in FINAL,
            stale=rec.status not in FINAL and not self.dash.is_live(rec),
            timeline=gantt(bars(rec), rec.started, rec.ended),
            graph=dag([Node(s.name, s.job, tuple(s.after), s.status) for s in rec.steps])
            if rec.kind == "pipeline" and rec.steps
            else None,
            logs=logs,
            metrics=metric_series(self.dash, rec),
            across=across_runs(self.dash, rec.workload),
        )

    def run_json(self, req: Request) -> Response:
        """What a live run page polls: state, timeline, new log text, metrics."""
        rec = self._record(req)
        offsets = {}
        for item in req.arg("logs").split(","):
            name, _, off = item.rpartition(":")
            if name and off.isdigit():
                offsets[name] = int(off)
        logs = {}
        for name in self.dash.log_names(rec):
            text, end = self.dash.log_tail(rec, name, offsets.get(name, 0))
            logs[name] = {"text": text, "offset": end}
        return Response.json(
            {
                "status": rec.status,
                "reason": rec.reason,
                "final": rec.status in FINAL,
                "duration": fmt_duration(rec.duration),
                "ended": fmt_time(rec.ended),
                "steps": [{"name": s.name, "status": s.status} for s in rec.steps],
                "timeline": str(gantt(bars(rec), rec.started, rec.ended)),
                "graph": str(
                    dag([Node(s.name, s.job, tuple(s.after), s.status) for s in rec.steps])
                )
                if rec.kind == "pipeline" and rec.steps
                else None,
                "logs": logs,
                "metrics": metric_series(self.dash, rec),
                "params": rec.params,
                "outputs": rec.outputs,
            }
        )

    def output(self, req: Request) -> Response:
        rec = self._record(req)
        name = req.params["name"]
        if name not in rec.outputs or ".." in name.split("/"):
            raise HTTPError(404, f"run {rec.id} kept no output {name!r}")
        key = f"{rec.prefix}/outputs/{name}"
        try:
            data = self.dash.store.read_bytes(key)
        except FileNotFoundError:
            raise HTTPError(404, f"output {name!r} is listed but missing from the store") from None
        if req.arg("view") == "html" and name.endswith(".ipynb"):
            html = self.notebook_html(key, data)
            # notebook outputs may hold scripts: show them without running any
            return Response(
                html.encode(),
                headers={
                    "content-security-policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:"
                },
            )
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        filename = name.rsplit("/", 1)[-1].replace('"', "")
        return Response(
            data,
            content_type=ctype,
            headers={"content-disposition": f'attachment; filename="{filename}"'},
        )

    def notebook_html(self, key: str, data: bytes) -> str:
        cache_key = (key, hash(data))
        with self._lock:
            if cache_key in self._notebooks:
                return self._notebooks[cache_key]
        try:
            import nbformat
            from nbconvert import HTMLExporter
        except ImportError:
            raise HTTPError(
                501, f"rendering notebooks needs nbconvert: {install_hint('mizzen[notebook]')}"
            ) from None
        body, _ = HTMLExporter(template_name="lab").from_notebook_node(
            nbformat.reads(data.decode(), as_version=4)
        )
        with self._lock:
            self._notebooks[cache_key] = body
        return str(body)

    def pipelines_page(self, req: Request) -> Response:
        items = []
        names = list(self.plan.pipelines) if self.plan else []
        for wl in self.dash.workloads():
            if wl not in names:
                latest = self.dash.latest(wl)
                if latest is not None and latest.kind == "pipeline":
                    names.append(wl)
        for name in names:
            latest = self.dash.latest(name)
            if latest is not None and latest.steps:
                nodes = [Node(s.name, s.job, tuple(s.after), s.status) for s in latest.steps]
            elif self.plan and name in self.plan.pipelines:
                nodes = [Node(s.name, s.job, s.after) for s in self.plan.pipelines[name].steps]
            else:
                nodes = []
            schedule = (
                self.plan.pipelines[name].schedule
                if self.plan and name in self.plan.pipelines
                else None
            )
            items.append(
                {
                    "name": name,
                    "latest": latest,
                    "graph": dag(nodes) if nodes else None,
                    "schedule": schedule,
                }
            )
        return self.render("pipelines.html", nav="pipelines", pipelines=items)

    def models_page(self, req: Request) -> Response:
        return self.render(
            "models.html", nav="models", models=self.dash.models(), trained=self.dash.trained_on()
        )

    def datasets_page(self, req: Request) -> Response:
        return self.render("datasets.html", nav="datasets", view=self.dash.datasets())

    def dataset_page(self, req: Request) -> Response:
        from mizzen.datasets.errors import DatasetNotFound

        name = req.params["name"]
        text = req.arg("version")
        if text and not text.isdigit():
            raise HTTPError(404, f"version {text!r} is not a version number")
        try:
            view = self.dash.dataset(name, int(text) if text else None)
        except DatasetNotFound as exc:
            raise HTTPError(404, exc.message) from None
        if view is None:
            raise HTTPError(404, f"no dataset {name!r} is declared in this project's mizzen.yaml")
        found = view["lineage"]
        focus = set(found["start"])
        shown = _summary().merged(found["downstream"], found["upstream"])
        return self.render(
            "dataset.html",
            nav="datasets",
            ds=view,
            graph=lineage_svg(shown, focus) if 0 < len(shown.nodes) <= GRAPH_LIMIT else None,
            graph_size=len(shown.nodes),
            graph_limit=GRAPH_LIMIT,
        )

    def services_page(self, req: Request) -> Response:
        return self.render("services.html", nav="services", services=self.dash.services())

    def releases_page(self, req: Request) -> Response:
        return self.render("releases.html", nav="releases", releases=self.dash.releases())

    def static(self, req: Request) -> Response:
        path = (STATIC / req.params["name"]).resolve()
        if not path.is_file() or STATIC.resolve() not in path.parents:
            raise HTTPError(404, "no such file")
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype.endswith("javascript"):
            ctype += "; charset=utf-8"
        return Response(
            path.read_bytes(), content_type=ctype, headers={"cache-control": "max-age=300"}
        )


GRAPH_LIMIT = 80  # nodes; a larger lineage is listed, not drawn
KIND_FILL = {"dataset": "#0969da", "run": "#57606a", "model": "#8250df"}


def node_href(node: Any) -> str | None:
    if node.kind == "dataset":
        return f"/datasets/{quote(node.name)}?version={node.version}"
    if node.kind == "model":
        return f"/models#model-{quote(node.name)}"
    if node.kind == "run" and node.name:
        return f"/runs/{quote(node.name)}/{quote(node.id.removeprefix('run:'))}"
    return None


def lineage_svg(shown: Any, focus: set[str]) -> Markup:
    """The lineage graph as boxes: datasets, runs and models, left to right along the edges."""
    parents: dict[str, list[str]] = {}
    for edge in shown.edges:
        parents.setdefault(edge.target, []).append(edge.source)
    boxes = []
    for node in sorted(shown.nodes.values(), key=lambda n: n.id):
        if node.kind == "run":
            run_id = node.id.removeprefix("run:")
            title, subtitle = node.name or "run", run_id
        else:
            title, subtitle = f"{node.name}@{node.version}", node.kind
        state = "" if node.complete else " (lineage incomplete)"
        boxes.append(
            Box(
                node.id,
                title if len(title) <= 22 else title[:21] + "…",
                subtitle if len(subtitle) <= 26 else subtitle[:25] + "…",
                tuple(parents.get(node.id, ())),
                KIND_FILL.get(node.kind, "#8c959f"),
                f"lnode lnode-{node.kind}" + (" focus" if node.id in focus else ""),
                (("data-node", node.id), ("data-kind", node.kind)),
                ("dataset " if node.kind == "dataset" else "")
                + _summary().node_label(node.kind, node.name, node.version, node.id)
                + state,
                node_href(node),
            )
        )
    return graph(boxes, "lineage", "lineage graph", box_w=170)


def create_app(
    store: Store,
    plan: Plan | None = None,
    *,
    title: str = "",
    allowed_hosts: AllowedHosts | None = None,
) -> Router | HostGuard:
    """The ASGI application; with `allowed_hosts`, other `Host` headers get a 403."""
    router = UI(store, plan, title=title).router
    return router if allowed_hosts is None else HostGuard(router, allowed_hosts)
