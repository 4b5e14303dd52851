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
from mizzen.serve.batching import Batcher, Overloaded
from mizzen.serve.config import ServeConfig
from mizzen.serve.metrics import Metrics
from mizzen.serve.model import LoadedModel
from mizzen.serve.protocol import loads, parse_v2, plain_encode, plain_feeds
from mizzen.serve.signature import BadInput
from mizzen.serve.state import Loader, ModelEntry, ModelSource, ReloadEvent, refresh

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

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
        method = scope["method"]
        path: str = scope["path"]
        model: LoadedModel | None = None
        protocol = "v2"
        name = ""
        try:
            if method == "POST":
                if path.endswith("/infer") and path.startswith("/v2/models/"):
                    name, version = _model_path(path[11:-6])
                    protocol = "v2"
                    status, headers, body, model = await self.infer_v2(
                        scope, receive, name, version
                    )
                elif path == "/predict" or (
                    path.startswith("/v1/models/") and path.endswith(":predict")
                ):
                    protocol = "v1"
                    name = path[11:-8] if path != "/predict" else self._default_name()
                    status, headers, body, model = await self.predict(scope, receive, name)
                else:
                    raise HTTPError(404 if method == "POST" else 405, f"no route POST {path}")
            elif method in ("GET", "HEAD"):
                protocol = "meta"
                status, headers, body = self.get(path)
            else:
                raise HTTPError(405, f"method {method} not allowed")
        except HTTPError as exc:
            status, headers, body = exc.status, exc.headers, orjson.dumps({"error": exc.message})
        except BadInput as exc:
            status, headers, body = 400, [], orjson.dumps({"error": str(exc)})
        except TooLarge:
            status, headers = 413, [(b"connection", b"close")]
            body = orjson.dumps(
                {
                    "error": f"request body larger than the limit of {self.config.max_body_bytes} bytes"
                }
            )
            self.metrics.inc("mizzen_rejected_total", (name, "too_large"))
        except Overloaded:
            status, headers = 503, [(b"retry-after", b"1")]
            body = orjson.dumps(
                {"error": f"model {name!r} is overloaded: its queue is full, retry shortly"}
            )
            self.metrics.inc("mizzen_rejected_total", (name, "overloaded"))
        except Exception as exc:
            status, headers, body = 500, [], orjson.dumps({"error": f"{type(exc).__name__}: {exc}"})
        if not any(h[0] == b"content-type" for h in headers):
            headers.append((b"content-type", _JSON))
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body if method != "HEAD" else b""})
        elapsed = time.perf_counter() - start
        if protocol != "meta":
            version = str(model.version) if model is not None else ""
            self.metrics.request(
                model.name if model is not None else name, version, protocol, status, elapsed
            )
            if self.config.access_log:
                self._log.append(
                    orjson.dumps(
                        {
                            "ts": time.time(),
                            "method": method,
                            "path": path,
                            "status": status,
                            "model": name,
                            "version": version,
                            "ms": round(elapsed * 1000, 3),
                        }
                    )
                )

    async def read_body(self, scope: Scope, receive: Receive) -> tuple[bytes, dict[bytes, bytes]]:
        headers = dict(scope["headers"])
        limit = self.config.max_body_bytes
        length = headers.get(b"content-length")
        if length is not None and int(length) > limit:
            raise TooLarge
        message = await receive()
        body: bytes = message.get("body", b"")
        if not message.get("more_body"):
            return body, headers
        parts = [body]
        size = len(body)
        while message.get("more_body"):
            message = await receive()
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                raise TooLarge
            parts.append(chunk)
        return b"".join(parts), headers

    def choose(self, name: str, version: str | None, headers: dict[bytes, bytes]) -> LoadedModel:
        entry = self.entries.get(name)
        if entry is None:
            raise HTTPError(
                404, f"model {name!r} is not served here; served: {', '.join(self.entries)}"
            )
        pin = version or (headers[VERSION_HEADER].decode() if VERSION_HEADER in headers else None)
        if pin is None:
            return entry.pick()
        model = entry.pinned(pin)
        if model is None:
            served = ", ".join(str(m.version) for m in entry.loaded())
            raise HTTPError(
                404, f"model {name!r} version {pin!r} is not served here; served versions: {served}"
            )
        return model

    async def call(
        self, entry_name: str, model: LoadedModel, feeds: dict[str, Any], rows: int
    ) -> dict[str, Any]:
        entry = self.entries[entry_name]
        if entry.max_batch_size is None and not model.offload:
            out = model.run(feeds)
            self.metrics.observe("mizzen_batch_size", (model.name, str(model.version)), rows)
            return out
        key = (model.name, model.version)
        batcher = self.batchers.get(key)
        if batcher is None:
            size = entry.max_batch_size if model.batchable and entry.max_batch_size else 1
            labels = (model.name, str(model.version))
            batcher = self.batchers[key] = Batcher(
                model,
                max_batch_size=size,
                max_latency=entry.max_latency,
                max_queue=self.config.max_queue,
                on_batch=lambda n: self.metrics.observe("mizzen_batch_size", labels, n),
            )
        return await batcher.submit(feeds, rows)

    async def infer_v2(
        self, scope: Scope, receive: Receive, name: str, version: str | None
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes, LoadedModel]:
        body, headers = await self.read_body(scope, receive)
        model = self.choose(name, version, headers)
        hl = headers.get(b"inference-header-content-length")
        request = parse_v2(body, int(hl) if hl is not None else None)
        feeds, rows = request.feeds(model)
        outputs = await self.call(name, model, feeds, rows)
        payload, header_length = request.encode(model, outputs)
        out_headers = [(VERSION_HEADER, str(model.version).encode())]
        if header_length is not None:
            out_headers.append((b"inference-header-content-length", str(header_length).encode()))
            out_headers.append((b"content-type", b"application/octet-stream"))
        return 200, out_headers, payload, model

    async def predict(
        self, scope: Scope, receive: Receive, name: str
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes, LoadedModel]:
        body, headers = await self.read_body(scope, receive)
        model = self.choose(name, None, headers)
        feeds, rows = plain_feeds(model, loads(body))
        outputs = await self.call(name, model, feeds, rows)
        return (
            200,
            [(VERSION_HEADER, str(model.version).encode())],
            plain_encode(model, outputs),
            model,
        )

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


def _model_path(rest: str) -> tuple[str, str | None]:
    """'m' -> (m, None); 'm/versions/3' -> (m, '3')."""
    if "/versions/" in rest:
        name, version = rest.split("/versions/", 1)
        return name, version
    return rest, None


def app_from_env() -> ServeApp:
    """Factory used by each worker process (`uvicorn --factory`)."""
    return ServeApp(ServeConfig.from_env())
