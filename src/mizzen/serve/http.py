"""The model server's own HTTP/1.1 layer: `asyncio.Protocol` + httptools, no ASGI in between.

Requests go straight to `ServeApp.handle` (the one implementation of the routes, which the
ASGI app also uses). Keep-alive; Content-Length and chunked request bodies, size-limited
(413); pipelined requests answered in order; 400 for requests that do not parse; on SIGTERM or
SIGINT it stops accepting, lets in-flight requests finish (up to the drain timeout), then
stops the app. Several workers share the port with SO_REUSEPORT (`run_workers`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections import deque
from collections.abc import Coroutine, Generator
from functools import partial
from http import HTTPStatus
from typing import Any
from urllib.parse import unquote

import httptools
import orjson

from mizzen.errors import UsageError, WorkloadFailed
from mizzen.serve.app import Headers, ServeApp
from mizzen.serve.config import ENV_VAR, ServeConfig
from mizzen.serve.limits import LINGER_BYTES, LINGER_SECONDS, HeadGuard, HeadLimits, HeadRefused

_STATUS = {s.value: b"HTTP/1.1 %d %s\r\n" % (s.value, s.phrase.encode()) for s in HTTPStatus}
_METHODS = {m.encode(): m for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH")}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_MAX_PIPELINED = 64
KEEPALIVE_SECONDS = 75.0

Result = tuple[int, Headers, bytes]
Request = tuple[str, str, Headers, bytes | None, bool]
_Info = tuple[str, bool, bool]  # method, keep-alive, body refused


class _Resume:
    """Finish, inside a task, a coroutine that was started by hand and is waiting on `first`.

    Most requests never wait (the model runs inline), so each is first run synchronously; one
    that suspends on a future or a bare yield is resumed by callbacks (`_Connection._wait`),
    and only one waiting on anything else costs a task.
    """

    __slots__ = ("coro", "first")

    def __init__(self, coro: Coroutine[Any, Any, Result], first: Any) -> None:
        self.coro = coro
        self.first = first

    def __await__(self) -> Generator[Any, None, Result]:
        coro = self.coro
        pending = self.first
        while True:
            try:
                yield pending
            except BaseException as exc:  # cancellation thrown in by the task
                try:
                    pending = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
                continue
            try:
                pending = coro.send(None)
            except StopIteration as stop:
                return stop.value


async def _finish(coro: Coroutine[Any, Any, Result], first: Any) -> Result:
    return await _Resume(coro, first)


class _Server:
    """What the connections of one worker share."""

    def __init__(self, app: ServeApp, config: ServeConfig) -> None:
        self.app = app
        self.limit = config.max_body_bytes
        self.head_limits = HeadLimits.of(config)
        self.connections: set[_Connection] = set()
        self.draining = False
        self.loop = asyncio.get_running_loop()


class _Connection(asyncio.Protocol):
    def __init__(self, server: _Server) -> None:
        self.server = server
        self.handle = server.app.handle
        self.limit = server.limit
        self.transport: asyncio.Transport | None = None
        self.parser = httptools.HttpRequestParser(self)
        self.guard = HeadGuard(server.head_limits)
        self.time = server.loop.time
        self.head_started = 0.0  # when the head being read began (0: not reading one)
        self.began = False  # any request bytes received on this connection
        self.sunk = -1  # bytes thrown away after a refused head; -1 while not refused
        self.queue: deque[Request | bytes] = deque()
        self.busy = False
        self.paused = False
        self.reading_paused = False
        self.closing = False  # no more requests are read on this connection
        self.discarding = False  # skipping the rest of a body already answered with 413
        self.last = 0.0
        self.url = b""
        self.headers: Headers = []
        self.parts: list[bytes] = []
        self.size = 0

    # -- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.last = self.head_started = self.server.loop.time()
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.connections.discard(self)
        self.closing = True
        self.queue.clear()
        # Free what this connection holds now, not at the next garbage collection: the parser
        # and this protocol refer to each other.
        self.parser = None  # type: ignore[assignment]
        self.url = b""
        self.headers = []
        self.parts = []

    def data_received(self, data: bytes) -> None:
        if self.sunk >= 0:
            self.sunk += len(data)
            if self.sunk > LINGER_BYTES:
                self._close()
            return
        if self.closing and not self.discarding:
            return
        guard = self.guard
        try:
            if guard.in_head and guard.raw + len(data) > guard.max_bytes:
                guard.feed(data, self.parser.feed_data)  # may refuse: see HeadGuard
            else:
                guard.raw += len(data)
                self.parser.feed_data(data)
        except HeadRefused as exc:
            self._refuse_head(exc)
        except httptools.HttpParserUpgrade:
            self._refuse(400, "protocol upgrades are not supported")
        except httptools.HttpParserError as exc:
            if self.guard.refused is not None:
                self._refuse_head(self.guard.refused)
            elif self.discarding:
                self._close()
            else:
                self._refuse(400, f"malformed HTTP request: {exc}")

    def pause_writing(self) -> None:
        self.paused = True

    def resume_writing(self) -> None:
        self.paused = False
        self._next()

    # -- httptools callbacks ---------------------------------------------------------------

    def on_message_begin(self) -> None:
        self.url = b""
        self.headers = []
        self.parts = []
        self.size = 0
        self.began = True
        if self.guard.heads:
            self.head_started = self.time()

    def on_url(self, url: bytes) -> None:
        guard = self.guard
        guard.url += len(url)
        if guard.url > guard.max_url:
            guard.url_too_long()
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.lower(), value))

    def on_headers_complete(self) -> None:
        guard = self.guard
        if len(self.headers) > guard.limits.max_headers:
            guard.on_headers_complete(len(self.headers))  # refuses
        guard.in_head = False
        guard.heads += 1
        self.head_started = 0.0
        if self.closing:
            return
        length = expect = None
        for key, value in self.headers:
            if key == b"content-length":
                length = value
            elif key == b"expect":
                expect = value
        if length is not None and length.isdigit() and int(length) > self.limit:
            self._too_large()
        elif expect is not None and expect.lower() == b"100-continue" and self.transport:
            self.transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        if self.closing:
            return
        self.size += len(body)
        if self.size > self.limit:
            self._too_large()
        else:
            self.parts.append(body)

    def on_message_complete(self) -> None:
        guard = self.guard
        guard.in_head = True
        guard.raw = guard.url = 0
        if self.discarding:
            self.discarding = False  # the rest of a refused body: close once it is answered
            if self.idle:
                self._close()
            return
        if self.closing:
            return
        parts = self.parts
        body = parts[0] if len(parts) == 1 else b"".join(parts)
        self._enqueue(body, self.parser.should_keep_alive() and not self.server.draining)

    # -- requests and responses ------------------------------------------------------------

    def _too_large(self) -> None:
        self._enqueue(None, False)
        self.closing = self.discarding = True
        self.server.loop.call_later(1.0, self._close)

    def _enqueue(self, body: bytes | None, keep_alive: bool) -> None:
        method = self.parser.get_method()
        url = self.url
        if url[:1] != b"/":
            url = httptools.parse_url(url).path or b"/"
        cut = url.find(b"?")
        path = (url if cut < 0 else url[:cut]).decode("latin-1")
        if "%" in path:
            path = unquote(path)
        self.queue.append(
            (_METHODS.get(method) or method.decode("latin-1"), path, self.headers, body, keep_alive)
        )
        if len(self.queue) > _MAX_PIPELINED and self.transport is not None:
            self.reading_paused = True
            self.transport.pause_reading()
        self._next()

    def _refuse(self, status: int, message: str) -> None:
        """Answer `status` after whatever is already queued, then close."""
        body = orjson.dumps({"error": message})
        self.queue.append(
            _STATUS[status]
            + b"content-type: application/json\r\nconnection: close\r\ncontent-length: %d\r\n\r\n"
            % len(body)
            + body
        )
        self.closing = True
        self._next()

    def _refuse_head(self, refused: HeadRefused) -> None:
        """Answer a head past a limit (after what is queued), then read and drop what the
        client still sends for a moment, so it gets the answer rather than a reset."""
        self.head_started = 0.0
        self.sunk = 0
        self.queue.append(refused.response())
        self.closing = True
        self._next()

    def head_timed_out(self) -> None:
        if self.began:
            limit = self.server.head_limits.timeout
            self._refuse(408, f"the request headers took longer than {limit:g} s")
        else:
            self._close()

    def _next(self) -> None:
        while self.queue and not self.busy and not self.paused and self.transport is not None:
            item = self.queue.popleft()
            if isinstance(item, bytes):
                self.transport.write(item)
                if self.sunk >= 0 and self.transport.can_write_eof():
                    self.transport.write_eof()
                    self.server.loop.call_later(LINGER_SECONDS, self._close)
                else:
                    self._close()
                return
            method, path, headers, body, keep_alive = item
            coro = self.handle(method, path, headers, body)
            try:
                first = coro.send(None)
            except StopIteration as done:
                self._respond(done.value, method, keep_alive, body is None)
                continue
            self.busy = True
            self._wait(coro, first, (method, keep_alive, body is None))
        if self.reading_paused and not self.queue and self.transport and not self.closing:
            self.reading_paused = False
            self.transport.resume_reading()

    def _wait(self, coro: Coroutine[Any, Any, Result], pending: Any, info: _Info) -> None:
        """Resume `coro` when what it waits for is ready: a future (a batch, a model call in
        a thread) or a bare yield, without the cost of a task; anything else gets a task."""
        if asyncio.isfuture(pending):
            pending._asyncio_future_blocking = False
            pending.add_done_callback(partial(self._step, coro, info))
        elif pending is None:
            self.server.loop.call_soon(self._step, coro, info, None)
        else:
            task = self.server.loop.create_task(_finish(coro, pending))
            task.add_done_callback(partial(self._answered, *info))

    def _step(self, coro: Coroutine[Any, Any, Result], info: _Info, _done: Any) -> None:
        try:
            pending = coro.send(None)
        except StopIteration as done:
            self.busy = False
            self._respond(done.value, *info)
            self._next()
            return
        except (Exception, asyncio.CancelledError) as exc:  # handle() answers errors itself
            self.server.app.log_event("request_failed", error=f"{type(exc).__name__}: {exc}")
            self.busy = False
            self._close()
            return
        self._wait(coro, pending, info)

    def _answered(
        self, method: str, keep_alive: bool, big: bool, task: asyncio.Task[Result]
    ) -> None:
        self.busy = False
        if task.cancelled() or task.exception() is not None:
            self._close()
            return
        self._respond(task.result(), method, keep_alive, big)
        self._next()

    def _respond(self, result: Result, method: str, keep_alive: bool, big: bool) -> None:
        status, headers, body = result
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        close = big or not keep_alive or self.server.draining
        head = [_STATUS.get(status) or b"HTTP/1.1 %d \r\n" % status]
        for key, value in headers:
            head += (key, b": ", value, b"\r\n")
        if close and not any(k == b"connection" for k, _ in headers):
            head.append(b"connection: close\r\n")
        head.append(b"content-length: %d\r\n\r\n" % len(body))
        if method != "HEAD":
            head.append(body)
        transport.write(b"".join(head))
        self.last = self.server.loop.time()
        if close:
            self.closing = True
            if not self.discarding:
                self._close()

    def _close(self) -> None:
        self.closing = True
        self.discarding = False
        self.queue.clear()
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    @property
    def idle(self) -> bool:
        return not self.busy and not self.queue

    def shutdown(self) -> None:
        """Stop reading new requests: close now if idle, else after the answers in flight."""
        if self.idle:
            self._close()


async def _sweep(server: _Server) -> None:
    """Close idle keep-alive connections, and those too slow to send a request's headers."""
    timeout = server.head_limits.timeout
    while True:
        await asyncio.sleep(min(KEEPALIVE_SECONDS, timeout) / 4)
        now = server.loop.time()
        idle_cutoff = now - KEEPALIVE_SECONDS
        head_cutoff = now - timeout
        for conn in list(server.connections):
            if conn.closing:
                continue
            if 0 < conn.head_started < head_cutoff and not conn.reading_paused:
                conn.head_timed_out()
            elif conn.idle and conn.last < idle_cutoff:
                conn._close()


