"""`mizzen ui`: the local, read-only dashboard over the project store."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import click

from mizzen.cli.common import spec_options

LOOPBACK = ("127.0.0.1", "localhost", "::1")
ALLOW_HOSTS_ENV = "MIZZEN_UI_ALLOW_HOSTS"


def _plan(spec_file: Path | None, env: str | None) -> Any:
    """The local plan, or None when there is no mizzen.yaml here (the store still opens)."""
    from mizzen import spec as spec_mod
    from mizzen.cli.common import load_plan
    from mizzen.errors import SpecError

    if spec_file is None:
        try:
            spec_file = spec_mod.find_spec()
        except SpecError:
            return None
    return load_plan(spec_file, env)


def _allowed_hosts(given: tuple[str, ...], environ: dict[str, str] | None = None) -> list[str]:
    """`--allow-host` values and the names in MIZZEN_UI_ALLOW_HOSTS (commas or spaces)."""
    import os

    from mizzen.errors import UsageError
    from mizzen.ui.asgi import split_host

    env_text = (os.environ if environ is None else environ).get(ALLOW_HOSTS_ENV, "")
    items = [(v, "--allow-host") for v in given]
    items += [(v, ALLOW_HOSTS_ENV) for v in env_text.replace(",", " ").split()]
    for value, where in items:
        if value.strip() == "*":
            continue
        problem = ""
        if not value.strip():
            problem = "is empty"
        elif "/" in value or "@" in value:
            problem = "is not a host name (give NAME or NAME:PORT, not a URL)"
        else:
            try:
                split_host(value)
            except ValueError as exc:
                problem = str(exc).split(": ", 1)[-1]
        if problem:
            raise UsageError(
                f"{where} {value!r} {problem}",
                hint="e.g. --allow-host dash.example.com or --allow-host dash.example.com:8443",
            )
    return [v for v, _ in items]


def _check_port(host: str, port: int) -> None:
    from mizzen.errors import UsageError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            raise UsageError(
                f"cannot listen on {host}:{port}: {exc.strerror}",
                hint="pick another port with --port",
            ) from None


@click.command("ui")
@spec_options
@click.option(
    "-p",
    "--port",
    default=8765,
    show_default=True,
    type=click.IntRange(1, 65535),
    help="Port to listen on.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; anything but loopback shares the dashboard with your network.",
)
@click.option(
    "--allow-host",
    "allow_hosts",
    multiple=True,
    metavar="NAME[:PORT]",
    help=f"Also answer requests for this host name (repeatable; also {ALLOW_HOSTS_ENV}). "
    "Others get 403, so web pages of other sites cannot read the dashboard (DNS rebinding); "
    "'*' turns the check off.",
)
def ui(
    spec_file: Path | None, env: str | None, port: int, host: str, allow_hosts: tuple[str, ...]
) -> None:
    """Open the local dashboard: runs, logs, metrics, pipelines, models, services, releases.

    Read-only, no database: everything comes from the project store. It answers only requests
    addressed to the names it listens on (127.0.0.1, localhost, [::1], --host) and to
    --allow-host names.
    """
    try:
        import uvicorn
    except ImportError:
        from mizzen.errors import MissingExtraError

        raise MissingExtraError("the dashboard", "ui", "uvicorn") from None
    from mizzen.storage.project import project_store
    from mizzen.ui.app import create_app
    from mizzen.ui.asgi import AllowedHosts

    allowed = AllowedHosts.for_bind(host, port, _allowed_hosts(allow_hosts))
    plan = _plan(spec_file, env)
    store = project_store(spec_file, env)
    _check_port(host, port)
    if host not in LOOPBACK:
        click.secho(
            f"warning: the dashboard has no login; anyone who can reach {host}:{port} can read runs, logs, params and models.",
            fg="yellow",
            err=True,
        )
    shown = "localhost" if host in LOOPBACK else host
    click.echo(
        f"mizzen dashboard for {plan.project if plan else store.url} on http://{shown}:{port}  (Ctrl-C to stop)"
    )
    uvicorn.run(
        create_app(store, plan, allowed_hosts=allowed),
        host=host,
        port=port,
        log_level="warning",
        http="httptools",
        lifespan="on",
    )
