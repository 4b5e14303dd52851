"""Lineage: which run read and wrote which dataset versions, which model was trained on which.

Plain JSON objects in the project store, readable without any server:

    datasets/lineage/runs/<run-id>/<time>-<rand>.json    one event each: a read or a write
    datasets/lineage/runs/<run-id>/_done                 written last: the run's list is whole
    datasets/lineage/models/<model>/<version>.json       written once, by the publisher

Writers never share an object (every event is its own object, so a run's processes can
record concurrently); a run without `_done` is shown as incomplete, never hidden.

The graph has three kinds of node (`dataset:trips@3`, `run:<id>`, `model:clf@2`) and four
edges: dataset@v -read-> run, run -wrote-> dataset@v, dataset@v -trained-> model@v,
run -published-> model@v. `upstream` walks them backwards, `downstream` forwards.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import deque
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from mizzen.datasets.model import parse_ref
from mizzen.errors import UsageError
from mizzen.storage.base import Store

PREFIX = "datasets/lineage"
DONE = "_done"


@dataclass(frozen=True)
class Event:
    kind: Literal["read", "write"]
    dataset: str
    version: int
    run_id: str
    workload: str | None = None
    time: float = 0.0


@dataclass(frozen=True)
class ModelLineage:
    model: str
    version: int
    run_id: str | None
    trained_on: list[tuple[str, int]]
    time: float = 0.0


@dataclass(frozen=True)
class Node:
    id: str
    kind: Literal["dataset", "run", "model"]
    name: str
    version: int | None = None
    complete: bool = True  # runs: lineage marker written


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    relation: Literal["read", "wrote", "trained", "published"]


def dataset_node(name: str, version: int) -> str:
    return f"dataset:{name}@{version}"


def model_node(name: str, version: int) -> str:
    return f"model:{name}@{version}"


def run_node(run_id: str) -> str:
    return f"run:{run_id}"


@dataclass
class LineageGraph:
    nodes: dict[str, Node] = field(default_factory=dict)
    edges: list[Edge] = field(default_factory=list)

    def add(self, node: Node) -> None:
        known = self.nodes.get(node.id)
        if known is None or (known.complete and not node.complete):
            self.nodes[node.id] = node

    def link(self, source: str, target: str, relation: Any) -> None:
        edge = Edge(source, target, relation)
        if edge not in self._edge_set():
            self.edges.append(edge)
            self._edges_cache = None

    _edges_cache: set[Edge] | None = None

    def _edge_set(self) -> set[Edge]:
        if self._edges_cache is None:
            self._edges_cache = set(self.edges)
        return self._edges_cache

    def upstream(self, start: str | Iterable[str]) -> LineageGraph:
        """Everything `start` came from (it included)."""
        return self._walk(start, forward=False)

    def downstream(self, start: str | Iterable[str]) -> LineageGraph:
        """Everything that came from `start` (it included)."""
        return self._walk(start, forward=True)

    def _walk(self, start: str | Iterable[str], *, forward: bool) -> LineageGraph:
        starts = [start] if isinstance(start, str) else list(start)
        seen = set(s for s in starts if s in self.nodes)
        queue = deque(seen)
        out = LineageGraph()
        adjacent: dict[str, list[Edge]] = {}
        for edge in self.edges:
            adjacent.setdefault(edge.source if forward else edge.target, []).append(edge)
        while queue:
            current = queue.popleft()
            out.add(self.nodes[current])
            for edge in adjacent.get(current, []):
                there = edge.target if forward else edge.source
                out.link(edge.source, edge.target, edge.relation)
                if there not in seen and there in self.nodes:
                    seen.add(there)
                    queue.append(there)
        return out

    def models(self) -> list[Node]:
        return sorted((n for n in self.nodes.values() if n.kind == "model"), key=lambda n: n.id)

    def runs(self) -> list[Node]:
        return sorted((n for n in self.nodes.values() if n.kind == "run"), key=lambda n: n.id)

    def datasets(self) -> list[Node]:
        return sorted((n for n in self.nodes.values() if n.kind == "dataset"), key=lambda n: n.id)

    def to_dict(self) -> dict[str, Any]:
        return {
            "nodes": [asdict(n) for n in sorted(self.nodes.values(), key=lambda n: n.id)],
            "edges": [asdict(e) for e in self.edges],
        }


class Lineage:
    """Lineage records in the project store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    # --- writing -------------------------------------------------------------------------
    def record(
        self,
        kind: Literal["read", "write"],
        run_id: str,
        dataset: str,
        version: int,
        workload: str | None = None,
    ) -> Event:
        _check_id(run_id)
        event = Event(kind, dataset, int(version), run_id, workload, time.time())
        stamp = f"{time.time_ns():020d}-{secrets.token_hex(3)}"
        self.store.write_bytes(f"{PREFIX}/runs/{run_id}/{stamp}.json", _dump(asdict(event)))
        return event

    def record_read(
        self, run_id: str, dataset: str, version: int, workload: str | None = None
    ) -> Event:
        return self.record("read", run_id, dataset, version, workload)

    def record_write(
        self, run_id: str, dataset: str, version: int, workload: str | None = None
    ) -> Event:
        return self.record("write", run_id, dataset, version, workload)

    def finish_run(self, run_id: str) -> None:
        """The marker, written last: the run's lineage is whole."""
        _check_id(run_id)
        self.store.write_bytes(f"{PREFIX}/runs/{run_id}/{DONE}", b"")

    def record_model(
        self,
        model: str,
        version: int,
        *,
        run_id: str | None = None,
        trained_on: Iterable[tuple[str, int] | str] | None = None,
    ) -> ModelLineage:
        """What a published model was trained on: `trained_on` (("trips", 3) or "trips@3"),
        or by default every dataset version its run read."""
        if trained_on is None:
            reads = [e for e in self.run_events(run_id) if e.kind == "read"] if run_id else []
            pairs = sorted({(e.dataset, e.version) for e in reads})
        else:
            pairs = sorted({_pair(item) for item in trained_on})
        record = ModelLineage(model, int(version), run_id, pairs, time.time())
        key = f"{PREFIX}/models/{model}/{int(version)}.json"
        if not self.store.create(key, _dump(asdict(record))):
            raise UsageError(f"lineage of model {model!r} version {version} is already recorded")
        return record

    # --- reading -------------------------------------------------------------------------
    def run_events(self, run_id: str) -> list[Event]:
        keys = [
            i.key for i in self.store.list(f"{PREFIX}/runs/{run_id}") if i.key.endswith(".json")
        ]
        return [e for e in _parallel(self._event, keys) if e is not None]

    def _event(self, key: str) -> Event | None:
        try:
            return Event(**json.loads(self.store.read_bytes(key)))
        except (FileNotFoundError, TypeError, ValueError):
            return None

    def _model(self, key: str) -> ModelLineage | None:
        try:
            raw = json.loads(self.store.read_bytes(key))
        except (FileNotFoundError, ValueError):
            return None
        raw["trained_on"] = [tuple(p) for p in raw.get("trained_on", [])]
        return ModelLineage(**raw)

    def models(self) -> list[ModelLineage]:
        keys = [i.key for i in self.store.list(f"{PREFIX}/models") if i.key.endswith(".json")]
        return [m for m in _parallel(self._model, keys) if m is not None]

    def graph(self) -> LineageGraph:
        """The whole graph (one listing of the lineage prefix, then parallel reads)."""
        graph = LineageGraph()
        infos = list(self.store.list(PREFIX))
        done = {
            i.key.split("/")[3] for i in infos if i.key.endswith(f"/{DONE}") and "/runs/" in i.key
        }
        events = [i.key for i in infos if "/runs/" in i.key and i.key.endswith(".json")]
        models = [i.key for i in infos if "/models/" in i.key and i.key.endswith(".json")]
        for event in _parallel(self._event, events):
            if event is None:
                continue
            run = run_node(event.run_id)
            graph.add(Node(run, "run", event.workload or "", complete=event.run_id in done))
            data = dataset_node(event.dataset, event.version)
            graph.add(Node(data, "dataset", event.dataset, event.version))
            if event.kind == "read":
                graph.link(data, run, "read")
            else:
                graph.link(run, data, "wrote")
        for record in _parallel(self._model, models):
            if record is None:
                continue
            node = model_node(record.model, record.version)
            graph.add(Node(node, "model", record.model, record.version))
            for name, version in record.trained_on:
                data = dataset_node(name, version)
                graph.add(Node(data, "dataset", name, version))
                graph.link(data, node, "trained")
            if record.run_id:
                run = run_node(record.run_id)
                graph.add(Node(run, "run", "", complete=record.run_id in done))
                graph.link(run, node, "published")
        return graph

    def upstream(self, ref: str) -> LineageGraph:
        """What `ref` came from: `model:clf@2`, `run:<id>`, `trips@3` (or `dataset:trips@3`)."""
        graph = self.graph()
        return graph.upstream(_starts(graph, ref))

    def downstream(self, ref: str) -> LineageGraph:
        """What came from `ref`; `trips` (no version) starts from every version of it."""
        graph = self.graph()
        return graph.downstream(_starts(graph, ref))


def _starts(graph: LineageGraph, ref: str) -> list[str]:
    if ref.startswith(("model:", "run:")):
        return [ref]
    text = ref.removeprefix("dataset:")
    parsed = parse_ref(text)
    if parsed.version is not None:
        return [dataset_node(parsed.name, parsed.version)]
    if parsed.as_of is not None:
        raise UsageError(f"{ref!r}: lineage is by version number (trips@3), not by time")
    return [n.id for n in graph.datasets() if n.name == parsed.name]


def _pair(item: tuple[str, int] | str) -> tuple[str, int]:
    if isinstance(item, str):
        ref = parse_ref(item)
        if ref.version is None:
            raise UsageError(f"{item!r}: name the version a model was trained on (trips@3)")
        return ref.name, ref.version
    name, version = item
    return str(name), int(version)


def _check_id(run_id: str) -> None:
    if not run_id or "/" in run_id or run_id.startswith("."):
        raise UsageError(f"invalid run id {run_id!r}")


def _dump(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, indent=1).encode()


def _parallel(fn: Any, items: list[str]) -> list[Any]:
    if len(items) <= 1:
        return [fn(i) for i in items]
    with ThreadPoolExecutor(max_workers=min(16, len(items))) as pool:
        return list(pool.map(fn, items))
