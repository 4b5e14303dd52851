"""The runtime SDK: what job code calls inside a run (`import mizzen`).

It reads only the environment the target set, through the run-time contract
(`mizzen.contract`: volumes, config keys, secrets, the run), so it behaves the same in a
local process and in a pod. Metrics and params go to files in `MIZZEN_RUN_DIR`, which the runner
uploads with the run record. Outside a run the log_* calls warn once and do nothing.
"""

from __future__ import annotations

import functools
import json
import math
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

from mizzen import contract
from mizzen.errors import UsageError

_lock = threading.Lock()
_warned = False
_UNSET: Any = object()


def _workload() -> str | None:
    return _given().workload


def _where() -> str:
    name = _workload()
    return f"job {name!r}" if name else "this process (not started by mizzen)"


def _given() -> contract.Contract:
    return contract.read(os.environ)


def _outside_run_hint() -> str:
    return "start it with `mizzen run JOB` (or `mizzen notebook`), which sets the environment the SDK reads"


def volume(name: str) -> Path:
    """The folder where volume `name` is mounted for this run."""
    value = _given().volume(name)
    if value:
        return Path(value)
    workload = _workload()
    if workload is None:
        raise UsageError(f"volume {name!r}: not inside a mizzen run", hint=_outside_run_hint())
    raise UsageError(
        f"volume {name!r} is not mounted in {_where()}",
        hint=f"add `volumes: [{name}]` to {workload} in mizzen.yaml (or use ${{volumes.{name}}} in its args)",
    )


def dataset(name: str) -> Any:
    """A dataset the job names in `inputs` or `outputs` (mizzen.datasets.catalog.DatasetHandle):
    `.path`, `.arrow()`, `.to_table()`, `.duckdb()` to read (a pinned input: its version),
    `.write(data)` to write (an output: checked now, committed once the job succeeded)."""
    from mizzen.datasets.jobs import handle

    return handle(name)


def config(key: str, default: Any = _UNSET) -> str:
    """A value of the spec's `config:` section (after `--set` and the environment overlay)."""
    given = _given()
    found = given.config(key, os.environ)
    if found is not None:
        return found
    keys = ",".join(given.config_keys) if given.config_keys is not None else None
    if default is not _UNSET:
        return default
    if keys is None:
        raise UsageError(
            f"config {key!r}: no config in {_where()}",
            hint=f"add it under `config:` in mizzen.yaml; {_outside_run_hint()}"
            if _workload() is None
            else f"add `{key}: ...` under `config:` in mizzen.yaml",
        )
    known = ", ".join(k for k in keys.split(",") if k) or "(none)"
    raise UsageError(
        f"config {key!r} is not set",
        hint=f"config keys: {known}; add it under `config:` in mizzen.yaml",
    )


def secret(name: str, key: str) -> str:
    """The value of key `key` of secret `name` (the job must list the secret)."""
    value = os.environ.get(contract.secret_var(name, key))
    if value is not None:
        return value
    workload = _workload()
    if workload is None:
        raise UsageError(f"secret {name}.{key}: not inside a mizzen run", hint=_outside_run_hint())
    raise UsageError(
        f"secret {name}.{key} is not available to {_where()}",
        hint=f"add `secrets: [{name}]` to {workload} in mizzen.yaml (and `{key}` to secrets.{name})",
    )


def run_id() -> str | None:
    """The id of the current run (None outside a run)."""
    return _given().run_id


def run_date() -> str | None:
    """The date of the current run (YYYY-MM-DD, UTC), None outside a run."""
    return _given().run_date


def _run_dir() -> Path | None:
    value = _given().run_dir
    return Path(value) if value else None


def outputs_dir() -> Path:
    """A folder whose files are kept with the run (`${run.outputs}`)."""
    base = _run_dir()
    if base is None:
        raise UsageError("outputs_dir(): not inside a mizzen run", hint=_outside_run_hint())
    path = base / "outputs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _warn_outside(what: str) -> None:
    global _warned
    if not _warned:
        _warned = True
        print(
            f"mizzen: {what} ignored: not inside a mizzen run (MIZZEN_RUN_DIR is not set)",
            file=sys.stderr,
        )


@functools.lru_cache(maxsize=4)
def _redactor(values: tuple[str, ...]) -> Any:
    from mizzen.targets.local.console import Redactor

    return Redactor(values)


def _unmasked(call: str, name: Any, value: Any = None) -> tuple[str, Any]:
    """`name` and `value` with the values of this run's secrets masked (a warning says so):
    params and metric names are shown to whoever can read the run records."""
    values = contract.secret_values(os.environ)
    if not values:
        return str(name), value
    from mizzen.targets.local.console import MASK

    mask = _redactor(values)
    safe_name, safe_value = mask(str(name)), mask.json(value)
    if safe_name != str(name) or json.dumps(safe_value) != json.dumps(value):
        where = "name" if safe_name != str(name) else "value"
        print(
            f"mizzen: {call}({safe_name!r}, ...): the {where} holds the value of a secret; "
            f"it is recorded as {MASK}",
            file=sys.stderr,
        )
    return safe_name, safe_value


def log_metric(name: str, value: float, step: int | None = None) -> None:
    """Record a metric value (the last value of each name is shown with the run)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        try:
            value = float(value)  # numpy scalars and the like
        except (TypeError, ValueError):
            raise UsageError(f"log_metric({name!r}, ...): {value!r} is not a number") from None
    if not math.isfinite(value):
        raise UsageError(f"log_metric({name!r}, ...): {value} is not a finite number")
    if step is not None and (isinstance(step, bool) or not isinstance(step, int)):
        raise UsageError(f"log_metric({name!r}, ..., step={step!r}): step must be an integer")
    base = _run_dir()
    if base is None:
        _warn_outside("log_metric")
        return
    name, _ = _unmasked("log_metric", name)
    line = (
        json.dumps({"name": name, "value": float(value), "step": step, "time": time.time()}) + "\n"
    )
    with _lock:
        base.mkdir(parents=True, exist_ok=True)
        with open(base / "metrics.jsonl", "a", encoding="utf-8") as fh:
            fh.write(line)


def log_param(name: str, value: Any) -> None:
    """Record a parameter of this run (JSON values; anything else is stored as text)."""
    base = _run_dir()
    if base is None:
        _warn_outside("log_param")
        return
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        value = str(value)
    name, value = _unmasked("log_param", name, value)
    with _lock:
        base.mkdir(parents=True, exist_ok=True)
        file = base / "params.json"
        params = json.loads(file.read_text(encoding="utf-8")) if file.is_file() else {}
        params[name] = value
        tmp = file.with_suffix(".tmp")
        tmp.write_text(json.dumps(params, indent=1, sort_keys=True), encoding="utf-8")
        tmp.replace(file)
