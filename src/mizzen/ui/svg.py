"""Inline SVG drawings: a Gantt-style step timeline and a pipeline DAG (layered layout)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

COLOURS = {
    "succeeded": "#2da44e",
    "failed": "#cf222e",
    "running": "#0969da",
    "pending": "#8c959f",
    "skipped": "#d0d7de",
    "cancelled": "#bf8700",
    "lost": "#8250df",
}


def colour(status: str) -> str:
    return COLOURS.get(status, "#8c959f")


@dataclass(frozen=True)
class Bar:
    name: str
    status: str
    started: float | None
    ended: float | None


def _fmt(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, sec = divmod(int(seconds), 60)
    return f"{minutes}m{sec:02d}s" if minutes < 60 else f"{minutes // 60}h{minutes % 60:02d}m"


def gantt(bars: Sequence[Bar], start: float, end: float | None, width: int = 900) -> Markup:
    """One row per step: a bar from its start to its end (or now), coloured by state."""
    end = end or time.time()
    span = max(end - start, 1e-3)
    label_w, row_h, plot_w = 170, 26, width - 170 - 70
    height = row_h * len(bars) + 24
    parts = [
        f'<svg class="gantt" role="img" aria-label="step timeline" viewBox="0 0 {width} {height}" width="100%">'
    ]
    for tick in range(5):
        x = label_w + plot_w * tick / 4
        parts.append(f'<line x1="{x:.1f}" y1="0" x2="{x:.1f}" y2="{height - 18}" class="grid"/>')
        parts.append(
            f'<text x="{x:.1f}" y="{height - 4}" class="tick" text-anchor="middle">+{_fmt(span * tick / 4)}</text>'
        )
    for row, bar in enumerate(bars):
        y = row * row_h + 4
        parts.append(
            f'<text x="{label_w - 8}" y="{y + 15}" text-anchor="end" class="label">{escape(bar.name)}</text>'
        )
        if bar.started is None:
            parts.append(
                f'<text x="{label_w + 4}" y="{y + 15}" class="tick">{escape(bar.status)}</text>'
            )
            continue
        x0 = label_w + plot_w * (bar.started - start) / span
        x1 = label_w + plot_w * ((bar.ended or end) - start) / span
        w = max(x1 - x0, 2.0)
        dur = (bar.ended or end) - bar.started
        parts.append(
            f'<rect class="bar bar-{escape(bar.status)}" data-step="{escape(bar.name)}" x="{x0:.1f}" y="{y}" width="{w:.1f}" height="{row_h - 8}" rx="3" fill="{colour(bar.status)}">'
            f"<title>{escape(bar.name)}: {escape(bar.status)}, {_fmt(dur)}</title></rect>"
        )
        parts.append(f'<text x="{x0 + w + 4:.1f}" y="{y + 14}" class="tick">{_fmt(dur)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


@dataclass(frozen=True)
class Node:
    name: str
    job: str
    after: tuple[str, ...]
    status: str = "pending"


@dataclass(frozen=True)
class Box:
    """One box of a layered graph: `after` names the boxes with an edge into it."""

    key: str
    title: str
    subtitle: str
    after: tuple[str, ...]
    fill: str
    classes: str = ""
    attrs: tuple[tuple[str, str], ...] = ()
    tooltip: str = ""
    href: str | None = None


def layers(nodes: Sequence[Node] | Sequence[Box]) -> dict[str, int]:
    """Each node's layer: the length of the longest path from a root to it."""
    by_name = {_key(n): n for n in nodes}
    depth: dict[str, int] = {}

    def visit(name: str, seen: frozenset[str]) -> int:
        if name in depth:
            return depth[name]
        if name in seen or name not in by_name:
            return 0
        parents = [p for p in by_name[name].after if p in by_name]
        depth[name] = 1 + max((visit(p, seen | {name}) for p in parents), default=-1)
        return depth[name]

    for n in nodes:
        visit(_key(n), frozenset())
    return depth


