"""The environment and resource checks of a local process, from the Plan."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from mizzen import contract
from mizzen.errors import UsageError
from mizzen.spec.interpolate import fill_run
from mizzen.targets.local import interpreter

if TYPE_CHECKING:
    from mizzen.plan.model import Process, Resources, StoreRef

THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def inherited() -> dict[str, str]:
    """This shell's environment without mizzen's own variables (the target sets those)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(contract.PREFIX)}
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def fill(text: str, run_id: str, run_date: str, outputs: str) -> str:
    return fill_run(text, run_id, run_date, outputs) if "${run." in text else text


def run_vars(
    run_id: str,
    run_date: str,
    run_dir: Path,
    store: StoreRef | None,
    target: str = "local",
    *,
    env_name: str | None = None,
    git_sha: str | None = None,
) -> dict[str, str]:
    env = contract.run_vars(run_id, run_date, str(run_dir), target, env=env_name, git_sha=git_sha)
    env.update(store_vars(store))
    return env


def store_vars(store: StoreRef | None) -> dict[str, str]:
    if store is None:
        return {}
    return contract.store_vars(store.url, store.options, store.secret)


def store_secret_vars(
    store: StoreRef | None,
    keys: Mapping[str, tuple[str, ...]],
    values: Mapping[tuple[str, str], str],
) -> dict[str, str]:
    """The project store's credentials, as the store secret's variables (those with a value)."""
    if store is None or not store.secret:
        return {}
    return {
        contract.secret_var(store.secret, key): values[(store.secret, key)]
        for key in keys.get(store.secret, ())
        if (store.secret, key) in values
    }


def process_env(
    process: Process,
    secrets: Mapping[tuple[str, str], str],
    *,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Base env + the Plan's env (config, volumes, secrets, the workload's own) + thread limits."""
    env = dict(inherited() if base is None else base)
    for var in process.env:
        if var.secret is not None:
            env[var.name] = secrets[(var.secret.secret, var.secret.key)]
        elif var.value is not None:
            env[var.name] = var.value
    threads = cpu_threads(process.resources)
    if threads is not None:
        own = {v.name for v in process.env}
        for name in THREAD_VARS:
            if name not in own and name not in os.environ:
                env[name] = str(threads)
    return env


def cpu_threads(resources: Resources) -> int | None:
    cpu = resources.cpu_limit or resources.cpu
    if not cpu:
        return None
    from mizzen.spec.units import parse_quantity

    return max(1, math.ceil(parse_quantity(cpu)))


def memory_limit(resources: Resources) -> tuple[int, str] | None:
    text = resources.memory_limit or resources.memory
    if not text:
        return None
    from mizzen.spec.units import parse_quantity

    return int(parse_quantity(text)), text


def check_gpus(workload: str, resources: Resources) -> None:
    """Refuse before anything starts when the machine lacks the GPUs a workload asks for."""
    need = resources.gpu
    if not need:
        return
    plural = "GPU" if need == 1 else "GPUs"
    hint = "set resources.gpu: 0 for local runs (an environment overlay can add GPUs for the cluster), or run it with --target kubernetes"
    smi = shutil.which("nvidia-smi")
    if smi is None:
        raise UsageError(
            f"{workload} needs {need} {plural}, none found on this machine (no nvidia-smi)",
            hint=hint,
        )
    listed = subprocess.run([smi, "-L"], capture_output=True, text=True, check=False).stdout
    have = sum(1 for line in listed.splitlines() if line.startswith("GPU "))
    if have < need:
        raise UsageError(f"{workload} needs {need} {plural}, this machine has {have}", hint=hint)


def resolve_mizzen(argv: list[str]) -> list[str]:
    """`mizzen ...` runs this very installation, whatever PATH says; locally, `python ...` and
    `python3 ...` run with the project's Python (interpreter.choose, via its launcher)."""
    if not argv:
        return argv
    if argv[0] == "mizzen":
        script = Path(sys.executable).parent / "mizzen"
        if script.is_file():
            return [str(script), *argv[1:]]
        return [sys.executable, "-m", "mizzen.cli.main", *argv[1:]]
    if argv[0] in interpreter.NAMES and os.environ.get(contract.TARGET) != "kubernetes":
        return [*_LAUNCHER, *argv]
    return argv


_LAUNCHER = (sys.executable, "-I", "-S", interpreter.__file__)


def unresolved(argv: list[str]) -> list[str]:
    """The command as written, before resolve_mizzen put the interpreter launcher in front."""
    n = len(_LAUNCHER)
    return argv[n:] if tuple(argv[:n]) == _LAUNCHER else argv


def working_dir(root: str, process: Process, workload: str) -> Path:
    cwd = Path(root) / process.working_dir if process.working_dir else Path(root)
    if not cwd.is_dir():
        raise UsageError(
            f"{workload}: workingDir {process.working_dir!r} is not a folder in {root}",
            hint="workingDir is relative to the project folder",
        )
    return cwd
