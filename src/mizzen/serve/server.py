"""Start the server: one process, or N worker processes sharing the port.

The built-in HTTP layer (`mizzen.serve.http`) is the default; `--http uvicorn` runs the same
ASGI app on uvicorn instead."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from dataclasses import replace
from typing import Any

import orjson

from mizzen.errors import WorkloadFailed
from mizzen.serve.app import ServeApp, default_source
from mizzen.serve.config import ENV_VAR, ServeConfig
from mizzen.serve.state import Loader, ModelEntry, refresh


def _uvicorn_options(config: ServeConfig) -> dict[str, Any]:
    return {
        "host": config.host,
        "port": config.port,
        "loop": "uvloop" if sys.platform != "win32" else "asyncio",
        "http": "mizzen.serve.uvicorn_http:LimitedHttpToolsProtocol",
        "lifespan": "on",
        "access_log": False,
        "log_level": "warning",
        "timeout_graceful_shutdown": config.drain_seconds,
        "backlog": 4096,
        "server_header": False,
        "date_header": False,
    }


def check_models(config: ServeConfig) -> list[str]:
    """Load every route once before starting workers, so a bad name or broken model fails here
    with a clear message instead of in a restart loop. Returns 'name@ref=vN' strings."""
    loader = Loader(default_source(config), allow_python=config.allow_python)
    try:
        found = []
        for m in config.models:
            entry = ModelEntry(m.name, m.routes)
            refresh(entry, loader, initial=True)
            found += [f"{m.name}@{r.ref}=v{r.model.version}" for r in entry.routes if r.model]
        return found
    finally:
        loader.close()


def resolve_refs(config: ServeConfig) -> None:
    """Fail fast, with the registry's own message and hint, on an unknown model or alias."""
    source = default_source(config)
    for m in config.models:
        for ref in m.routes:
            source.resolve(m.name, int(ref) if ref.isdigit() else ref)


def serve(config: ServeConfig) -> None:
    if config.http == "uvicorn":
        serve_uvicorn(config)
        return
    from mizzen.serve.http import run_worker, run_workers

    if config.workers <= 1:
        resolve_refs(config)
        _announce(config, [f"{m.name}:{sorted(m.routes)}" for m in config.models])
        run_worker(config)
        return
    found = check_models(config)
    metrics_dir = tempfile.mkdtemp(prefix="mizzen-serve-metrics-")
    _announce(config, found)
    try:
        run_workers(replace(config, metrics_dir=metrics_dir))
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def serve_uvicorn(config: ServeConfig) -> None:
    import uvicorn

    options = _uvicorn_options(config)
    if config.workers <= 1:
        os.environ[ENV_VAR] = config.to_json()  # the protocol reads its limits from it
        resolve_refs(config)
        app = ServeApp(config)
        server = uvicorn.Server(uvicorn.Config(app, **options))
        _announce(config, [f"{m.name}:{sorted(m.routes)}" for m in config.models])
        server.run()
        if not app.started:
            raise WorkloadFailed(
                "the model server did not start (see the startup_failed line above)"
            )
        return
    found = check_models(config)
    metrics_dir = tempfile.mkdtemp(prefix="mizzen-serve-metrics-")
    os.environ[ENV_VAR] = replace(config, metrics_dir=metrics_dir).to_json()
    _announce(config, found)
    try:
        uvicorn.run(
            "mizzen.serve.app:app_from_env", factory=True, workers=config.workers, **options
        )
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def _announce(config: ServeConfig, models: list[str]) -> None:
    line = {
        "event": "serving",
        "url": f"http://{config.host}:{config.port}",
        "workers": config.workers,
        "http": config.http,
        "models": models,
    }
    sys.stderr.buffer.write(orjson.dumps(line) + b"\n")
    sys.stderr.buffer.flush()
