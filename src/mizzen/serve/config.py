"""The server's settings: what to serve and how. JSON-serialisable, so worker processes get it."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from typing import Any

ENV_VAR = "MIZZEN_SERVE_CONFIG"


@dataclass(frozen=True)
class ModelConfig:
    name: str
    routes: dict[str, int]  # version or alias -> traffic share
    max_batch_size: int | None = None  # None: batching off
    max_latency: float = 0.0


@dataclass(frozen=True)
class ServeConfig:
    models: list[ModelConfig]
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    poll_seconds: float = 10.0
    max_body_bytes: int = 16 * 1024 * 1024
    max_rows: int = 10_000  # rows per request; 413 above
    max_queue: int = 256
    max_url_bytes: int = 8 * 1024  # 414 above
    max_header_bytes: int = 64 * 1024  # request line and headers together; 431 above
    max_headers: int = 100  # 431 above
    header_timeout: float = 10.0  # seconds a client may take to send a request's headers
    drain_seconds: float = 30.0
    access_log: bool = True
    allow_python: bool = False
    spec_file: str | None = None
    env: str | None = None
    metrics_dir: str | None = None
    http: str = "builtin"  # or "uvicorn"
    coalesce: bool = True  # merge requests read in the same loop turn into one model call
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> ServeConfig:
        data = json.loads(text)
        data["models"] = [ModelConfig(**m) for m in data["models"]]
        return cls(**data)

    @classmethod
    def from_env(cls) -> ServeConfig:
        return cls.from_json(os.environ[ENV_VAR])
