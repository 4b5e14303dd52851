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
import os
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson

from mizzen._version import __version__
from mizzen.serve.batching import Batcher, Coalescer, Overloaded
from mizzen.serve.config import ServeConfig
from mizzen.serve.metrics import Metrics
from mizzen.serve.model import LoadedModel
from mizzen.serve.protocol import PlainCodec, loads, parse_v2
from mizzen.serve.signature import BadInput
from mizzen.serve.state import Loader, ModelEntry, ModelSource, ReloadEvent, refresh

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

_JSON = b"application/json"
VERSION_HEADER = b"x-mizzen-model-version"


class HTTPError(Exception):
    def __init__(
        self, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or []


class TooLarge(Exception):
    pass


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
                if path == "/predict" or (
                    path.startswith("/v1/models/") and path.endswith(":predict")
                ):
                    protocol = "v1"
                    name = path[11:-8] if path != "/predict" else self._default_name()
                    status, out, payload, model = await self.predict(name, headers, body)
                elif path.endswith("/infer") and path.startswith("/v2/models/"):
                    name, version = _model_path(path[11:-6])
                    status, out, payload, model = await self.infer_v2(name, version, headers, body)
                else:
                    raise HTTPError(404, f"no route POST {path}")
            elif method in ("GET", "HEAD"):
                protocol = "meta"
                status, out, payload = self.get(path)
            else:
                raise HTTPError(405, f"method {method} not allowed")
        except HTTPError as exc:
            status, out, payload = exc.status, exc.headers, orjson.dumps({"error": exc.message})
        except BadInput as exc:
            status, out, payload = 400, [], orjson.dumps({"error": str(exc)})
        except TooLarge:
            status, out = 413, [(b"connection", b"close")]
            payload = orjson.dumps(
                {
                    "error": f"request body larger than the limit of {self.config.max_body_bytes} bytes"
                }
            )
            self.metrics.inc("mizzen_rejected_total", (name, "too_large"))
        except Overloaded:
            status, out = 503, [(b"retry-after", b"1")]
            payload = orjson.dumps(
                {"error": f"model {name!r} is overloaded: its queue is full, retry shortly"}
            )
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
            self.metrics.request(name, "", protocol, status, elapsed)
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

    async def call(
        self, entry_name: str, model: LoadedModel, feeds: dict[str, Any], rows: int
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
        return await batcher.submit(feeds, rows)

    async def infer_v2(
        self, name: str, version: str | None, headers: Headers, body: bytes | None
    ) -> tuple[int, Headers, bytes, LoadedModel]:
        if body is None:
            raise TooLarge
        model = self.choose(name, version, headers)
        hl = header(headers, b"inference-header-content-length")
        request = parse_v2(body, int(hl) if hl is not None else None)
        feeds, rows = request.feeds(model)
        outputs = await self.call(name, model, feeds, rows)
        payload, header_length = request.encode(model, outputs)
        hot = self._hot(model)
        if header_length is None:
            return 200, hot.ok_headers, payload, model
        out = [
            (VERSION_HEADER, hot.version.encode()),
            (b"inference-header-content-length", str(header_length).encode()),
            (b"content-type", b"application/octet-stream"),
        ]
        return 200, out, payload, model

    async def predict(
        self, name: str, headers: Headers, body: bytes | None
    ) -> tuple[int, Headers, bytes, LoadedModel]:
        if body is None:
            raise TooLarge
        model = self.choose(name, None, headers)
        hot = self._hot(model)
        feeds, rows = hot.plain.feeds(loads(body))
        outputs = await self.call(name, model, feeds, rows)
        return 200, hot.ok_headers, hot.plain.encode(outputs), model

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
