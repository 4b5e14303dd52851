"""A very small ASGI router: enough for server-rendered, read-only pages and JSON."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

log = logging.getLogger("mizzen.ui")

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    params: dict[str, str] = field(default_factory=dict)

    def arg(self, name: str, default: str = "") -> str:
        return self.query.get(name, default)

    def int_arg(self, name: str, default: int) -> int:
        value = self.query.get(name, "")
        return int(value) if value.lstrip("-").isdigit() else default


@dataclass
class Response:
    body: bytes
    status: int = 200
    content_type: str = "text/html; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def html(cls, text: str, status: int = 200) -> Response:
        return cls(text.encode(), status)

    @classmethod
    def json(cls, data: Any, status: int = 200) -> Response:
        return cls(json.dumps(data, default=str).encode(), status, "application/json")

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        return cls(text.encode(), status, "text/plain; charset=utf-8")


class HTTPError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


Handler = Callable[[Request], Response]


class Router:
    """Routes `GET` paths (with `{name}` and `{name:path}` parts) to sync handlers, which run
    in a worker thread so slow store reads never block the event loop."""

    def __init__(self, error_page: Callable[[int, str], Response] | None = None) -> None:
        self.routes: list[tuple[re.Pattern[str], Handler]] = []
        self.error_page = error_page or (lambda status, msg: Response.text(msg, status))

    def get(self, pattern: str) -> Callable[[Handler], Handler]:
        def regex(match: re.Match[str]) -> str:
            name, _, kind = match.group(1).partition(":")
            return f"(?P<{name}>.+)" if kind == "path" else f"(?P<{name}>[^/]+)"

        compiled = re.compile("^" + re.sub(r"\{([^}]+)\}", regex, pattern) + "$")

        def add(handler: Handler) -> Handler:
            self.routes.append((compiled, handler))
            return handler

        return add

    def dispatch(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            return self.error_page(405, "this dashboard is read-only")
        for pattern, handler in self.routes:
            match = pattern.match(request.path)
            if match:
                request.params = match.groupdict()
                try:
                    return handler(request)
                except HTTPError as exc:
                    return self.error_page(exc.status, exc.message)
                except Exception as exc:
                    log.exception("GET %s failed", request.path)
                    return self.error_page(500, f"this page failed: {type(exc).__name__}: {exc}")
        return self.error_page(404, f"nothing at {request.path}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        query = {k: v[-1] for k, v in parse_qs(scope.get("query_string", b"").decode()).items()}
        request = Request(scope["method"], scope["path"], query)
        response = await asyncio.to_thread(self.dispatch, request)
        headers = [
            (b"content-type", response.content_type.encode()),
            (b"content-length", str(len(response.body)).encode()),
        ]
        headers += [(k.lower().encode(), v.encode()) for k, v in response.headers.items()]
        headers.append((b"x-content-type-options", b"nosniff"))
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send(
            {
                "type": "http.response.body",
                "body": b"" if request.method == "HEAD" else response.body,
            }
        )


LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1")
WILDCARD = ("", "0.0.0.0", "::")


def split_host(value: str) -> tuple[str, int | None]:
    """`Host` header (or `--allow-host` value) -> (lower-case name, port or None)."""
    value = value.strip().lower()
    if value.startswith("["):
        name, _, rest = value[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    elif value.count(":") == 1:
        name, _, port = value.partition(":")
    else:
        name, port = value, ""
    name = name.rstrip(".")
    if port and not port.isdigit():
        raise ValueError(f"{value!r}: the port is not a number")
    return name, int(port) if port else None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class AllowedHosts:
    """The `Host` headers the dashboard answers (as Jupyter does, against DNS rebinding: a
    page of another site whose name resolves to 127.0.0.1 sends its own name as the Host).

    `names`: (name, port) pairs, port None meaning any port; `any_ip`: any IP literal on
    `port` (bound to every interface: a browser sends an IP only when it was given that IP);
    `anything`: the check is off (`--allow-host '*'`)."""

    port: int
    names: frozenset[tuple[str, int | None]]
    any_ip: bool = False
    anything: bool = False

    @classmethod
    def for_bind(cls, host: str, port: int, extra: Iterable[str] = ()) -> AllowedHosts:
        names: set[tuple[str, int | None]] = {(n, port) for n in LOOPBACK_NAMES}
        bind, _ = split_host(f"[{host}]" if ":" in host else host)
        wildcard = bind in WILDCARD
        if wildcard:
            import socket

            names.add((socket.gethostname().lower(), port))
        else:
            names.add((bind, port))
        anything = False
        for item in extra:
            if item.strip() == "*":
                anything = True
                continue
            names.add(split_host(item))
        return cls(port, frozenset(names), any_ip=wildcard, anything=anything)

    def allows(self, header: str | None) -> bool:
        if self.anything or header is None:  # no Host header: not a browser, so no rebinding
            return True
        try:
            name, port = split_host(header)
        except ValueError:
            return False
        port = 80 if port is None else port
        if (name, port) in self.names or (name, None) in self.names:
            return True
        return self.any_ip and port == self.port and _is_ip(name)

    def shown(self) -> str:
        out = []
        for name, port in sorted(self.names, key=lambda n: (n[0] not in LOOPBACK_NAMES, n)):
            text = f"[{name}]" if ":" in name else name
            out.append(f"{text}:{port}" if port is not None else text)
        if self.any_ip:
            out.append(f"any IP address:{self.port}")
        return ", ".join(out)


class HostGuard:
    """Answers 403 (plain text) to requests whose `Host` is not in `allowed`."""

    def __init__(
        self, app: Callable[[Scope, Receive, Send], Awaitable[None]], allowed: AllowedHosts
    ) -> None:
        self.app = app
        self.allowed = allowed

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        hosts = [v.decode("latin-1") for k, v in scope.get("headers", []) if k == b"host"]
        if len(hosts) <= 1 and self.allowed.allows(hosts[0] if hosts else None):
            return await self.app(scope, receive, send)
        shown = " and ".join(hosts)
        try:
            name = split_host(hosts[0])[0] if len(hosts) == 1 else "NAME"
        except ValueError:
            name = "NAME"
        text = (
            f"403 Forbidden: this dashboard answers to {self.allowed.shown()}, "
            f"not to the host {shown!r}. A web page of another site may be trying to read it "
            f"(DNS rebinding). If you opened it under that name yourself, start it with "
            f"`mizzen ui --allow-host {name}` (or set MIZZEN_UI_ALLOW_HOSTS={name}).\n"
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 403,
                "headers": [
                    (b"content-type", b"text/plain; charset=utf-8"),
                    (b"content-length", str(len(text)).encode()),
                    (b"x-content-type-options", b"nosniff"),
                ],
            }
        )
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else text}
        )
