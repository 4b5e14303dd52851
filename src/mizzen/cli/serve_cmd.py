"""`mizzen serve MODEL[@VERSION|ALIAS] ...`: serve models from the project's registry over HTTP."""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from mizzen.cli.common import spec_options
from mizzen.errors import UsageError


@click.command("serve")
@click.argument("models", nargs=-1, required=True, metavar="MODEL[@VERSION|ALIAS]...")
@click.option(
    "--versions",
    default=None,
    help='Traffic shares per version or alias, JSON: \'{"3": 90, "4": 10}\' (one MODEL only).',
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535))
@click.option(
    "--workers",
    type=click.IntRange(1, 512),
    default=None,
    help="Worker processes sharing the port [default: CPU count].",
)
@click.option(
    "--max-batch-size",
    type=click.IntRange(1, 65536),
    default=None,
    help="Merge concurrent requests into one model call of up to N rows (off by default).",
)
@click.option(
    "--max-latency",
    default=None,
    help="How long a request may wait for others to batch with, e.g. 2ms [default: 2ms with --max-batch-size].",
)
@click.option(
    "--coalesce/--no-coalesce",
    default=True,
    show_default=True,
    help="Without --max-batch-size: run requests that arrive together as one model call (never waits).",
)
@click.option(
    "--max-queue",
    type=click.IntRange(1),
    default=256,
    show_default=True,
    help="Waiting requests per model and worker before answering 503.",
)
@click.option(
    "--max-body", default="16Mi", show_default=True, help="Largest request body (413 above)."
)
@click.option(
    "--max-rows",
    type=click.IntRange(1),
    default=10_000,
    show_default=True,
    help="Most rows in one request (413 above).",
)
@click.option(
    "--max-url", default="8Ki", show_default=True, help="Longest request URL (414 above)."
)
@click.option(
    "--max-header-size",
    default="64Ki",
    show_default=True,
    help="Largest request line and headers together (431 above).",
)
@click.option(
    "--max-headers",
    type=click.IntRange(1),
    default=100,
    show_default=True,
    help="Most headers in one request (431 above).",
)
@click.option(
    "--header-timeout",
    default="10s",
    show_default=True,
    help="How long a client may take to send a request's headers (408, then closed).",
)
@click.option(
    "--poll",
    default="10s",
    show_default=True,
    help="How often to check the registry for moved aliases / new latest (0 = never).",
)
@click.option(
    "--drain-timeout",
    default="30s",
    show_default=True,
    help="On SIGTERM, how long in-flight requests may take to finish.",
)
@click.option(
    "--access-log/--no-access-log",
    default=True,
    show_default=True,
    help="JSON access log lines on stderr.",
)
@click.option(
    "--http",
    "http_layer",
    type=click.Choice(["builtin", "uvicorn"]),
    default="builtin",
    show_default=True,
    help="HTTP layer: the built-in server (fastest) or uvicorn running the same ASGI app.",
)
@click.option(
    "--allow-python",
    is_flag=True,
    help="Allow python (pickled) models: slower than ONNX, and they run code from the store.",
)
@spec_options
def serve(
    models: tuple[str, ...],
    versions: str | None,
    host: str,
    port: int,
    workers: int | None,
    max_batch_size: int | None,
    max_latency: str | None,
    coalesce: bool,
    max_queue: int,
    max_body: str,
    max_rows: int,
    max_url: str,
    max_header_size: str,
    max_headers: int,
    header_timeout: str,
    poll: str,
    drain_timeout: str,
    access_log: bool,
    http_layer: str,
    allow_python: bool,
    spec_file: Path | None,
    env: str | None,
) -> None:
    """Serve models from the registry (Open Inference Protocol v2 and plain JSON).

    MODEL@3 pins a version, MODEL@prod follows an alias, MODEL alone follows `latest`.
    Moving aliases and `latest` are hot-reloaded. Repeat MODEL to serve several models.
    """
    from mizzen.serve.config import ModelConfig, ServeConfig
    from mizzen.serve.server import serve as run_server

    if max_latency is not None and max_batch_size is None:
        raise UsageError(
            "--max-latency only applies with --max-batch-size",
            hint="add --max-batch-size N, or drop --max-latency",
        )
    latency = (
        _duration("--max-latency", max_latency)
        if max_latency is not None
        else (0.002 if max_batch_size else 0.0)
    )
    url_limit = _size("--max-url", max_url)
    head_limit = _size("--max-header-size", max_header_size)
    if not 0 < url_limit <= head_limit:
        raise UsageError(
            f"--max-url ({max_url}) must be more than 0 and at most --max-header-size ({max_header_size})",
            hint="the URL is part of the request line, which --max-header-size counts",
        )
    configs = [
        ModelConfig(name, routes, max_batch_size=max_batch_size, max_latency=latency)
        for name, routes in parse_models(models, versions)
    ]
    config = ServeConfig(
        models=configs,
        host=host,
        port=port,
        workers=workers or os.cpu_count() or 1,
        poll_seconds=_duration("--poll", poll),
        max_body_bytes=_size("--max-body", max_body),
        max_rows=max_rows,
        max_url_bytes=url_limit,
        max_header_bytes=head_limit,
        max_headers=max_headers,
        header_timeout=_positive("--header-timeout", _duration("--header-timeout", header_timeout)),
        max_queue=max_queue,
        drain_seconds=_duration("--drain-timeout", drain_timeout),
        access_log=access_log,
        allow_python=allow_python,
        http=http_layer,
        coalesce=coalesce,
        spec_file=str(spec_file) if spec_file else None,
        env=env,
    )
    run_server(config)


