"""The run-time contract: the variables a workload sees, decided here and nowhere else.

Targets turn it into a process environment (local) or container `env` with
`configMapKeyRef`/`secretKeyRef` (Kubernetes); `mizzen exec`, the SDK (`import mizzen`),
`mizzen notebook`'s kernels and the project store look-up read it back through `read()`.
Standard library only: the SDK imports it in every job.

| variable | what |
|---|---|
| `MIZZEN_PROJECT`, `MIZZEN_WORKLOAD`, `MIZZEN_TARGET`, `MIZZEN_ENV` | who runs, where |
| `MIZZEN_RUN_ID`, `MIZZEN_RUN_DATE`, `MIZZEN_RUN_DIR` | the run; its staging folder (metrics, params, outputs) |
| `MIZZEN_VOLUME_<NAME>` | where volume NAME is mounted |
| `MIZZEN_CONFIG_KEYS` | the config keys (each also an env var of its own name) |
| `MIZZEN_SECRET_<SECRET>_<KEY>` | a secret's value |
| `MIZZEN_STORE`, `MIZZEN_STORE_OPTIONS`, `MIZZEN_STORE_SECRET` | the project store (URL, fsspec options as JSON, the secret with its credentials) |
| `MIZZEN_GIT_SHA`, `MIZZEN_IMAGE`, `MIZZEN_SPEC_DIGEST` | what ran (the image: in a cluster) |
| `MIZZEN_PIPELINE`, `MIZZEN_STEP` | a pipeline step's pipeline and step name |
| `MIZZEN_SETS`, `MIZZEN_ALERTS` | `--set` overrides of a cluster run (JSON), the alerts `mizzen exec` sends from a pod |
| `MIZZEN_SESSION` | a `mizzen notebook` session |
| `MIZZEN_DATASETS` | the datasets a job reads and writes (JSON: their stores, declarations, inputs, outputs) |
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from mizzen.errors import UsageError

PREFIX = "MIZZEN_"
PROJECT = "MIZZEN_PROJECT"
WORKLOAD = "MIZZEN_WORKLOAD"
TARGET = "MIZZEN_TARGET"
ENV = "MIZZEN_ENV"
RUN_ID = "MIZZEN_RUN_ID"
RUN_DATE = "MIZZEN_RUN_DATE"
RUN_DIR = "MIZZEN_RUN_DIR"
CONFIG_KEYS = "MIZZEN_CONFIG_KEYS"
VOLUME = "MIZZEN_VOLUME_"
SECRET = "MIZZEN_SECRET_"
STORE = "MIZZEN_STORE"
STORE_OPTIONS = "MIZZEN_STORE_OPTIONS"
STORE_SECRET = "MIZZEN_STORE_SECRET"
GIT_SHA = "MIZZEN_GIT_SHA"
IMAGE = "MIZZEN_IMAGE"
SPEC_DIGEST = "MIZZEN_SPEC_DIGEST"
PIPELINE = "MIZZEN_PIPELINE"
STEP = "MIZZEN_STEP"
SETS = "MIZZEN_SETS"
ALERTS = "MIZZEN_ALERTS"
SESSION = "MIZZEN_SESSION"
DATASETS = "MIZZEN_DATASETS"
# not part of the contract a workload sees: settings of mizzen itself
OWN_SETTINGS = ("MIZZEN_VOLUME_WAIT", "MIZZEN_UI_ALLOW_HOSTS")


def token(text: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in text).upper()


def volume_var(volume: str) -> str:
    """The variable holding where `volume` is mounted (what `mizzen.volume(name)` reads)."""
    return VOLUME + token(volume)


def secret_var(secret: str, key: str) -> str:
    """The variable a secret key is exposed as (what `mizzen.secret(name, key)` reads)."""
    return SECRET + token(secret) + "_" + token(key)


# --- writing ------------------------------------------------------------------------------


def identity(project: str, workload: str) -> dict[str, str]:
    return {PROJECT: project, WORKLOAD: workload}


def config_vars(config: Mapping[str, str]) -> dict[str, str]:
    """The config keys, and the list of them (so the SDK tells config from other env vars)."""
    if not config:
        return {}
    return {CONFIG_KEYS: ",".join(sorted(config)), **config}


def run_vars(
    run_id: str,
    run_date: str,
    run_dir: str,
    target: str,
    *,
    env: str | None = None,
    git_sha: str | None = None,
) -> dict[str, str]:
    out = {RUN_ID: run_id, RUN_DATE: run_date, RUN_DIR: run_dir, TARGET: target}
    if env:
        out[ENV] = env
    if git_sha:
        out[GIT_SHA] = git_sha
    return out


def store_vars(url: str | None, options: Mapping[str, Any], secret: str | None) -> dict[str, str]:
    """Where the project store is; its credentials go as the store secret's variables."""
    if url is None:
        return {}
    out = {STORE: url, STORE_OPTIONS: json.dumps(dict(options), sort_keys=True)}
    if secret:
        out[STORE_SECRET] = secret
    return out


