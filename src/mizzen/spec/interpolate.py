"""`${...}` references inside spec strings.

Known roots: volumes.X, config.X, run.id, run.date, run.outputs, env.X, secrets.X.Y.
`$${` is a literal `${`. `${run.outputs}` is a folder whose files are kept with the run.
Run-time references (`run.*`) survive compilation and are filled in by whoever starts the
process (the local runner, or `mizzen exec` inside a pod), so both targets agree. A Plan
string that still contains `${run.` keeps its `$${` escapes until `fill_run`; any other
Plan string is final.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}")
_ROOTS = ("volumes", "config", "run", "env", "secrets")
RUN_FIELDS = ("id", "date", "outputs")


@dataclass(frozen=True)
class Ref:
    root: str
    parts: tuple[str, ...]
    text: str

    @property
    def dotted(self) -> str:
        return ".".join((self.root, *self.parts))


class RefError(ValueError):
    pass


def parse_ref(body: str) -> Ref:
    parts = tuple(p.strip() for p in body.split("."))
    root, rest = parts[0], parts[1:]
    if root not in _ROOTS:
        raise RefError(f"unknown reference ${{{body}}}; known roots are {', '.join(_ROOTS)}")
    expected = 2 if root == "secrets" else 1
    if len(rest) != expected or not all(rest):
        shape = (
            "secrets.NAME.KEY"
            if root == "secrets"
            else f"{root}.NAME"
            if root != "run"
            else "run.id, run.date or run.outputs"
        )
        raise RefError(f"${{{body}}} should look like ${{{shape}}}")
    if root == "run" and rest[0] not in RUN_FIELDS:
        raise RefError(f"${{{body}}}: run has {', '.join(RUN_FIELDS)}")
    return Ref(root, rest, "${" + body + "}")


def refs(text: str) -> Iterator[Ref]:
    for match in _TOKEN.finditer(text):
        if match.group(1) is not None:
            yield parse_ref(match.group(1))


def substitute(text: str, resolve: Callable[[Ref], str | None]) -> str:
    """Replace each reference by `resolve(ref)`; a None result leaves the reference as written."""

    def repl(match: re.Match[str]) -> str:
        if match.group(1) is None:
            return "$${"
        ref = parse_ref(match.group(1))
        value = resolve(ref)
        return match.group(0) if value is None else value

    return _TOKEN.sub(repl, text)


def unescape(text: str) -> str:
    return text.replace("$${", "${")


_RUN_TOKEN = re.compile(r"\$\$\{|\$\{\s*run\s*\.\s*(id|date|outputs)\s*\}")


def fill_run(text: str, run_id: str, run_date: str, outputs: str = "") -> str:
    """Fill the run-time references (the last step before a process starts).

    Only `${run.id}`, `${run.date}` and `${run.outputs}` are replaced and `$${` becomes `${`;
    anything else is left as written, so this is safe on any string of a Plan.
    """
    values = {"id": run_id, "date": run_date, "outputs": outputs}
    return _RUN_TOKEN.sub(lambda m: "${" if m.group(1) is None else values[m.group(1)], text)


def finish(text: str) -> str:
    """A resolved string as the Plan carries it: unescaped, unless run-time references are
    still pending (the text contains `${run.`), in which case `fill_run` unescapes it later."""
    plain = unescape(text)
    return text if "${run." in plain else plain
