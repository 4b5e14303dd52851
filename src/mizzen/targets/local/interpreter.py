"""Which Python a local `python ...` / `python3 ...` command runs with (docs/spec.md,
Run-time environment), and the small launcher that applies the rule.

The rule, in order: the project's own `.venv` (in the folder the process runs in, or a parent
up to the one holding mizzen.yaml); the active virtualenv (`VIRTUAL_ENV`, then conda's
`CONDA_PREFIX`) of the process's environment; else the Python mizzen itself runs under. When
that Python is not mizzen's own, mizzen's SDK is made importable in it: `sdk_path/` (only a
`mizzen` package that loads the environment's own mizzen when it has one, else this one) is
appended to `PYTHONPATH`, so no project dependency is ever shadowed.

`env.resolve_mizzen` turns `python ARGS` into `<mizzen's python> -I -S <this file> python
ARGS`: the launcher runs in the process's final working directory and environment, picks the
interpreter and execs it (same pid), or says on stderr what to fix and exits 127. It uses the
standard library only.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

NAMES = ("python", "python3")
SPEC_FILE = "mizzen.yaml"
SDK_PATH = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sdk_path")
RULE = "docs/spec.md, Run-time environment"


class NoInterpreter(Exception):
    """The rule picked an environment whose Python cannot run."""


def project_venv(cwd: str) -> str | None:
    """The `.venv` of `cwd` or of a parent up to the folder holding mizzen.yaml (only `cwd`'s
    when no parent holds one)."""
    here = os.path.abspath(cwd)
    folders = [here]
    while not os.path.isfile(os.path.join(folders[-1], SPEC_FILE)):
        parent = os.path.dirname(folders[-1])
        if parent == folders[-1]:
            folders = [here]
            break
        folders.append(parent)
    for folder in folders:
        venv = os.path.join(folder, ".venv")
        if os.path.isdir(venv):
            return venv
    return None


def env_python(prefix: str, name: str, problem: str) -> str:
    """The environment's `name` (else its python/python3); NoInterpreter(problem) if none runs."""
    for candidate in (name, "python", "python3"):
        path = os.path.join(prefix, "bin", candidate)
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    raise NoInterpreter(problem)


def choose(name: str, cwd: str, env: Mapping[str, str]) -> tuple[str, str]:
    """(the interpreter to run for `name`, where it comes from) by the rule above."""
    venv = project_venv(cwd)
    if venv is not None:
        fix = f"recreate it (uv venv {venv}, or python3 -m venv --clear {venv}) or remove it"
        problem = f"the project's {venv} has no working bin/python: {fix}"
        return env_python(venv, name, problem), f"the project's {venv}"
    for var in ("VIRTUAL_ENV", "CONDA_PREFIX"):
        prefix = env.get(var)
        if prefix:
            problem = f"{var} is {prefix}, which has no bin/python: activate a working environment or unset {var}"
            return env_python(prefix, name, problem), f"the active environment {prefix} ({var})"
    return sys.executable, "mizzen's own Python"


def is_own(path: str) -> bool:
    """`path` is in the environment mizzen runs in (same bin folder; symlinks not followed)."""
    here = os.path.dirname(os.path.abspath(sys.executable))
    return os.path.dirname(os.path.abspath(path)) == here


def child_env(path: str, env: Mapping[str, str]) -> dict[str, str]:
    out = dict(env)
    if not is_own(path):
        paths = [p for p in out.get("PYTHONPATH", "").split(os.pathsep) if p]
        if SDK_PATH not in paths:
            out["PYTHONPATH"] = os.pathsep.join([*paths, SDK_PATH])
    return out


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in NAMES:
        print(f"usage: {__file__} python|python3 [ARGS...]", file=sys.stderr)
        return 2
    try:
        path, where = choose(argv[0], os.getcwd(), os.environ)
    except NoInterpreter as exc:
        print(f"mizzen: cannot run {argv[0]}: {exc} ({RULE})", file=sys.stderr)
        return 127
    try:
        os.execve(path, [path, *argv[1:]], child_env(path, os.environ))
    except OSError as exc:
        print(
            f"mizzen: cannot run {argv[0]} with {where}: {path}: {exc.strerror} ({RULE})",
            file=sys.stderr,
        )
    return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
