"""Adaptive batching: concurrent requests for one model version merged into one call.

A request that arrives while the model is idle runs at once (no added latency). Requests
that arrive while a call is running wait and go together in the next call; once calls are
being merged, the batcher may hold a batch up to `max_latency` to fill it. The queue is
bounded: past `max_queue` waiting requests, `submit` raises `Overloaded` (HTTP 503).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from mizzen.serve.model import LoadedModel

Feeds = dict[str, np.ndarray]


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
        self.queue: asyncio.Queue[tuple[Feeds, int, asyncio.Future[Feeds]]] = asyncio.Queue()
        self.merging = False
        self._pool = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"model-{model.name}-{model.version}"
        )
        self._task: asyncio.Task[None] | None = None

    @property
    def depth(self) -> int:
        return self.queue.qsize()

    async def submit(self, feeds: Feeds, rows: int) -> Feeds:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())
        if self.queue.qsize() >= self.max_queue:
            raise Overloaded
        fut: asyncio.Future[Feeds] = asyncio.get_running_loop().create_future()
        self.queue.put_nowait((feeds, rows, fut))
        return await fut

    async def _loop(self) -> None:
        loop = asyncio.get_running_loop()
        q = self.queue
        while True:
            items = [await q.get()]
            rows = items[0][1]
            deadline: float | None = None
            while rows < self.max_batch_size:
                if not q.empty():
                    item = q.get_nowait()
                elif self.merging and self.max_latency > 0:
                    if deadline is None:
                        deadline = loop.time() + self.max_latency
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(q.get(), remaining)
                    except TimeoutError:
                        break
                else:
                    break
                if rows + item[1] > self.max_batch_size:
                    await self._run([item])  # too big to merge: alone, after this batch
                    continue
                items.append(item)
                rows += item[1]
            self.merging = len(items) > 1
            await self._run(items)

    async def _run(self, items: list[tuple[Feeds, int, asyncio.Future[Feeds]]]) -> None:
        loop = asyncio.get_running_loop()
        try:
            if len(items) == 1:
                outputs = [await loop.run_in_executor(self._pool, self.model.run, items[0][0])]
            else:
                merged = await loop.run_in_executor(self._pool, self._call_merged, items)
                outputs = merged
        except Exception as exc:
            for _, _, fut in items:
                if not fut.done():
                    fut.set_exception(exc)
            return
        if self.on_batch is not None:
            self.on_batch(sum(i[1] for i in items))
        for (_, _, fut), out in zip(items, outputs, strict=True):
            if not fut.done():
                fut.set_result(out)

    def _call_merged(self, items: list[tuple[Feeds, int, Any]]) -> list[Feeds]:
        names = list(items[0][0])
        feeds = {n: np.concatenate([i[0][n] for i in items]) for n in names}
        out = self.model.run(feeds)
        cuts = np.cumsum([i[1] for i in items])[:-1]
        split = {n: np.split(v, cuts) for n, v in out.items()}
        return [{n: parts[k] for n, parts in split.items()} for k in range(len(items))]

    async def close(self) -> None:
        """Let queued requests finish, then stop."""
        while not self.queue.empty():
            await asyncio.sleep(0.005)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._pool.shutdown(wait=True)


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
