"""`mizzen notebook`: JupyterLab on 127.0.0.1 with the environment a job gets.

The project's volumes are materialised first and exposed as `MIZZEN_VOLUME_*`, config keys
and secrets become env vars, `MIZZEN_STORE` points at the project store, every dataset is
given to read: so notebook code calls `mizzen.volume("raw")`, `mizzen.dataset("trips")`,
`mizzen.config(...)`, `mizzen.secret(...)` and `mizzen.load_model(...)` exactly as a job does.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import click

from mizzen.cli.common import load_plan, spec_options


@click.command()
@spec_options
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config value for this session.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=8888,
    show_default=True,
    help="Port on 127.0.0.1 (0: a free one).",
)
@click.option("--no-browser", is_flag=True, help="Do not open a browser.")
@click.option(
    "--write-back/--no-write-back",
    default=False,
    show_default=True,
    help="When Jupyter exits, write read-write blob volumes back to their stores (as a successful job would).",
)
@click.argument("path", required=False, type=click.Path(path_type=Path))
def notebook(
    spec_file: Path | None,
    env: str | None,
    sets: tuple[str, ...],
    port: int,
    no_browser: bool,
    write_back: bool,
    path: Path | None,
) -> int:
    """Start JupyterLab with the project's volumes, config and secrets (PATH: a notebook or folder to open)."""
    import importlib.util

    from mizzen.errors import MissingExtraError
    from mizzen.storage.volumes import VolumeSession

    if importlib.util.find_spec("jupyterlab") is None:
        raise MissingExtraError("mizzen notebook", "notebook", "jupyterlab")
    plan = load_plan(spec_file, env, "local", sets=sets)
    session_id = "notebook-" + time.strftime("%Y%m%d-%H%M%S")
    mounts = project_mounts(plan)
    volumes = VolumeSession(
        mounts,
        session_id,
        time.strftime("%Y-%m-%d"),
        progress=sys.stderr.isatty(),
        root=plan.root,
        env=plan.env,
    )
    volumes.prepare()
    try:
        environment = session_env(plan, volumes, mounts, session_id)
        argv = jupyter_argv(plan.root, port, no_browser, path)
        names = ", ".join(m.volume for m in mounts) or "none"
        click.echo(
            f"mizzen notebook: project {plan.project}{f' (env {plan.env})' if plan.env else ''}, volumes: {names}",
            err=True,
        )
        code = run_jupyter(argv, plan.root, environment)
        finished = code in (0, 130, -2, -15)
        if write_back and finished:
            volumes.commit()
            click.echo("mizzen notebook: read-write volumes written back", err=True)
        elif any(m.kind == "blob" and not m.read_only for m in mounts):
            click.echo(
                "mizzen notebook: read-write volumes were not written back (use --write-back to keep notebook changes in the store)",
                err=True,
            )
        return 0 if finished else code
    finally:
        volumes.cleanup()


def run_jupyter(argv: list[str], cwd: str, env: dict[str, str]) -> int:
    """Jupyter in the foreground; Ctrl-C is Jupyter's own, SIGTERM is passed on to it, and
    either way this process lives on to clean up the session's volumes."""
    import signal

    proc = subprocess.Popen(argv, cwd=cwd, env=env)
    old_term = signal.signal(signal.SIGTERM, lambda *_: proc.send_signal(signal.SIGTERM))
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)  # set after exec: Jupyter keeps Ctrl-C
    try:
        return proc.wait()
    finally:
        signal.signal(signal.SIGTERM, old_term)
        signal.signal(signal.SIGINT, old_int)


def project_mounts(plan: Any) -> tuple[Any, ...]:
    """Every volume any workload of the project mounts, once."""
    seen: dict[str, Any] = {}
    for workload in (*plan.jobs.values(), *plan.services.values()):
        for mount in workload.process.mounts:
            seen.setdefault(mount.volume, mount)
    return tuple(seen.values())


def session_env(
    plan: Any, volumes: Any, mounts: tuple[Any, ...], session_id: str
) -> dict[str, str]:
    """A job's environment: config, volumes, secrets (those set), project and store."""
    from mizzen import contract
    from mizzen.secrets import SecretValues, secret_env_name
    from mizzen.targets.local.env import inherited, store_vars

    env = inherited()
    env.update(contract.identity(plan.project, "notebook"))
    env.update({contract.TARGET: "local", contract.SESSION: session_id})
    if plan.env:
        env[contract.ENV] = plan.env
    env.update(contract.config_vars(plan.config))
    for mount in mounts:
        env[mount.env_name] = str(volumes.path(mount))
    env.update(store_vars(plan.store))
    if plan.datasets:  # every dataset, to read (`mizzen.dataset(name)`); writes are versions
        from mizzen.plan.compile import datasets_vars

        decls = list(plan.datasets.values())
        env.update(datasets_vars(decls, list(plan.datasets), [], every=True))
    values = SecretValues(plan.root, plan.env)
    missing = []
    for decl in plan.secrets.values():
        for key in decl.keys:
            value = values.get(decl.name, key)
            if value is None:
                missing.append(f"{decl.name}.{key}")
            else:
                env[secret_env_name(decl.name, key)] = value
    if missing:
        click.echo(
            f"mizzen notebook: secrets without a value (mizzen.secret() will fail for them): {', '.join(missing)}",
            err=True,
        )
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    return env


def jupyter_argv(root: str, port: int, no_browser: bool, path: Path | None) -> list[str]:
    if port == 0:
        from mizzen.targets.local.distributed import free_ports

        port = free_ports(1)[0]
    argv = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        f"--ServerApp.root_dir={root}",
    ]
    if no_browser:
        argv.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")  # dev containers often run as root
    if path is not None:
        target = path.resolve()
        if not target.exists():
            from mizzen.errors import UsageError

            raise UsageError(f"{path}: no such notebook or folder")
        try:
            rel = target.relative_to(Path(root).resolve())
        except ValueError:
            from mizzen.errors import UsageError

            raise UsageError(
                f"{path} is outside the project folder {root}",
                hint="open a notebook inside the project",
            ) from None
        argv.append(f"--ServerApp.default_url=/lab/tree/{rel.as_posix()}")
    return argv
