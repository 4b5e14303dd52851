"""What people are shown about datasets: plain data for the `mizzen data` commands and the
dashboard (one source, so both say the same). Reading versions needs the `datasets` extra;
declarations, lineage and the audit log do not."""

from __future__ import annotations

import importlib.util
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from mizzen.errors import MissingExtraError, first_line

if TYPE_CHECKING:
    from mizzen.datasets.catalog import Catalog
    from mizzen.datasets.lineage import Edge, LineageGraph, Node
    from mizzen.datasets.model import DatasetRef, DatasetSpec

EXTRA_MODULES = ("deltalake", "pyarrow")


def missing_module() -> str | None:
    """The first module of the `datasets` extra that is not installed, or None."""
    for name in EXTRA_MODULES:
        try:
            found = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            found = None
        if found is None:
            return name
    return None


def require_extra(what: str) -> None:
    missing = missing_module()
    if missing is not None:
        raise MissingExtraError(what, "datasets", missing)


def fmt_bytes(size: int | None) -> str:
    if size is None:
        return ""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{size} B"


def retention_text(spec: DatasetSpec) -> str:
    return f"{spec.retain.column} older than {spec.retain.duration}" if spec.retain else ""


def declaration(name: str, spec: DatasetSpec) -> dict[str, Any]:
    """What the spec says about a dataset."""
    return {
        "name": name,
        "location": str(spec.location),
        "format": spec.format,
        "description": spec.description,
        "owner": spec.owner,
        "subject": spec.subject,
        "personal": list(spec.personal),
        "partition_by": list(spec.partition_by),
        "retain": spec.retain.model_dump() if spec.retain else None,
        "time_travel": spec.time_travel,
        "time_travel_seconds": spec.time_travel_seconds,
    }


def overview(catalog: Catalog, name: str, *, tables: bool = True) -> dict[str, Any]:
    """A dataset's declaration with its current version, rows and size (`tables=False`, or
    a table that cannot be read: those stay None, and `error` says why)."""
    row: dict[str, Any] = {
        **declaration(name, catalog.spec(name)),
        "uri": None,
        "version": None,
        "updated": None,
        "rows": None,
        "bytes": None,
        "files": None,
        "error": None,
    }
    if not tables:
        return row
    try:
        table = catalog.table(name)
        row["uri"] = table.uri
        if table.version() is not None:
            latest = table.versions(limit=1)[0]
            row.update(
                version=latest.version,
                updated=latest.timestamp,
                rows=latest.rows,
                bytes=latest.bytes,
                files=latest.files,
            )
    except Exception as exc:  # one unreadable table does not hide the others
        row["error"] = first_line(exc)
    return row


def columns(spec: DatasetSpec, stored: Any = None) -> list[dict[str, Any]]:
    """The declared columns with their marks, and the table's own columns (a pyarrow schema,
    when known) where they differ: added by compatible evolution, or stored as another type."""
    from_table: dict[str, tuple[str | None, bool]] = {}
    if stored is not None:
        from mizzen.datasets.types import logical_name

        from_table = {f.name: (logical_name(f.type), f.nullable) for f in stored}
    retained = spec.retain.column if spec.retain else None
    out = []
    for name, column in spec.columns.items():
        kept = from_table.get(name)
        out.append(
            {
                "name": name,
                "type": column.type,
                "nullable": column.nullable,
                "description": column.description,
                "declared": True,
                "stored": kept[0] if kept else None,
                "in_table": kept is not None if stored is not None else None,
                "subject": name == spec.subject,
                "personal": name in spec.personal_columns,
                "partition": name in spec.partition_by,
                "retention": name == retained,
            }
        )
    for name, (kind, nullable) in from_table.items():
        if name in spec.columns:
            continue
        out.append(
            {
                "name": name,
                "type": kind,
                "nullable": nullable,
                "description": "",
                "declared": False,
                "stored": kind,
                "in_table": True,
                "subject": False,
                "personal": False,
                "partition": False,
                "retention": False,
            }
        )
    return out


