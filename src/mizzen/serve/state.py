"""What the server serves: models, their routes (version or alias -> weight) and loaded versions.

Swaps are atomic: a route points at one `LoadedModel`; a reload replaces the reference, and
requests already holding the old one finish on it.
"""

from __future__ import annotations

import bisect
import random
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from mizzen.serve.model import LoadedModel, ModelLoadError, load_model


class ModelSource(Protocol):
    """The part of `mizzen.storage.registry.ModelRegistry` the server uses."""

    def resolve(self, name: str, ref: Any) -> int: ...

    def fetch(self, name: str, version: int, dest_dir: Any) -> Path: ...


@dataclass
class Route:
    ref: str  # "3", "latest" or an alias
    weight: int
    model: LoadedModel | None = None
    failed: dict[int, str] = field(default_factory=dict)  # version -> why it was refused

    @property
    def moves(self) -> bool:
        return not self.ref.isdigit()


class ModelEntry:
    """One served model name: its routes and the traffic split between them."""

    def __init__(
        self,
        name: str,
        routes: dict[str, int],
        *,
        max_batch_size: int | None = None,
        max_latency: float = 0.0,
    ) -> None:
        self.name = name
        self.routes = [Route(ref, weight) for ref, weight in routes.items()]
        self.max_batch_size = max_batch_size
        self.max_latency = max_latency
        self._cum: list[int] = []
        total = 0
        for r in self.routes:
            total += r.weight
            self._cum.append(total)
        self._total = total

    def pick(self) -> LoadedModel:
        if len(self.routes) == 1 or self._total == 0:
            model = self.routes[0].model
        else:
            i = bisect.bisect_right(self._cum, random.random() * self._total)
            model = self.routes[min(i, len(self.routes) - 1)].model
        assert model is not None
        return model

    def pinned(self, version: str) -> LoadedModel | None:
        """A version number served by some route, or the current version of a route's ref."""
        for r in self.routes:
            if r.model is not None and (str(r.model.version) == version or r.ref == version):
                return r.model
        return None

    def loaded(self) -> list[LoadedModel]:
        seen: dict[int, LoadedModel] = {}
        for r in self.routes:
            if r.model is not None:
                seen.setdefault(r.model.version, r.model)
        return [seen[v] for v in sorted(seen)]

    @property
    def ready(self) -> bool:
        return all(r.model is not None for r in self.routes)


class Loader:
    """Fetches model versions from the registry into a private folder and loads them."""

    def __init__(
        self, source: ModelSource, *, allow_python: bool = False, cache_dir: Path | None = None
    ) -> None:
        self.source = source
        self.allow_python = allow_python
        self.cache_dir = cache_dir or Path(tempfile.mkdtemp(prefix="mizzen-serve-"))
        self._owns_cache = cache_dir is None
        self._lock = threading.Lock()
        self._loaded: dict[tuple[str, int], LoadedModel] = {}

    def resolve(self, name: str, ref: str) -> int:
        return int(self.source.resolve(name, int(ref) if ref.isdigit() else ref))

    def load(self, name: str, version: int) -> LoadedModel:
        with self._lock:
            key = (name, version)
            if key in self._loaded:
                return self._loaded[key]
            try:
                path = Path(self.source.fetch(name, version, self.cache_dir))
            except Exception as exc:
                raise ModelLoadError(
                    f"model {name} v{version}: cannot fetch its files from the registry: {exc}"
                ) from exc
            model = load_model(name, version, path, allow_python=self.allow_python)
            self._loaded[key] = model
            return model

    def forget_unused(self, entries: list[ModelEntry]) -> None:
        used = {(e.name, m.version) for e in entries for m in e.loaded()}
        with self._lock:
            for key in [k for k in self._loaded if k not in used]:
                del self._loaded[key]
                if self._owns_cache:
                    shutil.rmtree(self.cache_dir / key[0] / str(key[1]), ignore_errors=True)

    def close(self) -> None:
        if self._owns_cache:
            shutil.rmtree(self.cache_dir, ignore_errors=True)


@dataclass(frozen=True)
class ReloadEvent:
    model: str
    ref: str
    old: int | None
    new: int
    ok: bool
    error: str = ""


def refresh(entry: ModelEntry, loader: Loader, *, initial: bool = False) -> list[ReloadEvent]:
    """Point every moving route at its current version (blocking; run it in a thread).

    A version that fails to load or to run its example is remembered and skipped, and the
    route keeps its old model. At start-up (`initial`), a failure is raised instead.
    """
    events: list[ReloadEvent] = []
    for route in entry.routes:
        if not initial and not route.moves:
            continue
        try:
            version = loader.resolve(entry.name, route.ref)
        except Exception as exc:
            if initial:
                raise ModelLoadError(
                    f"model {entry.name!r}: cannot resolve {route.ref!r}: {exc}"
                ) from exc
            continue  # registry unreachable for a moment: keep serving
        old = route.model.version if route.model else None
        if version == old or version in route.failed:
            continue
        try:
            route.model = loader.load(entry.name, version)
            events.append(ReloadEvent(entry.name, route.ref, old, version, True))
        except ModelLoadError as exc:
            if initial:
                raise
            route.failed[version] = str(exc)
            events.append(ReloadEvent(entry.name, route.ref, old, version, False, str(exc)))
    return events