async def serve_app(app: ServeApp, config: ServeConfig, *, reuse_port: bool = False) -> None:
    """Run one worker until SIGTERM/SIGINT, then drain and stop."""
    try:
        await app.startup()
    except Exception as exc:
        app.log_event("startup_failed", error=str(exc))
        app.flush_log()
        raise WorkloadFailed(
            "the model server did not start (see the startup_failed line above)"
        ) from None
    loop = asyncio.get_running_loop()
    state = _Server(app, config)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    server = await loop.create_server(
        lambda: _Connection(state),
        config.host,
        config.port,
        backlog=4096,
        reuse_port=reuse_port or None,
    )
    sweeper = loop.create_task(_sweep(state))
    try:
        await stop.wait()
    finally:
        server.close()
        state.draining = True
        app.stopping = True
        for conn in list(state.connections):
            conn.shutdown()
        deadline = time.monotonic() + config.drain_seconds
        while state.connections and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        for conn in list(state.connections):
            conn._close()
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await app.shutdown()


def run_worker(config: ServeConfig, *, reuse_port: bool = False) -> None:
    app = ServeApp(config)
    if sys.platform != "win32":
        import uvloop

        uvloop.run(serve_app(app, config, reuse_port=reuse_port))
    else:
        asyncio.run(serve_app(app, config, reuse_port=reuse_port))