def marks(column: dict[str, Any]) -> list[str]:
    """subject, personal, partition, retention, not declared, stored as ..."""
    out = [m for m in ("subject", "personal", "partition", "retention") if column[m]]
    if out[:2] == ["subject", "personal"]:
        out.remove("personal")  # a subject column is personal data by definition
    if not column["declared"]:
        out.append("not declared: added by compatible evolution")
    elif column["in_table"] is False:
        out.append("not in this version")
    elif column["stored"] and column["stored"] != column["type"]:
        out.append(f"stored as {column['stored']}")
    return out


def detail(catalog: Catalog, ref: DatasetRef, *, limit: int | None = 20) -> dict[str, Any]:
    """One dataset at one version (default: the current one): its declaration, its columns
    at that version, and its versions (newest first, at least down to that version)."""
    table, version = catalog.resolve(ref)
    current = table.version()
    if limit is not None and current is not None:
        limit = max(limit, current - version + 1)
    versions = table.versions(limit)
    info = next((v for v in versions if v.version == version), None)
    return {
        **declaration(ref.name, catalog.spec(ref.name)),
        "uri": table.uri,
        "version": version,
        "current": current,
        "at": info.to_dict() if info else None,
        "columns": columns(table.spec, table.schema(version)),
        "versions": [v.to_dict() for v in versions],
        "more_versions": bool(versions) and versions[-1].version > 0,
    }


# --- lineage ------------------------------------------------------------------------------
FORWARD = {"read": "read by", "wrote": "wrote", "trained": "trained", "published": "published"}
BACKWARD = {
    "read": "read",
    "wrote": "written by",
    "trained": "trained on",
    "published": "published by",
}
_RANK = {"dataset": 0, "model": 1, "run": 2}


@dataclass
class Branch:
    """One node of a lineage tree, reached from its parent by `relation`."""

    id: str
    kind: str
    name: str
    version: int | None
    relation: str
    complete: bool = True
    children: list[Branch] = field(default_factory=list)
    repeated: bool = False  # shown earlier in the tree: not expanded again
    truncated: bool = False  # deeper than the tree's depth limit

    @property
    def label(self) -> str:
        return node_label(self.kind, self.name, self.version, self.id)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def node_label(kind: str, name: str, version: int | None, node_id: str) -> str:
    if kind == "run":
        run_id = node_id.removeprefix("run:")
        return f"run {run_id}" + (f" ({name})" if name else "")
    prefix = "model " if kind == "model" else ""
    return f"{prefix}{name}@{version}"


def starts(graph: LineageGraph, ref: str) -> list[str]:
    """The nodes a reference names: `trips` (every version), `trips@3`, `model:clf` (every
    version), `model:clf@2`, `run:<id>`; newest first."""
    if ref.startswith("run:"):
        return [ref] if ref in graph.nodes else []
    kind = "model" if ref.startswith("model:") else "dataset"
    text = ref.removeprefix("model:").removeprefix("dataset:")
    name, _, version = text.partition("@")
    found = [
        n
        for n in graph.nodes.values()
        if n.kind == kind and n.name == name and (not version or str(n.version) == version)
    ]
    return [n.id for n in sorted(found, key=lambda n: -(n.version or 0))]


def lineage_tree(
    graph: LineageGraph, roots: list[str], *, forward: bool, max_depth: int | None = None
) -> list[Branch]:
    """`roots` and what came from them (`forward`) or what they came from, as a tree in
    depth-first order; a node reached twice is expanded only the first time."""
    adjacent: dict[str, list[Edge]] = {}
    for edge in graph.edges:
        adjacent.setdefault(edge.source if forward else edge.target, []).append(edge)
    words = FORWARD if forward else BACKWARD
    top = [_branch(graph.nodes[r], "") for r in roots if r in graph.nodes]
    seen: set[str] = set()
    stack: list[tuple[Branch, int]] = [(b, 0) for b in reversed(top)]
    while stack:
        branch, depth = stack.pop()
        if branch.id in seen:
            branch.repeated = True
            continue
        seen.add(branch.id)
        edges = adjacent.get(branch.id, [])
        if edges and max_depth is not None and depth >= max_depth:
            branch.truncated = True
            continue
        for edge in edges:
            there = edge.target if forward else edge.source
            if there in graph.nodes:
                branch.children.append(_branch(graph.nodes[there], words[edge.relation]))
        branch.children = _ordered(branch.children)
        stack.extend((c, depth + 1) for c in reversed(branch.children))
    return top