def _key(node: Node | Box) -> str:
    return node.key if isinstance(node, Box) else node.name


def dag(
    nodes: Sequence[Node], box_w: int = 150, box_h: int = 40, gap_x: int = 60, gap_y: int = 18
) -> Markup:
    """Boxes in layers left to right, edges as curves, each box coloured by its step's state."""
    boxes = []
    for n in nodes:
        job = f" ({n.job})" if n.job and n.job != n.name else ""
        boxes.append(
            Box(
                n.name,
                n.name,
                f"{n.status}{job}",
                n.after,
                colour(n.status),
                f"node node-{n.status}",
                (("data-step", n.name), ("data-status", n.status)),
                f"{n.name}{job}: {n.status}",
            )
        )
    return graph(boxes, "dag", "pipeline graph", box_w, box_h, gap_x, gap_y)


def _middle(rows: list[float]) -> float:
    return sum(rows) / len(rows) if rows else float("inf")


def graph(
    boxes: Sequence[Box],
    css: str,
    label: str,
    box_w: int = 150,
    box_h: int = 40,
    gap_x: int = 60,
    gap_y: int = 18,
) -> Markup:
    """A layered graph, left to right; a box with `href` is a link."""
    depth = layers(boxes)
    columns: dict[int, list[Box]] = {}
    for b in boxes:
        columns.setdefault(depth[b.key], []).append(b)
    row: dict[str, float] = {}
    for layer in sorted(columns):  # each box near the middle of its parents: fewer crossings
        members = columns[layer]
        if layer:
            members.sort(key=lambda b: _middle([row[p] for p in b.after if p in row]))
        row.update((b.key, float(i)) for i, b in enumerate(members))
    pos: dict[str, tuple[float, float]] = {}
    rows = max((len(c) for c in columns.values()), default=1)
    height = rows * (box_h + gap_y) + gap_y
    for layer, members in sorted(columns.items()):
        offset = (height - len(members) * (box_h + gap_y) + gap_y) / 2
        for i, b in enumerate(members):
            pos[b.key] = (gap_y + layer * (box_w + gap_x), offset + i * (box_h + gap_y))
    width = gap_y * 2 + (max(columns, default=0) + 1) * (box_w + gap_x) - gap_x
    marker = f"arrow-{css}"
    parts = [
        f'<svg class="{escape(css)}" role="img" aria-label="{escape(label)}" viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
    ]
    parts.append(
        f'<defs><marker id="{marker}" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#8c959f"/></marker></defs>'
    )
    for b in boxes:
        for parent in b.after:
            if parent not in pos:
                continue
            x0, y0 = pos[parent][0] + box_w, pos[parent][1] + box_h / 2
            x1, y1 = pos[b.key][0], pos[b.key][1] + box_h / 2
            mid = (x0 + x1) / 2
            parts.append(
                f'<path class="edge" d="M{x0:.1f},{y0:.1f} C{mid:.1f},{y0:.1f} {mid:.1f},{y1:.1f} {x1:.1f},{y1:.1f}" marker-end="url(#{marker})"/>'
            )
    for b in boxes:
        x, y = pos[b.key]
        attrs = "".join(f' {k}="{escape(v)}"' for k, v in b.attrs)
        body = (
            f'<g class="{escape(b.classes)}"{attrs}>'
            f'<rect x="{x:.1f}" y="{y:.1f}" width="{box_w}" height="{box_h}" rx="6" fill="{escape(b.fill)}"/>'
            f'<text x="{x + box_w / 2:.1f}" y="{y + 17:.1f}" text-anchor="middle" class="node-name">{escape(b.title)}</text>'
            f'<text x="{x + box_w / 2:.1f}" y="{y + 31:.1f}" text-anchor="middle" class="node-status">{escape(b.subtitle)}</text>'
            f"<title>{escape(b.tooltip or b.title)}</title></g>"
        )
        parts.append(f'<a href="{escape(b.href)}">{body}</a>' if b.href else body)
    parts.append("</svg>")
    return Markup("".join(parts))
