"""The model server: a plain ASGI app (no framework on the hot path).

Routes
  GET  /v2/health/live, /v2/health/ready, /v2, /v2/models/{m}[/versions/{v}][/ready]
  POST /v2/models/{m}[/versions/{v}]/infer      Open Inference Protocol v2 (+ binary tensors)
  POST /v1/models/{m}:predict, POST /predict    {"instances": [...]} or {"inputs": ...}
  GET  /metrics                                 Prometheus text format
A request may pin a version with the `x-mizzen-model-version` header; every answer from a
model carries that header with the version that answered.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import os
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from mizzen._version import __version__
from mizzen.serve.batching import Batcher, Coalescer, Overloaded
from mizzen.serve.config import ServeConfig
from mizzen.serve.metrics import Metrics
from mizzen.serve.model import LoadedModel
from mizzen.serve.protocol import PlainCodec, V2Request, declared_rows, loads, parse_v2
from mizzen.serve.signature import BadInput
from mizzen.serve.state import Loader, ModelEntry, ModelSource, ReloadEvent, refresh

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

_JSON = b"application/json"
VERSION_HEADER = b"x-mizzen-model-version"


UNKNOWN = "_unknown"  # the metrics label of every model name this server does not serve


class HTTPError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        headers: list[tuple[bytes, bytes]] | None = None,
        *,
        reason: str = "",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []
        self.reason = reason  # counted in mizzen_rejected_total when set


class TooLarge(Exception):
    pass


# A request with more rows than this runs in slices of this many rows, one large request at a
# time per worker, so small requests keep moving; a body larger than LARGE_BODY waits for its
# turn before it is even parsed. Large bodies are parsed with the garbage collector paused:
# the many lists they make are freed by reference counting and never trigger a collection.
SLICE_ROWS = 1024
LARGE_BODY = 64 * 1024
LARGE = "large"  # what HeavyLane's Overloaded says


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


class HeavyLane:
    """Large requests take turns (arrival order); while one runs, the event loop still serves
    every small request between its slices. Past `max_waiting` waiting requests, or
    `max_bytes` of their bodies, another is refused (`Overloaded`)."""

    def __init__(self, max_waiting: int, max_bytes: int) -> None:
        self.max_waiting = max_waiting
        self.max_bytes = max_bytes
        self.waiting = 0
        self.waiting_bytes = 0
        self._lock = asyncio.Lock()

    async def acquire(self, size: int) -> None:
        """Wait for this request's turn (`size`: its body's bytes); then `release()`."""
        if self._lock.locked() and (
            self.waiting >= self.max_waiting or self.waiting_bytes + size > self.max_bytes
        ):
            raise Overloaded(LARGE)
        self.waiting += 1
        self.waiting_bytes += size
        try:
            await self._lock.acquire()
        finally:
            self.waiting -= 1
            self.waiting_bytes -= size

    def release(self) -> None:
        self._lock.release()


def default_source(config: ServeConfig) -> ModelSource:
    from mizzen.storage.project import project_store
    from mizzen.storage.registry import ModelRegistry

    return ModelRegistry(project_store(config.spec_file, config.env))


class ServeApp:
    def __init__(
        self,
        config: ServeConfig,
        source_factory: Callable[[ServeConfig], ModelSource] = default_source,
    ) -> None:
        self.config = config
        self.source_factory = source_factory
        self.entries: dict[str, ModelEntry] = {
            m.name: ModelEntry(
                m.name, m.routes, max_batch_size=m.max_batch_size, max_latency=m.max_latency
            )
            for m in config.models
        }
        self.metrics = Metrics(
            Path(config.metrics_dir) if config.metrics_dir and config.workers > 1 else None
        )
        self.loader: Loader | None = None
        self.batchers: dict[tuple[str, int], Batcher] = {}
        self.started = False
        self.stopping = False
        self._log: list[bytes] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._hots: dict[tuple[str, int], _Hot] = {}
        self._only = next(iter(self.entries.values())) if len(self.entries) == 1 else None
        self._recorders: dict[tuple[str, str], Callable[[int, float], None]] = {}
        self._refusals: dict[tuple[str, str], bytes] = {}
        self._few_rows = min(SLICE_ROWS, config.max_rows)  # no checks needed up to this
        self._heavy = HeavyLane(config.max_queue, max(4 * config.max_body_bytes, 64 << 20))

    # -- ASGI ------------------------------------------------------------------------------

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self.http(scope, receive, send)
        elif kind == "lifespan":
            await self.lifespan(receive, send)

    async def lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    self.log_event("startup_failed", error=str(exc))
                    self.flush_log()
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def startup(self) -> None:
        self.loader = Loader(
            await asyncio.to_thread(self.source_factory, self.config),
            allow_python=self.config.allow_python,
        )
        for entry in self.entries.values():
            events = await asyncio.to_thread(refresh, entry, self.loader, initial=True)
            self.report(events)
            for m in entry.loaded():
                if m.flavour == "python":
                    self.log_event(
                        "slow_flavour",
                        model=m.name,
                        version=m.version,
                        message="serving a python (pickled) model: slower than ONNX",
                    )
        self.started = True
        gc.collect()
        gc.freeze()  # what start-up loaded stays: full collections need not walk it again
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._flush_loop())]
        if self.config.poll_seconds > 0 and any(
            r.moves for e in self.entries.values() for r in e.routes
        ):
            self._tasks.append(loop.create_task(self._watch_loop()))

    async def shutdown(self) -> None:
        self.stopping = True
        for batcher in list(self.batchers.values()):
            await batcher.close()
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.metrics.remove_snapshot()
        self.log_event("stopped")
        self.flush_log()
        if self.loader is not None:
            self.loader.close()

    # -- background work -------------------------------------------------------------------

    async def _watch_loop(self) -> None:
        assert self.loader is not None
        while True:
            await asyncio.sleep(self.config.poll_seconds)
            for entry in self.entries.values():
                try:
                    events = await asyncio.to_thread(refresh, entry, self.loader)
                except Exception as exc:  # never let the watcher die
                    self.log_event("watch_error", model=entry.name, error=str(exc))
                    continue
                self.report(events)
            await asyncio.to_thread(self.loader.forget_unused, list(self.entries.values()))

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(0.5)
            self.flush_log()
            if self.metrics.shared_dir is not None:
                self.metrics.write_snapshot()

    def report(self, events: list[ReloadEvent]) -> None:
        for ev in events:
            if ev.ok:
                self.metrics.inc("mizzen_model_reloads_total", (ev.model, ev.ref, "ok"))
                self.metrics.set("mizzen_model_version", (ev.model, ev.ref), ev.new)
                self.log_event(
                    "model_loaded", model=ev.model, ref=ev.ref, version=ev.new, previous=ev.old
                )
            else:
                self.metrics.inc("mizzen_model_reloads_total", (ev.model, ev.ref, "failed"))
                self.metrics.inc("mizzen_model_load_errors_total", (ev.model, str(ev.new)))
                self.log_event(
                    "model_load_failed",
                    model=ev.model,
                    ref=ev.ref,
                    version=ev.new,
                    kept=ev.old,
                    error=ev.error,
                )

    def log_event(self, event: str, **fields: Any) -> None:
        self._log.append(
            orjson.dumps({"ts": time.time(), "event": event, "pid": os.getpid(), **fields})
        )

    def flush_log(self) -> None:
        if self._log:
            lines, self._log = self._log, []
            with contextlib.suppress(OSError, ValueError):
                sys.stderr.buffer.write(b"\n".join(lines) + b"\n")
                sys.stderr.buffer.flush()

    # -- HTTP ------------------------------------------------------------------------------

    async def http(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        method: str = scope["method"]
        headers: Headers = scope["headers"]
        body = await self.read_body(headers, receive) if method == "POST" else b""
        status, out, payload = await self.handle(method, scope["path"], headers, body, start)
        out = [*out, (b"content-length", str(len(payload)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": payload if method != "HEAD" else b""})

    async def handle(
        self,
        method: str,
        path: str,
        headers: Headers,
        body: bytes | None,
        start: float | None = None,
    ) -> tuple[int, Headers, bytes]:
        """Answer one request: (status, headers without content-length, body).

        The single implementation of the routes, used by the ASGI app and by the built-in HTTP
        server. `body` is None when it was larger than the limit (the answer is a 413).
        """
        if start is None:
            start = time.perf_counter()
        model: LoadedModel | None = None
        protocol = "v2"
        name = ""
        try:
            if method == "POST":
                version: str | None = None
                if path == "/predict" or (
                    path.startswith("/v1/models/") and path.endswith(":predict")
                ):
                    protocol = "v1"
                    name = path[11:-8] if path != "/predict" else self._default_name()
                    route = self.predict
                elif path.endswith("/infer") and path.startswith("/v2/models/"):
                    name, version = _model_path(path[11:-6])
                    route = self.infer_v2
                else:
                    raise HTTPError(404, f"no route POST {path}")
                if body is None:
                    raise TooLarge
                model = self.choose(name, version, headers)
                if self.batchers:
                    self._admit(model)
                status, out, payload = await route(name, model, headers, body)
            elif method in ("GET", "HEAD"):
                protocol = "meta"
                status, out, payload = self.get(path)
            else:
                raise HTTPError(405, f"method {method} not allowed")
        except HTTPError as exc:
            status, out, payload = exc.status, exc.headers, orjson.dumps({"error": exc.message})
            if exc.reason:
                self.metrics.inc("mizzen_rejected_total", (self._label(name), exc.reason))
        except BadInput as exc:
            status, out, payload = 400, [], orjson.dumps({"error": str(exc)})
        except TooLarge:
            status, out = 413, [(b"connection", b"close")]
            payload = orjson.dumps(
                {
                    "error": f"request body larger than the limit of {self.config.max_body_bytes} bytes"
                }
            )
            self.metrics.inc("mizzen_rejected_total", (self._label(name), "too_large"))
        except Overloaded as exc:
            status, out = 503, [(b"retry-after", b"1")]
            payload = self._overloaded(name, exc.args[0] if exc.args else "")
            self.metrics.inc("mizzen_rejected_total", (name, "overloaded"))
        except Exception as exc:
            status, out = 500, []
            payload = orjson.dumps({"error": f"{type(exc).__name__}: {exc}"})
        if status != 200 or protocol == "meta":
            if not any(h[0] == b"content-type" for h in out):
                out = [*out, (b"content-type", _JSON)]
            if protocol == "meta":
                return status, out, payload
        elapsed = time.perf_counter() - start
        if model is not None:
            hot = self._hot(model)
            version = hot.version
            record = hot.recorders.get(protocol)
            if record is None:
                record = hot.recorders[protocol] = self.metrics.recorder(
                    model.name, version, protocol
                )
            record(status, elapsed)
        else:
            version = ""
            label = self._label(name)
            record = self._recorders.get((label, protocol))
            if record is None:
                record = self._recorders[(label, protocol)] = self.metrics.recorder(
                    label, "", protocol
                )
            record(status, elapsed)
        if self.config.access_log:
            self._log.append(
                b'{"ts":%.6f,"method":%s,"path":%s,"status":%d,"model":%s,"version":"%s","ms":%.3f}'
                % (
                    time.time(),
                    orjson.dumps(method),
                    orjson.dumps(path),
                    status,
                    orjson.dumps(name),
                    version.encode(),
                    elapsed * 1000,
                )
            )
        return status, out, payload

    async def read_body(self, headers: Headers, receive: Receive) -> bytes | None:
        """The request body from ASGI messages, or None past the size limit."""
        limit = self.config.max_body_bytes
        length = header(headers, b"content-length")
        if length is not None and int(length) > limit:
            return None
        message = await receive()
        body: bytes = message.get("body", b"")
        if not message.get("more_body"):
            return body
        parts = [body]
        size = len(body)
        while message.get("more_body"):
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            parts.append(chunk)
        return b"".join(parts)

    def choose(self, name: str, version: str | None, headers: Headers) -> LoadedModel:
        entry = self.entries.get(name)
        if entry is None:
            raise HTTPError(
                404, f"model {name!r} is not served here; served: {', '.join(self.entries)}"
            )
        pin = version
        if pin is None:
            pinned = header(headers, VERSION_HEADER)
            if pinned is None:
                return entry.pick()
            pin = pinned.decode()
        model = entry.pinned(pin)
        if model is None:
            served = ", ".join(str(m.version) for m in entry.loaded())
            raise HTTPError(
                404, f"model {name!r} version {pin!r} is not served here; served versions: {served}"
            )
        return model

    def _hot(self, model: LoadedModel) -> _Hot:
        hot = self._hots.get((model.name, model.version))
        if hot is None or hot.model is not model:
            hot = self._hots[(model.name, model.version)] = _Hot(
                model, self.metrics, self.config.coalesce
            )
        return hot

    def _admit(self, model: LoadedModel) -> None:
        """Refuse before parsing anything when the model's queue is already full."""
        batcher = self.batchers.get((model.name, model.version))
        if batcher is not None and batcher.full:
            raise Overloaded

    def _label(self, name: str) -> str:
        """`name` as a metrics label: only served models get their own series."""
        return name if name in self.entries or not name else UNKNOWN

    def _overloaded(self, name: str, what: str) -> bytes:
        payload = self._refusals.get((name, what))
        if payload is None:
            why = (
                "too many large requests wait their turn" if what == LARGE else "its queue is full"
            )
            payload = self._refusals[(name, what)] = orjson.dumps(
                {"error": f"model {name!r} is overloaded: {why}, retry shortly"}
            )
        return payload

    async def call(
        self,
        entry_name: str,
        model: LoadedModel,
        feeds: dict[str, Any],
        rows: int,
        *,
        admitted: bool = False,
    ) -> dict[str, Any]:
        entry = self.entries[entry_name]
        hot = self._hot(model)
        if entry.max_batch_size is None and not hot.offload:
            if hot.coalescer is not None:
                return await hot.coalescer.submit(feeds, rows)
            out = model.run(feeds)
            hot.batch_size(rows)
            return out
        key = (model.name, model.version)
        batcher = self.batchers.get(key)
        if batcher is None:
            size = entry.max_batch_size if model.batchable and entry.max_batch_size else 1
            batcher = self.batchers[key] = Batcher(
                model,
                max_batch_size=size,
                max_latency=entry.max_latency,
                max_queue=self.config.max_queue,
                on_batch=hot.batch_size,
            )
        return await batcher.submit(feeds, rows, force=admitted)

    async def infer_v2(
        self, name: str, model: LoadedModel, headers: Headers, body: bytes
    ) -> tuple[int, Headers, bytes]:
        hl = header(headers, b"inference-header-content-length")
        length = int(hl) if hl is not None else None
        if len(body) > LARGE_BODY:
            await self._heavy.acquire(len(body))
            try:
                with collector_paused():
                    request = parse_v2(body, length)
                    self._check_rows(model, request.declared_rows())
                    feeds, rows = request.feeds(model)
                    request.forget_inputs()
                self._check_rows(model, rows)
                parts = await self._sliced(name, model, feeds, rows, True, None)
            finally:
                self._heavy.release()
            outputs = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
            return self._v2_answer(model, request, outputs)
        request = parse_v2(body, length)
        feeds, rows = request.feeds(model)
        if rows > self._few_rows:
            self._check_rows(model, rows)
        if rows > SLICE_ROWS:
            parts = await self._sliced(name, model, feeds, rows, False, None)
            outputs = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        else:
            outputs = await self.call(name, model, feeds, rows)
        return self._v2_answer(model, request, outputs)

    def _v2_answer(
        self, model: LoadedModel, request: V2Request, outputs: dict[str, Any]
    ) -> tuple[int, Headers, bytes]:
        payload, header_length = request.encode(model, outputs)
        hot = self._hot(model)
        if header_length is None:
            return 200, hot.ok_headers, payload
        out = [
            (VERSION_HEADER, hot.version.encode()),
            (b"inference-header-content-length", str(header_length).encode()),
            (b"content-type", b"application/octet-stream"),
        ]
        return 200, out, payload

    async def predict(
        self, name: str, model: LoadedModel, headers: Headers, body: bytes
    ) -> tuple[int, Headers, bytes]:
        hot = self._hot(model)
        if len(body) > LARGE_BODY:
            await self._heavy.acquire(len(body))
            try:
                with collector_paused():
                    doc = loads(body)
                    self._check_rows(model, declared_rows(doc))
                    feeds, rows = hot.plain.feeds(doc)
                    del doc  # freed while the collector is paused: it never sees its lists
                self._check_rows(model, rows)
                parts = await self._sliced(name, model, feeds, rows, True, hot.plain.predictions)
            finally:
                self._heavy.release()
            return 200, hot.ok_headers, hot.plain.joined(parts)
        feeds, rows = hot.plain.feeds(loads(body))
        if rows > self._few_rows:
            self._check_rows(model, rows)
            if rows > SLICE_ROWS:
                parts = await self._sliced(name, model, feeds, rows, False, hot.plain.predictions)
                return 200, hot.ok_headers, hot.plain.joined(parts)
        outputs = await self.call(name, model, feeds, rows)
        return 200, hot.ok_headers, hot.plain.encode(outputs)

    def _check_rows(self, model: LoadedModel, rows: int) -> None:
        if rows > self.config.max_rows and model.batchable:
            raise HTTPError(
                413,
                f"the request has {rows} rows; this server takes at most {self.config.max_rows} "
                "rows per request: split it into several requests",
                reason="too_many_rows",
            )

    async def _sliced(
        self,
        name: str,
        model: LoadedModel,
        feeds: dict[str, Any],
        rows: int,
        in_lane: bool,
        encode: Callable[[dict[str, Any]], Any] | None,
    ) -> list[Any]:
        """A large request in slices of SLICE_ROWS rows, one large request at a time, the
        event loop serving other requests between slices (and between encoded parts)."""
        if not in_lane:
            await self._heavy.acquire(0)
            try:
                return await self._sliced(name, model, feeds, rows, True, encode)
            finally:
                self._heavy.release()
        parts = []
        for start in range(0, rows, SLICE_ROWS):
            part = {k: v[start : start + SLICE_ROWS] for k, v in feeds.items()}
            out = await self.call(name, model, part, min(SLICE_ROWS, rows - start), admitted=True)
            if encode is None:
                parts.append(out)
            else:
                with collector_paused():
                    parts.append(encode(out))
            await asyncio.sleep(0)
        return parts

    def _default_name(self) -> str:
        if self._only is None:
            served = ", ".join(self.entries)
            raise HTTPError(
                400, f"several models are served ({served}): POST to /v1/models/NAME:predict"
            )
        return self._only.name

    # -- metadata and health ---------------------------------------------------------------

    def get(self, path: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        if path == "/v2/health/live":
            return 200, [], b'{"live":true}'
        if path == "/v2/health/ready":
            ready = self.ready
            return (200 if ready else 503), [], orjson.dumps({"ready": ready})
        if path == "/metrics":
            return (
                200,
                [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8")],
                self.render_metrics().encode(),
            )
        if path in ("/v2", "/v2/"):
            return (
                200,
                [],
                orjson.dumps(
                    {"name": "mizzen", "version": __version__, "extensions": ["binary_tensor_data"]}
                ),
            )
        if path.startswith("/v2/models/"):
            rest = path[11:]
            want_ready = rest.endswith("/ready")
            if want_ready:
                rest = rest[:-6]
            name, version = _model_path(rest)
            entry = self.entries.get(name)
            if entry is None:
                raise HTTPError(
                    404, f"model {name!r} is not served here; served: {', '.join(self.entries)}"
                )
            model = (
                entry.pinned(version)
                if version
                else (entry.routes[0].model if entry.ready else None)
            )
            if version and model is None:
                raise HTTPError(404, f"model {name!r} version {version!r} is not served here")
            if want_ready:
                ok = model is not None and self.started and not self.stopping
                return (200 if ok else 503), [], orjson.dumps({"name": name, "ready": ok})
            if model is None:
                raise HTTPError(503, f"model {name!r} is not loaded yet")
            return 200, [], orjson.dumps(self.model_metadata(entry, model, bool(version)))
        raise HTTPError(404, f"no route GET {path}")

    @property
    def ready(self) -> bool:
        return self.started and not self.stopping and all(e.ready for e in self.entries.values())

    def model_metadata(self, entry: ModelEntry, model: LoadedModel, pinned: bool) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "name": entry.name,
            "versions": [str(m.version) for m in entry.loaded()]
            if not pinned
            else [str(model.version)],
            "platform": model.platform,
            "inputs": [t.to_dict() for t in model.inputs],
            "outputs": [t.to_dict() for t in model.outputs],
            "parameters": {
                "routes": {
                    r.ref: {"weight": r.weight, "version": r.model.version if r.model else None}
                    for r in entry.routes
                }
            },
        }
        if model.flavour == "python":
            doc["parameters"]["warning"] = "python (pickled) model: slower than ONNX"
        return doc

    def render_metrics(self) -> str:
        for entry in self.entries.values():
            depth = sum(b.depth for (n, _), b in self.batchers.items() if n == entry.name)
            self.metrics.set("mizzen_queue_depth", (entry.name,), depth)
        return self.metrics.render()


class _Hot:
    """What the request path needs about one loaded model, computed once."""

    def __init__(self, model: LoadedModel, metrics: Metrics, coalesce: bool) -> None:
        self.model = model
        self.version = str(model.version)
        self.ok_headers: Headers = [
            (VERSION_HEADER, self.version.encode()),
            (b"content-type", _JSON),
        ]
        self.plain = PlainCodec(model)
        self.offload = model.offload
        self.recorders: dict[str, Callable[[int, float], None]] = {}
        self.batch_size = metrics.observer("mizzen_batch_size", (model.name, self.version))
        self.coalescer = (
            Coalescer(model, on_batch=self.batch_size) if model.batchable and coalesce else None
        )


def header(headers: Headers, name: bytes) -> bytes | None:
    """The value of a (lower-case) header, or None."""
    for key, value in headers:
        if key == name:
            return value
    return None


def _model_path(rest: str) -> tuple[str, str | None]:
    """'m' -> (m, None); 'm/versions/3' -> (m, '3')."""
    if "/versions/" in rest:
        name, version = rest.split("/versions/", 1)
        return name, version
    return rest, None


def app_from_env() -> ServeApp:
    """Factory used by each worker process (`uvicorn --factory`)."""
    return ServeApp(ServeConfig.from_env())