def _branch(node: Node, relation: str) -> Branch:
    return Branch(node.id, node.kind, node.name, node.version, relation, node.complete)


def _ordered(branches: list[Branch]) -> list[Branch]:
    """Datasets, then models (by name, newest version first), then runs (newest first)."""
    by_id = sorted(branches, key=lambda b: b.id, reverse=True)
    return sorted(
        by_id,
        key=lambda b: (_RANK.get(b.kind, 3), b.name if b.kind != "run" else "", -(b.version or 0)),
    )


def lineage(graph: LineageGraph, ref: str, *, max_depth: int | None = None) -> dict[str, Any]:
    """Both ways from `ref`: what it fed (downstream) and what it came from (upstream)."""
    roots = starts(graph, ref)
    down, up = graph.downstream(roots), graph.upstream(roots)
    return {
        "ref": ref,
        "start": roots,
        "downstream": down,
        "upstream": up,
        "fed": lineage_tree(down, roots, forward=True, max_depth=max_depth),
        "came_from": lineage_tree(up, roots, forward=False, max_depth=max_depth),
    }


def merged(*graphs: LineageGraph) -> LineageGraph:
    from mizzen.datasets.lineage import LineageGraph

    out = LineageGraph()
    for graph in graphs:
        for node in graph.nodes.values():
            out.add(node)
        for edge in graph.edges:
            out.link(edge.source, edge.target, edge.relation)
    return out


# --- audit --------------------------------------------------------------------------------
def audit_rows(records: list[dict[str, Any]], dataset: str | None = None) -> list[dict[str, Any]]:
    """Audit records as people read them (newest first); only those touching `dataset` when
    given. The subject is only ever its keyed hash."""
    out = []
    for record in records:
        touched = _touched(record)
        if dataset is not None and dataset not in touched:
            continue
        out.append(
            {
                "id": record.get("id"),
                "kind": record.get("kind"),
                "time": record.get("time"),
                "actor": record.get("actor"),
                "subject": record.get("subject"),
                "datasets": touched,
                "rows": sum(v or 0 for v in touched.values()),
                "reason": record.get("reason") or "",
                "detail": _audit_detail(record),
                "failures": list(record.get("failures") or []),
            }
        )
    return out


def _touched(record: dict[str, Any]) -> dict[str, int | None]:
    """dataset -> rows removed (None: not a count, e.g. a completed compaction)."""
    out: dict[str, int | None] = {}
    for item in record.get("datasets") or []:
        if isinstance(item, str):
            out[item] = None
        elif isinstance(item, dict) and "dataset" in item:
            rows = item.get("rows", item.get("rows_removed"))
            out[str(item["dataset"])] = int(rows) if isinstance(rows, int) else None
    return out


def _audit_detail(record: dict[str, Any]) -> str:
    kind = record.get("kind")
    if kind == "retention":
        cutoffs = {f"{d.get('column')} < {d.get('cutoff')}" for d in record.get("datasets", [])}
        return "rows with " + ", ".join(sorted(cutoffs))
    if kind == "forget-compacted":
        return f"old versions gone: completes {record.get('completes')}"
    if kind != "forget":
        return ""
    parts = []
    states = {d.get("compaction") for d in record.get("datasets", [])}
    if "pending" in states:
        after = max(d.get("compact_after") or 0 for d in record.get("datasets", []))
        parts.append(f"old versions pending until {_when(after)}")
    elif "done" in states:
        parts.append("old versions removed at once")
    models = record.get("models") or []
    if models:
        names = sorted({f"{m.get('model')}@{m.get('version')}" for m in models})
        parts.append("models trained on it: " + ", ".join(names))
    return "; ".join(parts)


def _when(ts: float) -> str:
    from datetime import datetime

    return datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M")
