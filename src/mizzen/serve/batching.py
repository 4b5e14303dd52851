"""Adaptive batching: concurrent requests for one model version merged into one call.

A request that arrives while the model is idle runs at once (no added latency). Requests
that arrive while a call is running wait and go together in the next call; once calls are
being merged, the batcher may hold a batch up to `max_latency` to fill it. The queue is
bounded: past `max_queue` waiting requests, `submit` raises `Overloaded` (HTTP 503).

The model runs in a thread of its own that takes the next batch as soon as a call returns,
so a busy event loop (say, answering a flood of 503s) never leaves the model idle. Requests
are taken in arrival order: one too big to join the current batch heads the next call, so
nothing is overtaken for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable

import numpy as np

from mizzen.serve.model import LoadedModel

Feeds = dict[str, np.ndarray]
_Item = tuple[Feeds, int, "asyncio.Future[Feeds]"]


class Overloaded(Exception):
    """The model's queue is full."""


class Batcher:
    def __init__(
        self,
        model: LoadedModel,
        *,
        max_batch_size: int,
        max_latency: float,
        max_queue: int,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.model = model
        self.max_batch_size = max(1, max_batch_size)
        self.max_latency = max_latency
        self.max_queue = max_queue
        self.on_batch = on_batch
        self.merging = False
        self._items: deque[_Item] = deque()
        self._ready = threading.Condition()
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def depth(self) -> int:
        return len(self._items)

    @property
    def full(self) -> bool:
        return len(self._items) >= self.max_queue

    def submit(self, feeds: Feeds, rows: int, *, force: bool = False) -> asyncio.Future[Feeds]:
        """A future for the outputs of `feeds`; `Overloaded` when the queue is full (unless
        `force`: a slice of a large request already admitted)."""
        if len(self._items) >= self.max_queue and not force:
            raise Overloaded
        if self._thread is None:
            self._loop = asyncio.get_running_loop()
            self._thread = threading.Thread(
                target=self._work,
                name=f"model-{self.model.name}-{self.model.version}",
                daemon=True,
            )
            self._thread.start()
        assert self._loop is not None
        fut: asyncio.Future[Feeds] = self._loop.create_future()
        with self._ready:
            self._items.append((feeds, rows, fut))
            self._ready.notify()
        return fut

    def _work(self) -> None:
        while True:
            batch = self._take()
            if batch is None:
                return
            try:
                outputs = (
                    [self.model.run(batch[0][0])] if len(batch) == 1 else self._call_merged(batch)
                )
                error: BaseException | None = None
            except Exception as exc:
                outputs, error = [], exc
            loop = self._loop
            assert loop is not None
            with contextlib.suppress(RuntimeError):  # the loop is gone: nobody is waiting
                loop.call_soon_threadsafe(self._deliver, batch, outputs, error)

    def _take(self) -> list[_Item] | None:
        """The next batch, in arrival order (blocking); None once closed and drained."""
        items = self._items
        with self._ready:
            while not items:
                if self._closed:
                    return None
                self._ready.wait()
            batch = [items.popleft()]
            rows = batch[0][1]
            deadline: float | None = None
            while rows < self.max_batch_size:
                if items:
                    if rows + items[0][1] > self.max_batch_size:
                        break  # too big to join: it heads the next call
                    item = items.popleft()
                    batch.append(item)
                    rows += item[1]
                    continue
                if not self.merging or self.max_latency <= 0 or self._closed:
                    break
                if deadline is None:
                    deadline = time.monotonic() + self.max_latency
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._ready.wait(remaining)
        self.merging = len(batch) > 1
        return batch

    def _deliver(
        self, batch: list[_Item], outputs: list[Feeds], error: BaseException | None
    ) -> None:
        if error is None and self.on_batch is not None:
            self.on_batch(sum(i[1] for i in batch))
        for k, (_, _, fut) in enumerate(batch):
            if fut.done():
                continue
            if error is not None:
                fut.set_exception(error)
            else:
                fut.set_result(outputs[k])

    def _call_merged(self, items: list[_Item]) -> list[Feeds]:
        names = list(items[0][0])
        feeds = {n: np.concatenate([i[0][n] for i in items]) for n in names}
        out = self.model.run(feeds)
        cuts = np.cumsum([i[1] for i in items])[:-1]
        split = {n: np.split(v, cuts) for n, v in out.items()}
        return [{n: parts[k] for n, parts in split.items()} for k in range(len(items))]

    async def close(self) -> None:
        """Let queued requests finish, then stop."""
        with self._ready:
            self._closed = True
            self._ready.notify()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.join)
        await asyncio.sleep(0)  # the last deliveries


