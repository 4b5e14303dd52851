"""uvicorn's httptools protocol with the same request-head limits as the built-in HTTP layer
(`mizzen.serve.limits`): 414, 431, and 408 for a head that takes too long."""

from __future__ import annotations

import os
from typing import Any

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mizzen.serve.config import ENV_VAR, ServeConfig
from mizzen.serve.limits import (
    LINGER_BYTES,
    LINGER_SECONDS,
    HeadGuard,
    HeadLimits,
    HeadRefused,
    refusal,
)


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with `HeadLimits` (read from the serve config in the
    environment, so uvicorn's worker processes find them too)."""

    _limits: HeadLimits | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cls = type(self)
        if cls._limits is None:
            text = os.environ.get(ENV_VAR)
            cls._limits = HeadLimits.of(ServeConfig.from_json(text)) if text else HeadLimits()
        self.guard = HeadGuard(cls._limits)
        self.head_timer: Any = None
        self.began = False
        self.sunk = -1  # bytes thrown away after a refusal; -1 while not refused

    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        self._time_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.sunk >= 0:
            self.sunk += len(data)
            if self.sunk > LINGER_BYTES:
                self.transport.close()
            return
        self._unset_keepalive_if_required()
        try:
            self.guard.feed(data, self.parser.feed_data)
        except HeadRefused:
            pass
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        except httptools.HttpParserError:
            if self.guard.refused is None:
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
                return
        if self.guard.refused is not None:
            self._refuse(self.guard.refused)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.began = True
        if self.guard.heads:
            self._time_head()

    def on_url(self, url: bytes) -> None:
        self.guard.on_url(url)
        super().on_url(url)

    def on_headers_complete(self) -> None:
        self.guard.on_headers_complete(len(self.headers))
        self._stop_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self.guard.on_message_complete()
        super().on_message_complete()

    def _time_head(self) -> None:
        self._stop_head_timer()
        self.head_timer = self.loop.call_later(self.guard.limits.timeout, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_timed_out(self) -> None:
        self.head_timer = None
        if self.transport.is_closing() or not self.guard.in_head:
            return
        if self.began:
            self.transport.write(
                refusal(
                    408, f"the request headers took longer than {self.guard.limits.timeout:g} s"
                )
            )
        self.transport.close()

    def _refuse(self, refused: HeadRefused) -> None:
        self._stop_head_timer()
        self.sunk = 0
        self.transport.write(refused.response())
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)