def parse_models(models: tuple[str, ...], versions: str | None) -> list[tuple[str, dict[str, int]]]:
    out: list[tuple[str, dict[str, int]]] = []
    seen: set[str] = set()
    for arg in models:
        name, _, ref = arg.partition("@")
        if not name:
            raise UsageError(f"{arg!r}: expected MODEL, MODEL@VERSION or MODEL@ALIAS")
        if name in seen:
            raise UsageError(
                f"model {name!r} is given twice",
                hint="use --versions to serve several versions of one model",
            )
        seen.add(name)
        if versions is not None:
            if len(models) > 1:
                raise UsageError(
                    "--versions applies to a single MODEL",
                    hint="serve one model per process with --versions, or pin each with MODEL@VERSION",
                )
            if ref:
                raise UsageError(f"{arg!r}: give MODEL@{ref} or --versions, not both")
            out.append((name, parse_versions(versions)))
        else:
            out.append((name, {ref or "latest": 100}))
    return out


def parse_versions(text: str) -> dict[str, int]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(
            f"--versions is not valid JSON: {exc}", hint='e.g. --versions \'{"3": 90, "4": 10}\''
        ) from None
    if not isinstance(data, dict) or not data:
        raise UsageError(
            "--versions must be a JSON object of version or alias -> traffic share",
            hint='e.g. {"3": 90, "4": 10}',
        )
    shares: dict[str, int] = {}
    for key, value in data.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise UsageError(
                f"--versions: the share of {key!r} must be a whole number >= 0, got {value!r}"
            )
        shares[str(key)] = value
    if sum(shares.values()) <= 0:
        raise UsageError("--versions: the shares add up to 0")
    return shares


def _duration(flag: str, value: str) -> float:
    from mizzen.spec.units import parse_duration

    try:
        return float(value)
    except ValueError:
        pass
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise UsageError(f"{flag}: {exc}") from None


def _positive(flag: str, seconds: float) -> float:
    if seconds <= 0:
        raise UsageError(f"{flag} must be more than 0 seconds")
    return seconds


_SIZE_UNITS = {
    "": 1,
    "k": 1000,
    "m": 1000**2,
    "g": 1000**3,
    "ki": 1024,
    "mi": 1024**2,
    "gi": 1024**3,
}


def _size(flag: str, value: str) -> int:
    import re

    match = re.fullmatch(r"\s*(\d+)\s*([kKmMgG]i?)?[bB]?\s*", value)
    if not match:
        raise UsageError(
            f"{flag}: {value!r} is not a size; expected e.g. 1048576, 512Ki, 16Mi or 1Gi"
        )
    return int(match.group(1)) * _SIZE_UNITS[(match.group(2) or "").lower()]