class Coalescer:
    """Requests for one fast model parsed in the same event-loop turn run as one model call.

    Nothing waits for company: the first request schedules the call for the end of the current
    turn (no timer), and the requests the server reads in that same turn join it. Under load
    this turns N single-row calls into one N-row call. While requests come one at a time
    (after `quiet` lone calls in a row) each runs at once instead, until two arrive in one turn.
    Runs on the event loop thread, so it is only used for models cheap enough to run inline.
    """

    def __init__(
        self,
        model: LoadedModel,
        *,
        max_rows: int = 256,
        quiet: int = 16,
        on_batch: Callable[[int], None] | None = None,
    ) -> None:
        self.model = model
        self.max_rows = max_rows
        self.quiet = quiet
        self.on_batch = on_batch
        self.pending: list[tuple[Feeds, int, asyncio.Future[Feeds]]] = []
        self.scheduled = False
        self.inline = False  # requests come one at a time: run each at once
        self.seen_this_turn = False
        self.lone_calls = 0

    def submit(self, feeds: Feeds, rows: int) -> asyncio.Future[Feeds]:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Feeds] = loop.create_future()
        if self.inline:
            if not self.seen_this_turn:
                self.seen_this_turn = True
                loop.call_soon(self._new_turn)
                self._run([(feeds, rows, fut)], rows)
                return fut
            self.inline = False  # a second request in one turn: merge again
        self.pending.append((feeds, rows, fut))
        if not self.scheduled:
            self.scheduled = True
            loop.call_soon(self._flush)
        return fut

    def _new_turn(self) -> None:
        self.seen_this_turn = False

    def _flush(self) -> None:
        self.scheduled = False
        items, self.pending = self.pending, []
        self.lone_calls = self.lone_calls + 1 if len(items) == 1 else 0
        if self.lone_calls >= self.quiet:
            self.inline = True
            self.lone_calls = 0
        group: list[tuple[Feeds, int, asyncio.Future[Feeds]]] = []
        rows = 0
        for item in items:
            if group and rows + item[1] > self.max_rows:
                self._run(group, rows)
                group, rows = [], 0
            group.append(item)
            rows += item[1]
        if group:
            self._run(group, rows)

    def _run(self, items: list[tuple[Feeds, int, asyncio.Future[Feeds]]], rows: int) -> None:
        if len(items) == 1:
            feeds, _, fut = items[0]
            try:
                out = self.model.run(feeds)
            except Exception as exc:
                if not fut.done():
                    fut.set_exception(exc)
                return
            if self.on_batch is not None:
                self.on_batch(rows)
            if not fut.done():
                fut.set_result(out)
            return
        try:
            first = items[0][0]
            merged = {n: np.concatenate([i[0][n] for i in items]) for n in first}
            out = self.model.run(merged)
            if any(v.ndim == 0 or v.shape[0] != rows for v in out.values()):
                raise ValueError("outputs do not have one row per input row")
        except Exception:  # e.g. rows of different widths: each request alone
            for item in items:
                self._run([item], item[1])
            return
        if self.on_batch is not None:
            self.on_batch(rows)
        start = 0
        for _, n, fut in items:
            if not fut.done():
                fut.set_result({k: v[start : start + n] for k, v in out.items()})
            start += n
