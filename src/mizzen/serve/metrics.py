"""Prometheus metrics, written in the text exposition format without a client library.

With several worker processes each worker writes a snapshot to a shared folder every
couple of seconds; whichever worker answers `/metrics` merges them with its own live values.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

LATENCY_BUCKETS = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)

# name -> (type, help, label names, buckets)
METRICS: dict[str, tuple[str, str, tuple[str, ...], tuple[float, ...]]] = {
    "mizzen_requests_total": (
        "counter",
        "Requests answered, by model, version, protocol and HTTP status.",
        ("model", "version", "protocol", "code"),
        (),
    ),
    "mizzen_request_duration_seconds": (
        "histogram",
        "Time from request received to response sent.",
        ("model", "version"),
        LATENCY_BUCKETS,
    ),
    "mizzen_batch_size": ("histogram", "Rows per model call.", ("model", "version"), BATCH_BUCKETS),
    "mizzen_rejected_total": (
        "counter",
        "Requests refused before reaching a model (overload, body too large, too many rows).",
        ("model", "reason"),
        (),
    ),
    "mizzen_model_reloads_total": (
        "counter",
        "Hot reloads, by result.",
        ("model", "ref", "result"),
        (),
    ),
    "mizzen_model_load_errors_total": (
        "counter",
        "Versions that failed to load or to run their example input.",
        ("model", "version"),
        (),
    ),
    "mizzen_model_version": (
        "gauge",
        "The version each route currently serves.",
        ("model", "ref"),
        (),
    ),
    "mizzen_queue_depth": ("gauge", "Requests waiting for a model call.", ("model",), ()),
}
_MAX_GAUGES = {"mizzen_model_version"}

Key = tuple[str, tuple[str, ...]]


class Metrics:
    def __init__(self, shared_dir: Path | None = None) -> None:
        self.values: dict[Key, float] = {}
        self.hists: dict[Key, list[float]] = {}  # bucket counts..., +Inf count, sum
        self.shared_dir = shared_dir
        self._snapshot_file = shared_dir / f"worker-{os.getpid()}.json" if shared_dir else None

    def inc(self, name: str, labels: tuple[str, ...], value: float = 1.0) -> None:
        key = (name, labels)
        self.values[key] = self.values.get(key, 0.0) + value

    def set(self, name: str, labels: tuple[str, ...], value: float) -> None:
        self.values[(name, labels)] = value

    def observe(self, name: str, labels: tuple[str, ...], value: float) -> None:
        key = (name, labels)
        buckets = METRICS[name][3]
        h = self.hists.get(key)
        if h is None:
            h = self.hists[key] = [0.0] * (len(buckets) + 2)
        h[bisect.bisect_left(buckets, value)] += 1
        h[-1] += value

    def observer(self, name: str, labels: tuple[str, ...]) -> Callable[[float], None]:
        """`observe(name, labels, value)` with the lookups done once: for the hot path."""
        h = self.hists.get((name, labels))
        if h is None:
            h = self.hists[(name, labels)] = [0.0] * (len(METRICS[name][3]) + 2)
        buckets = METRICS[name][3]
        where = bisect.bisect_left

        def observe(value: float) -> None:
            h[where(buckets, value)] += 1
            h[-1] += value

        return observe

    def recorder(self, model: str, version: str, protocol: str) -> Callable[[int, float], None]:
        """Count one answer (code, seconds) for one label set, the lookups done once."""
        values = self.values
        keys: dict[int, Key] = {}
        latency = self.observer("mizzen_request_duration_seconds", (model, version))

        def record(code: int, seconds: float) -> None:
            key = keys.get(code)
            if key is None:
                key = keys[code] = ("mizzen_requests_total", (model, version, protocol, str(code)))
            values[key] = values.get(key, 0.0) + 1.0
            latency(seconds)

        return record

    # -- several workers -----------------------------------------------------------------

    def snapshot(self) -> dict[str, Any]:
        return {
            "values": [[n, list(lb), v] for (n, lb), v in self.values.items()],
            "hists": [[n, list(lb), h] for (n, lb), h in self.hists.items()],
        }

    def write_snapshot(self) -> None:
        if self._snapshot_file is None:
            return
        tmp = self._snapshot_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.snapshot()))
        tmp.replace(self._snapshot_file)

    def remove_snapshot(self) -> None:
        if self._snapshot_file is not None:
            with contextlib.suppress(FileNotFoundError):
                self._snapshot_file.unlink()

    def _others(self) -> list[dict[str, Any]]:
        if self.shared_dir is None:
            return []
        out = []
        for file in self.shared_dir.glob("worker-*.json"):
            if file == self._snapshot_file:
                continue
            try:
                os.kill(int(file.stem.split("-", 1)[1]), 0)
                out.append(json.loads(file.read_text()))
            except (ProcessLookupError, ValueError, OSError):
                continue
        return out

    def render(self) -> str:
        values = dict(self.values)
        hists = {k: list(h) for k, h in self.hists.items()}
        for snap in self._others():
            for n, lb, v in snap["values"]:
                key = (n, tuple(lb))
                if n in _MAX_GAUGES:
                    values[key] = max(values.get(key, v), v)
                else:
                    values[key] = values.get(key, 0.0) + v
            for n, lb, h in snap["hists"]:
                key = (n, tuple(lb))
                mine = hists.get(key)
                hists[key] = h if mine is None else [a + b for a, b in zip(mine, h, strict=True)]
        return render_text(values, hists)


def _labels(names: tuple[str, ...], values: tuple[str, ...], extra: str = "") -> str:
    parts = [f'{n}="{_escape(v)}"' for n, v in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def render_text(values: dict[Key, float], hists: dict[Key, list[float]]) -> str:
    lines: list[str] = []
    for name, (kind, help_text, label_names, buckets) in METRICS.items():
        lines.append(f"# HELP {name} {help_text}")
        lines.append(f"# TYPE {name} {kind}")
        if kind == "histogram":
            for (n, lb), h in sorted(hists.items()):
                if n != name:
                    continue
                running = 0.0
                for bound, count in zip((*buckets, float("inf")), h[:-1], strict=True):
                    running += count
                    le = "+Inf" if bound == float("inf") else _num(bound)
                    tag = _labels(label_names, lb, 'le="' + le + '"')
                    lines.append(f"{name}_bucket{tag} {_num(running)}")
                lines.append(f"{name}_sum{_labels(label_names, lb)} {_num(h[-1])}")
                lines.append(f"{name}_count{_labels(label_names, lb)} {_num(running)}")
        else:
            for (n, lb), v in sorted(values.items()):
                if n == name:
                    lines.append(f"{name}{_labels(label_names, lb)} {_num(v)}")
    return "\n".join(lines) + "\n"
