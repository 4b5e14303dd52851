"""A very small ASGI router: enough for server-rendered, read-only pages and JSON."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable
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
