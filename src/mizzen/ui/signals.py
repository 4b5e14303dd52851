"""The dashboard's signals pages: every signal (latest value, sparkline, freshness, alerts),
and one signal over time with segment and arm filters, its definition (and the SQL it runs),
its experiment arms with intervals, and its alerts."""

from __future__ import annotations

import importlib.util
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from markupsafe import Markup

from mizzen.errors import install_hint
from mizzen.ui.asgi import HTTPError, Request, Response

if TYPE_CHECKING:
    from mizzen.ui.app import UI


def add_routes(ui: UI) -> None:
    ui.router.get("/signals")(lambda req: signals_page(ui, req))
    ui.router.get("/signals/{name}")(lambda req: signal_page(ui, req))


def _missing() -> str | None:
    for module, extra in (("deltalake", "datasets"), ("pyarrow", "datasets")):
        if importlib.util.find_spec(module) is None:
            return f"reading signals needs {module}: {install_hint(f'mizzen[{extra}]')}"
    return None


def _ago(when: datetime | None) -> str:
    if when is None:
        return "never"
    seconds = (datetime.now(UTC) - when).total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


def spark_svg(values: list[float | None], width: int = 180, height: int = 34) -> Markup:
    """A sparkline: the values as a line, the last one as a dot."""
    known = [(i, v) for i, v in enumerate(values) if v is not None]
    if not known:
        return Markup("")
    low, high = min(v for _, v in known), max(v for _, v in known)
    span = (high - low) or 1.0
    step = width / max(len(values) - 1, 1)

    def xy(i: int, v: float) -> str:
        return f"{i * step:.1f},{height - 3 - (v - low) / span * (height - 6):.1f}"

    points = " ".join(xy(i, v) for i, v in known)
    last = xy(*known[-1]).split(",")
    return Markup(
        f'<svg class="spark" viewBox="-2 0 {width + 4} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="last {len(values)} buckets"><polyline points="{points}"/>'
        f'<circle cx="{last[0]}" cy="{last[1]}" r="2.5"/></svg>'
    )


def _views(ui: UI) -> list[Any]:
    from mizzen.signals.report import View, definitions

    if ui.plan is None:
        return []
    return [View.load(s, ui.dash.store) for s in definitions(ui.plan).values()]


def signals_page(ui: UI, req: Request) -> Response:
    missing = _missing()
    if missing:
        return ui.render("signals.html", nav="signals", items=[], missing=missing)
    from mizzen.signals.report import definition_text

    items = []
    for view in _views(ui):
        series = view.series()
        done = [r for r in series if r["complete"]]
        fresh = view.freshness()
        verdicts = view.verdicts()
        items.append(
            {
                "signal": view.signal,
                "definition": definition_text(view.signal),
                "latest": done[-1] if done else None,
                "spark": spark_svg([r["value"] for r in series[-30:]]),
                "fresh": fresh,
                "ago": _ago(fresh["computed_at"]),
                "firing": [v for v in verdicts if v.firing],
                "alerts": len(view.signal.alerts),
            }
        )
    return ui.render("signals.html", nav="signals", items=items, missing=None)


def signal_page(ui: UI, req: Request) -> Response:
    missing = _missing()
    if missing:
        raise HTTPError(501, missing)
    from mizzen.errors import UsageError
    from mizzen.signals import report
    from mizzen.signals.sql import Window, query
    from mizzen.signals.stats import Moments, estimate

    if ui.plan is None:
        raise HTTPError(404, "no mizzen.yaml: no signals")
    try:
        signal = report.find(ui.plan, req.params["name"])
    except UsageError as exc:
        raise HTTPError(404, f"{exc.message} ({exc.hint})") from None
    view = report.View.load(signal, ui.dash.store)
    segments = view.segments()
    dimension, _, segment = req.arg("segment").partition("=")
    if dimension and (dimension not in segments or segment not in segments[dimension]):
        raise HTTPError(404, f"signal {signal.name} has no segment {req.arg('segment')!r}")
    arms = view.arms()
    arm = req.arg("arm")
    if arm and arm != "*" and arm not in arms:
        raise HTTPError(404, f"signal {signal.name} has no arm {arm!r}")
    shown = ["*"] if arm == "*" else [arm]
    lines: dict[str, Any] = {}
    for a in arms if shown == ["*"] else shown:
        rows = view.series(dimension, segment, a)
        label = (
            f"{signal.arm}={a}" if a else (f"{dimension}={segment}" if dimension else signal.name)
        )
        band = [
            estimate(m, signal.confidence) if m else None for m in (Moments.of(r) for r in rows)
        ]
        lines[label] = {
            "x": [r["bucket"].timestamp() for r in rows],
            "y": [r["value"] for r in rows],
            "low": [b.low if b and signal.averaged else None for b in band],
            "high": [b.high if b and signal.averaged else None for b in band],
            "complete": [r["complete"] for r in rows],
            "n": [r["n"] for r in rows],
        }
    table_rows: dict[str, Any] = next(iter(lines.values()), {"x": []})
    exp = view.experiment(dimension=dimension, segment=segment)
    text = ""
    if signal.sql_file:
        from pathlib import Path

        try:
            text = (Path(ui.plan.root) / signal.sql_file).read_text()
        except OSError:
            text = ""
    return ui.render(
        "signal.html",
        nav="signals",
        s=signal,
        definition=report.definition_text(signal),
        sql=query(signal, Window(), signal.engine, text),
        segments=segments,
        dimension=dimension,
        segment=segment,
        arms=arms,
        arm=arm,
        lines=lines,
        buckets=len(table_rows["x"]),
        fresh=view.freshness(),
        ago=_ago(view.freshness()["computed_at"]),
        experiment=exp,
        verdicts=view.verdicts(),
        job=signal.job,
        describe={a.name: a.describe() for a in signal.alerts},
    )
