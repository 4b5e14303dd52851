"""Find the project store, and open a plan's `StoreRef` with its credentials.

Order for `project_store()`:
1. `MIZZEN_STORE` (a URL) with `MIZZEN_STORE_OPTIONS` (JSON fsspec options) and optionally
   `MIZZEN_STORE_SECRET` (the spec secret holding its credentials): this is how processes a
   target starts find the store without reading the spec;
2. the nearest `mizzen.yaml`, compiled for the local target: `plan.store`;
3. `.mizzen/store` in the current folder.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mizzen.errors import SecretMissingError, SpecError
from mizzen.plan.model import StoreRef
from mizzen.storage.base import Store, open_store, protocol_of

# protocol -> {secret key -> fsspec keyword}
_SECRET_KEYS: dict[str, dict[str, str]] = {
    "s3": {"access_key_id": "key", "secret_access_key": "secret", "session_token": "token"},
    "abfs": {
        "connection_string": "connection_string",
        "account_key": "account_key",
        "sas_token": "sas_token",
    },
    "gs": {"token": "token"},
}
_SECRET_KEYS["s3a"] = _SECRET_KEYS["s3"]
_SECRET_KEYS["abfss"] = _SECRET_KEYS["az"] = _SECRET_KEYS["abfs"]
_SECRET_KEYS["gcs"] = _SECRET_KEYS["gs"]


def contract_store(
    environ: Mapping[str, str] | None = None, env: str | None = None
) -> Store | None:
    """The project store the run-time contract names (None when it names none)."""
    from mizzen import contract

    environ = os.environ if environ is None else environ
    given = contract.read(environ)
    if given.store is None:
        return None
    ref = StoreRef("project", given.store.url, given.store.options, given.store.secret)
    return open_ref(ref, env=env or given.env, environ=environ)


def project_store(spec_file: str | Path | None = None, env: str | None = None) -> Store:
    """The store holding run records and models for this project."""
    given = contract_store(env=env)
    if given is not None:
        return given
    from mizzen import spec as spec_mod

    try:
        file = Path(spec_file) if spec_file is not None else spec_mod.find_spec()
    except SpecError:
        return open_store((Path.cwd() / ".mizzen" / "store").as_uri())
    from mizzen.plan.cache import cached_plan

    plan = cached_plan(file, env, "local")
    if plan.store is None:
        return open_store((Path(plan.root) / ".mizzen" / "store").as_uri())
    return open_ref(plan.store, root=Path(plan.root), env=plan.env)


def open_ref(
    ref: StoreRef,
    *,
    root: Path | None = None,
    env: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> Store:
    """Open a plan's store, adding the credentials of its `secret` (if any) to the options."""
    options: dict[str, Any] = dict(ref.options)
    if ref.secret:
        options.update(secret_credentials(ref, root=root, env=env, environ=environ))
    return open_store(ref.url, **options)


def secret_credentials(
    ref: StoreRef,
    *,
    root: Path | None = None,
    env: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """fsspec keywords from the store's secret: every key the secret has a value for."""
    assert ref.secret is not None
    proto = protocol_of(ref.url)
    mapping = _SECRET_KEYS.get(proto)
    if mapping is None:  # a local folder (e.g. the laptop sandbox of a cloud store): none needed
        return {}
    values = secret_values(ref.secret, list(mapping), root=root, env=env, environ=environ)
    if not values:
        sources = _sources(ref.secret, root, env)
        wanted = [k for k in mapping if k not in _OPTIONAL_KEYS]
        raise SecretMissingError([(ref.secret, k) for k in wanted], sources)
    return {mapping[k]: v for k, v in values.items()}


def secret_values(
    secret: str,
    keys: list[str],
    *,
    root: Path | None = None,
    env: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Values of `secret.key` from `MIZZEN_SECRET_<NAME>_<KEY>`, else `.mizzen/secrets/<env>.env`."""
    from mizzen.secrets import SecretValues

    found = SecretValues(root or Path.cwd(), env, environ)
    values = {key: found.get(secret, key) for key in keys}
    return {k: v for k, v in values.items() if v}


def secrets_file(root: Path | None, env: str | None) -> Path:
    from mizzen.secrets import SecretValues

    return SecretValues(root or Path.cwd(), env).file


_OPTIONAL_KEYS = ("session_token",)


def _sources(secret: str, root: Path | None, env: str | None) -> list[str]:
    from mizzen.plan.model import secret_env_name

    prefix = secret_env_name(secret, "k")[:-1]
    return [f"the environment ({prefix}<KEY>)", str(secrets_file(root, env))]
