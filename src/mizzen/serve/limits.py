"""What a client may send before its request is read: the URL (414 above the limit), the
request line and headers together, the number of headers (431 above), and the time it may
take to send them (408, or the connection is just closed if nothing came).

`HeadGuard` counts one connection's request heads for either HTTP layer (the built-in one
and uvicorn's httptools protocol, see `LimitedHttpToolsProtocol`). httptools buffers a header
line until it ends, so the guard also bounds the raw bytes fed to the parser while a head is
incomplete: a hostile client cannot make the server hold more than the limit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

import orjson

from mizzen.serve.config import ServeConfig

# After refusing a head, how long and how much of the rest the server reads and throws away
# before it closes, so that the client gets the answer instead of a connection reset.
LINGER_SECONDS = 1.0
LINGER_BYTES = 1 << 20


@dataclass(frozen=True)
class HeadLimits:
    max_url: int = 8 * 1024
    max_bytes: int = 64 * 1024
    max_headers: int = 100
    timeout: float = 10.0

    @classmethod
    def of(cls, config: ServeConfig) -> HeadLimits:
        return cls(
            config.max_url_bytes, config.max_header_bytes, config.max_headers, config.header_timeout
        )


class HeadRefused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message

    def response(self) -> bytes:
        return refusal(self.status, self.message)


def refusal(status: int, message: str) -> bytes:
    """A complete `connection: close` answer with a JSON error."""
    body = orjson.dumps({"error": message})
    phrase = HTTPStatus(status).phrase.encode()
    return (
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\nconnection: close\r\n"
        b"content-length: %d\r\n\r\n%s" % (status, phrase, len(body), body)
    )


class HeadGuard:
    """The limits on the request heads of one connection.

    The header bytes are bounded where data enters the parser (`raw`, from the start of the
    head), the URL as the parser reports it, the header count once the head is complete
    (the byte bound already caps what the list of headers can hold)."""

    __slots__ = ("heads", "in_head", "limits", "max_bytes", "max_url", "raw", "refused", "url")

    def __init__(self, limits: HeadLimits) -> None:
        self.limits = limits
        self.max_bytes = limits.max_bytes
        self.max_url = limits.max_url
        self.in_head = True  # reading a head (or waiting for the next one)
        self.raw = 0  # bytes fed to the parser since the head began
        self.url = 0
        self.heads = 0  # heads completed on this connection
        self.refused: HeadRefused | None = None

    def feed(self, data: bytes, feed: Callable[[Any], None]) -> None:
        """Pass `data` to `feed` (the parser), in two pieces when needed so that a head that
        is still incomplete past the byte limit is refused before more of it is buffered."""
        if not self.in_head:
            feed(data)
            return
        room = self.max_bytes - self.raw
        if len(data) <= room:
            self.raw += len(data)
            feed(data)
            return
        heads = self.heads
        view = memoryview(data)
        feed(view[:room])
        if self.refused is not None:
            return
        if self.heads == heads:
            self.refuse(431, f"the request line and headers are larger than {self.max_bytes} bytes")
        feed(view[room:])

    def on_url(self, part: bytes) -> None:
        self.url += len(part)
        if self.url > self.max_url:
            self.url_too_long()

    def url_too_long(self) -> None:
        self.refuse(414, f"the URL is longer than {self.max_url} bytes")

    def on_headers_complete(self, count: int) -> None:
        if count > self.limits.max_headers:
            self.refuse(431, f"the request has more than {self.limits.max_headers} headers")
        self.in_head = False
        self.heads += 1

    def on_message_complete(self) -> None:
        self.in_head = True
        self.raw = self.url = 0

    def refuse(self, status: int, message: str) -> None:
        # What is kept is not what is raised: a raised exception holds the parser's frames
        # (and the data they were parsing) in its traceback.
        self.refused = HeadRefused(status, message)
        raise HeadRefused(status, message)
