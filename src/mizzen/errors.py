"""The small exception hierarchy every layer raises.

Each error carries structured fields (not only a message) so the CLI can print it, tests can
assert on it, and `--output json` can emit it. Exit codes follow one rule everywhere:
0 ok, 1 the workload failed, 2 bad input or usage.
"""

from __future__ import annotations

from dataclasses import dataclass

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_CANCELLED = 130  # 128 + SIGINT, as shells report Ctrl-C


@dataclass(frozen=True)
class Location:
    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        if self.column is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the user's input: where, which field, what, and how to fix it."""

    message: str
    field: str = ""
    location: Location | None = None
    hint: str = ""

    def __str__(self) -> str:
        head = f"{self.location}: " if self.location else ""
        where = f"{self.field}: " if self.field else ""
        tail = f" ({self.hint})" if self.hint else ""
        return f"{head}{where}{self.message}{tail}"

    def to_dict(self) -> dict[str, object]:
        loc = self.location
        return {
            "file": loc.file if loc else None,
            "line": loc.line if loc else None,
            "column": loc.column if loc else None,
            "field": self.field,
            "message": self.message,
            "hint": self.hint,
        }


class MizzenError(Exception):
    """Base of every error mizzen raises on purpose."""

    exit_code = EXIT_USAGE

    def __init__(self, message: str, *, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class UsageError(MizzenError):
    """The command line or an argument is wrong."""


class SpecError(MizzenError):
    """`mizzen.yaml` (or an overlay) is invalid; carries every problem found, not just the first."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        count = len(problems)
        noun = "problem" if count == 1 else "problems"
        body = "\n".join(f"  {p}" for p in problems)
        super().__init__(f"{count} {noun} in the spec:\n{body}")

    def __str__(self) -> str:
        return self.message


class MissingExtraError(MizzenError):
    """An optional backend is needed but its extra is not installed."""

    def __init__(self, what: str, extra: str, module: str) -> None:
        super().__init__(
            f"{what} needs the Python package {module!r}, which is not installed",
            hint=install_hint(f"mizzen[{extra}]"),
        )
        self.extra = extra
        self.module = module


def install_hint(requirement: str) -> str:
    """How to add `requirement` to the environment mizzen runs in: pipx's and uv's tool
    environments have their own commands, a uv-made venv has no pip."""
    import importlib.util
    import shutil
    import sys
    from pathlib import Path

    quoted = f"'{requirement}'"
    prefix = sys.prefix.replace("\\", "/")
    if "/pipx/venvs/" in prefix:
        return f"pipx runpip {Path(prefix).name} install {quoted}"
    if "/uv/tools/" in prefix:
        return f"uv tool install --force {quoted} (list every extra you use)"
    if sys.prefix != sys.base_prefix:  # a virtual environment
        if importlib.util.find_spec("pip") is not None:
            return f"{sys.executable} -m pip install {quoted}"
        if shutil.which("uv"):
            return f"uv pip install --python {sys.executable} {quoted}"
    return f"pip install {quoted}"


class NotSupportedError(MizzenError):
    """A spec feature the chosen target cannot run (yet): refused, never silently ignored."""

    def __init__(self, feature: str, target: str, *, hint: str = "") -> None:
        super().__init__(f"{feature} is not supported on the {target} target yet", hint=hint)
        self.feature = feature
        self.target = target


class SecretMissingError(MizzenError):
    """A secret key a workload needs has no value; raised before anything starts."""

    def __init__(self, missing: list[tuple[str, str]], sources: list[str]) -> None:
        names = ", ".join(f"{s}.{k}" for s, k in missing)
        super().__init__(
            f"missing secret value(s): {names}",
            hint="set them in " + " or ".join(sources),
        )
        self.missing = missing


class StoreError(MizzenError):
    """A blob store operation failed in a way the user must act on."""

    exit_code = EXIT_FAILED


class WorkloadFailed(MizzenError):
    """A job, step or service failed (exit code 1)."""

    exit_code = EXIT_FAILED


def first_line(exc: BaseException) -> str:
    """An exception as one line for a report: mizzen's own message, else the first line of
    what it says (its type when it says nothing)."""
    text = (exc.message if isinstance(exc, MizzenError) else str(exc)).strip()
    return text.splitlines()[0] if text else type(exc).__name__
