"""The signals' latest values as Prometheus metrics: a small HTTP service reading the values
table (`GET /metrics`, `GET /healthz`).

Why a service that reads the table rather than a Pushgateway the computation pushes to: the
table is already the truth, so the exporter holds no state (a restart loses nothing, two
replicas agree), needs nothing else installed in the cluster, and "the latest complete
bucket" is decided at scrape time, as mizzen's own alerts decide it. mizzen adds it itself
(`mizzen-signals`, a service) when a signal has alerts; in a cluster with the Prometheus
operator a ServiceMonitor makes Prometheus scrape it and a PrometheusRule holds the alerts
(`mizzen.notify.prometheus`).

Series, each labelled project, signal, dimension, segment, arm:

    mizzen_signal_value                       the latest complete bucket's value
    mizzen_signal_bucket_timestamp_seconds    that bucket's start
    mizzen_signal_rows                        rows it measured
    mizzen_signal_trailing_mean{window="N"}   mean of the N complete buckets before it
    mizzen_signal_trailing_median{window="N"} their median
    mizzen_signal_trailing_mad{window="N"}    their MAD, scaled by 1.4826 (a standard deviation)
    mizzen_signal_alert_firing{alert="..."}   mizzen's own verdict (1 firing, 0 not)
    mizzen_signal_computed_timestamp_seconds  when the signal was last computed (project, signal)
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mizzen.signals.definition import Signal
from mizzen.signals.watch import (
    MAD_SCALE,
    MIN_ANOMALY_HISTORY,
    MIN_CHANGE_HISTORY,
    complete,
    series,
)

if TYPE_CHECKING:
    from mizzen.storage.base import Store

CACHE_SECONDS = 30.0


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _line(name: str, labels: dict[str, str], value: float) -> str:
    body = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
    return f"{name}{{{body}}} {value!r}"


HELP = {
    "mizzen_signal_value": "The latest complete bucket's value of a mizzen signal",
    "mizzen_signal_bucket_timestamp_seconds": "Start of the bucket mizzen_signal_value is of",
    "mizzen_signal_rows": "Rows measured in that bucket",
    "mizzen_signal_trailing_mean": "Mean of the complete buckets before the latest (window: how many)",
    "mizzen_signal_trailing_median": "Median of the complete buckets before the latest",
    "mizzen_signal_trailing_mad": "Median absolute deviation of those buckets, times 1.4826",
    "mizzen_signal_alert_firing": "1 when mizzen's own judgement of the alert fires",
    "mizzen_signal_computed_timestamp_seconds": "When the signal was last computed",
}


def windows(signal: Signal) -> dict[tuple[str, str], set[int]]:
    """(dimension or '', 'mean'|'median') -> the trailing windows its alerts use."""
    out: dict[tuple[str, str], set[int]] = {}
    for a in signal.alerts:
        if a.trailing is None:
            continue
        kind = "mean" if a.condition == "change" else "median"
        out.setdefault((a.dimension or "", kind), set()).add(a.trailing)
    return out


def render(
    project: str, signals: Iterable[Signal], store: Store, now: datetime | None = None
) -> str:
    from mizzen.signals import values
    from mizzen.signals.watch import evaluate

    now = now or datetime.now(UTC)
    table = values.table(store)
    lines: dict[str, list[str]] = {name: [] for name in HELP}
    for signal in signals:
        rows = values.read(table, signal.name)
        if rows.num_rows == 0:
            continue
        base = {"project": project, "signal": signal.name}
        records = rows.select(
            ["dimension", "segment", "arm", "computed_at", "n", "bucket"]
        ).to_pylist()
        keys = sorted({(r["dimension"], r["segment"], r["arm"]) for r in records})
        computed = max(r["computed_at"] for r in records)
        lines["mizzen_signal_computed_timestamp_seconds"].append(
            _line("mizzen_signal_computed_timestamp_seconds", base, _utc(computed).timestamp())
        )
        rows_of = {
            (r["dimension"], r["segment"], r["arm"], _utc(r["bucket"])): r["n"] for r in records
        }
        wanted = windows(signal)
        for dimension, segment, arm in keys:
            points = complete(
                series(rows, dimension, segment, arm), signal.grain, signal.time_zone, now
            )
            if not points:
                continue
            last = points[-1]
            labels = {**base, "dimension": dimension, "segment": segment, "arm": arm}
            lines["mizzen_signal_value"].append(_line("mizzen_signal_value", labels, last.value))
            lines["mizzen_signal_bucket_timestamp_seconds"].append(
                _line("mizzen_signal_bucket_timestamp_seconds", labels, last.bucket.timestamp())
            )
            n = rows_of.get((dimension, segment, arm, last.bucket))
            if n is not None:
                lines["mizzen_signal_rows"].append(_line("mizzen_signal_rows", labels, float(n)))
            if arm:
                continue
            before = [p.value for p in points[:-1]]
            for kind in ("mean", "median"):
                for w in sorted(wanted.get((dimension, kind), set())):
                    window = before[-w:]
                    # no series where mizzen's own rule says there is too little history
                    need = min(w, MIN_CHANGE_HISTORY) if kind == "mean" else MIN_ANOMALY_HISTORY
                    if len(window) < need:
                        continue
                    at = {**labels, "window": str(w)}
                    if kind == "mean":
                        lines["mizzen_signal_trailing_mean"].append(
                            _line("mizzen_signal_trailing_mean", at, sum(window) / len(window))
                        )
                        continue
                    median = statistics.median(window)
                    mad = statistics.median(abs(v - median) for v in window) * MAD_SCALE
                    lines["mizzen_signal_trailing_median"].append(
                        _line("mizzen_signal_trailing_median", at, median)
                    )
                    lines["mizzen_signal_trailing_mad"].append(
                        _line("mizzen_signal_trailing_mad", at, mad)
                    )
        for v in evaluate(signal, rows, now):
            labels = {**base, "alert": v.alert, "dimension": v.dimension, "segment": v.segment}
            lines["mizzen_signal_alert_firing"].append(
                _line("mizzen_signal_alert_firing", labels, 1.0 if v.firing else 0.0)
            )
    out = []
    for name, entries in lines.items():
        out += [f"# HELP {name} {HELP[name]}", f"# TYPE {name} gauge", *entries]
    return "\n".join(out) + "\n"


class Exporter:
    """The text of /metrics, rebuilt at most every CACHE_SECONDS."""

    def __init__(self, project: str, signals: list[Signal], store: Store) -> None:
        self.project = project
        self.signals = signals
        self.store = store
        self._text = ""
        self._at = 0.0
        self._lock = threading.Lock()

    def metrics(self) -> str:
        with self._lock:
            if not self._text or time.monotonic() - self._at > CACHE_SECONDS:
                self._text = render(self.project, self.signals, self.store)
                self._at = time.monotonic()
            return self._text


def serve(
    host: str | None,
    port: int,
    definitions: str | None,
    spec_file: Path | None = None,
    env: str | None = None,
) -> None:
    """Serve until interrupted. With `definitions` (mizzen's own service) everything comes
    from the run-time contract; without, from mizzen.yaml (a local look)."""
    import logging
    import os
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from mizzen import contract

    told = contract.read(os.environ)
    if definitions is not None:
        signals = [Signal.from_json(json.dumps(d)) for d in json.loads(definitions)]
        from mizzen.signals.compute import NO_STORE_HINT
        from mizzen.storage.project import contract_store

        given = contract_store()
        if given is None:
            from mizzen.errors import UsageError

            raise UsageError(
                f"the exporter reads the project store, and {contract.STORE} is not set",
                hint=NO_STORE_HINT,
            )
        store = given
        project = told.project or ""
    else:
        from mizzen.plan.cache import cached_plan
        from mizzen.signals.report import definitions as of_plan
        from mizzen.storage.project import project_store

        plan = cached_plan(spec_file, env, "local")
        signals = list(of_plan(plan).values())
        store = project_store(plan.spec_file, plan.env)
        project = plan.project
    exporter = Exporter(project, signals, store)
    log = logging.getLogger("mizzen.signals")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.split("?")[0] == "/healthz":
                self._send(200, "text/plain", b"ok\n")
                return
            if self.path.split("?")[0] != "/metrics":
                self._send(404, "text/plain", b"see /metrics\n")
                return
            try:
                body = exporter.metrics().encode()
            except Exception as exc:
                log.exception("rendering /metrics failed")
                self._send(500, "text/plain", f"{type(exc).__name__}: {exc}\n".encode())
                return
            self._send(200, "text/plain; version=0.0.4; charset=utf-8", body)

        def _send(self, status: int, ctype: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return

    bind = host or ("0.0.0.0" if told.target == "kubernetes" else "127.0.0.1")
    server = ThreadingHTTPServer((bind, port), Handler)
    print(
        f"mizzen signals exporter: {len(signals)} signal(s) on http://{bind}:{port}/metrics",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