def step_vars(pipeline: str, step: str) -> dict[str, str]:
    return {PIPELINE: pipeline, STEP: step}


def datasets_var(
    datasets: Mapping[str, Mapping[str, Any]],
    stores: Mapping[str, Mapping[str, Any]],
    inputs: list[str],
    outputs: list[str],
    *,
    every: bool = False,
) -> dict[str, str]:
    """The datasets a job may open: `datasets` name -> {store, path, spec}; `stores` name ->
    {url, options, secret}; which it reads and which it writes; `every`: these are all the
    project's datasets (what erasure and maintenance must see)."""
    if not datasets:
        return {}
    payload: dict[str, Any] = {
        "datasets": datasets,
        "stores": stores,
        "inputs": inputs,
        "outputs": outputs,
    }
    if every:
        payload["all"] = True
    return {DATASETS: json.dumps(payload, sort_keys=True, default=str)}


# --- reading ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Store:
    url: str
    options: dict[str, Any]
    secret: str | None


@dataclass(frozen=True)
class Contract:
    """What a running workload was given (all optional: a process mizzen did not start
    has none of it)."""

    project: str | None = None
    workload: str | None = None
    target: str | None = None
    env: str | None = None
    run_id: str | None = None
    run_date: str | None = None
    run_dir: str | None = None
    store: Store | None = None
    volumes: dict[str, str] = field(default_factory=dict)  # variable token -> path
    config_keys: tuple[str, ...] | None = None  # None: no config given at all
    git_sha: str | None = None
    image: str | None = None
    spec_digest: str | None = None
    pipeline: str | None = None
    step: str | None = None
    sets: dict[str, str] = field(default_factory=dict)
    alerts: str | None = None
    session: str | None = None
    datasets: dict[str, Any] | None = None  # MIZZEN_DATASETS, parsed

    def volume(self, name: str) -> str | None:
        return self.volumes.get(token(name))

    def config(self, key: str, environ: Mapping[str, str]) -> str | None:
        if self.config_keys is None or key not in self.config_keys:
            return None
        return environ.get(key)


class ContractError(UsageError, ValueError):
    """A contract variable that cannot be read (e.g. options that are not JSON)."""

    def __init__(self, message: str) -> None:
        super().__init__(
            message, hint="mizzen sets these variables for its runs: unset it, or fix its value"
        )


def read(environ: Mapping[str, str]) -> Contract:
    """The contract from a process environment."""

    def get(name: str) -> str | None:
        return environ.get(name) or None

    store = None
    if get(STORE):
        try:
            options = json.loads(environ.get(STORE_OPTIONS) or "{}")
        except json.JSONDecodeError as exc:
            raise ContractError(f"{STORE_OPTIONS} is not valid JSON: {exc}") from None
        store = Store(environ[STORE], options, get(STORE_SECRET))
    try:
        sets = json.loads(environ.get(SETS) or "{}")
    except json.JSONDecodeError as exc:
        raise ContractError(f"{SETS} is not valid JSON: {exc}") from None
    try:
        datasets = json.loads(environ[DATASETS]) if environ.get(DATASETS) else None
    except json.JSONDecodeError as exc:
        raise ContractError(f"{DATASETS} is not valid JSON: {exc}") from None
    keys = environ.get(CONFIG_KEYS)
    volumes = {
        k.removeprefix(VOLUME): v
        for k, v in environ.items()
        if k.startswith(VOLUME) and k not in OWN_SETTINGS and v
    }
    return Contract(
        project=get(PROJECT),
        workload=get(WORKLOAD),
        target=get(TARGET),
        env=get(ENV),
        run_id=get(RUN_ID),
        run_date=get(RUN_DATE),
        run_dir=get(RUN_DIR),
        store=store,
        volumes=volumes,
        config_keys=tuple(k for k in keys.split(",") if k) if keys is not None else None,
        git_sha=get(GIT_SHA),
        image=get(IMAGE),
        spec_digest=get(SPEC_DIGEST),
        pipeline=get(PIPELINE),
        step=get(STEP),
        sets={str(k): str(v) for k, v in sets.items()},
        alerts=get(ALERTS),
        session=get(SESSION),
        datasets=datasets,
    )


def secret_values(environ: Mapping[str, str]) -> tuple[str, ...]:
    """Every secret value the process was given (masked wherever mizzen prints)."""
    return tuple(sorted(v for k, v in environ.items() if k.startswith(SECRET) and v))