def _hold_port(config: ServeConfig) -> socket.socket:
    """Bind the port (SO_REUSEPORT, not listening) so a busy port fails here, clearly."""
    family = socket.AF_INET6 if ":" in config.host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((config.host, config.port))
    except OSError as exc:
        sock.close()
        raise UsageError(
            f"cannot listen on {config.host}:{config.port}: {exc.strerror}",
            hint="pick another --port, or stop the process using it",
        ) from None
    return sock


def run_workers(config: ServeConfig) -> None:
    """N worker processes, each with its own SO_REUSEPORT listening socket on the same port.

    A worker that dies is restarted; if workers keep dying right after starting, give up.
    SIGTERM/SIGINT is passed on to the workers, which drain and exit.
    """
    if not hasattr(socket, "SO_REUSEPORT"):
        raise UsageError(
            "several workers need SO_REUSEPORT, which this platform lacks",
            hint="use --workers 1, or --http uvicorn",
        )
    held = _hold_port(config)
    env = {**os.environ, ENV_VAR: config.to_json()}
    argv = [sys.executable, "-m", "mizzen.serve.http"]
    stopping = False
    procs: dict[int, tuple[subprocess.Popen[bytes], float]] = {}
    quick_deaths = 0

    def spawn() -> None:
        proc = subprocess.Popen(argv, env=env)
        procs[proc.pid] = (proc, time.monotonic())

    def on_signal(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        for proc, _ in procs.values():
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for _ in range(config.workers):
            spawn()
        while procs:
            time.sleep(0.1)
            for pid, (proc, started) in list(procs.items()):
                if proc.poll() is None:
                    continue
                del procs[pid]
                if stopping:
                    continue
                _event("worker_exited", worker=pid, code=proc.returncode, restarting=True)
                quick_deaths = quick_deaths + 1 if time.monotonic() - started < 10 else 0
                if quick_deaths >= 3 * config.workers:
                    on_signal(signal.SIGTERM, None)
                    for p, _ in procs.values():
                        p.wait()
                    raise WorkloadFailed(
                        f"model server workers keep exiting (last with code {proc.returncode})"
                    )
                spawn()
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
        held.close()


def _event(event: str, **fields: Any) -> None:
    line = orjson.dumps({"ts": time.time(), "event": event, "pid": os.getpid(), **fields})
    with contextlib.suppress(OSError, ValueError):
        sys.stderr.buffer.write(line + b"\n")
        sys.stderr.buffer.flush()


if __name__ == "__main__":
    run_worker(ServeConfig.from_env(), reuse_port=True)
