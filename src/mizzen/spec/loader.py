"""Load `mizzen.yaml`: parse, apply an environment overlay, validate, cross-check references.

Every problem found is reported at once: sections that fail validation are set aside so the
rest is still checked, and every environment is validated too.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from mizzen.errors import Location, Problem, SpecError
from mizzen.spec import deps
from mizzen.spec.models import API_VERSION, Project
from mizzen.spec.overlay import overlay
from mizzen.spec.problems import from_pydantic, in_environment, ordered
from mizzen.spec.references import Declared, check_references
from mizzen.spec.source import Source, parse_file, parse_text

SPEC_FILE = "mizzen.yaml"


@dataclass
class Spec:
    """A validated project with the environment overlay already applied."""

    project: Project
    source: Source
    env: str | None
    data: dict[str, Any]
    reads: deps.Recording = field(default_factory=deps.Recording)
    """The files and variables validation read (for caches; see `mizzen.spec.deps`)."""

    @property
    def file(self) -> Path:
        return Path(self.source.file)

    @property
    def root(self) -> Path:
        return self.file.resolve().parent

    @property
    def digest(self) -> str:
        """Stable digest of the effective spec (after the overlay)."""
        blob = json.dumps(self.data, sort_keys=True, default=str).encode()
        return "sha256:" + hashlib.sha256(blob).hexdigest()


def find_spec(start: Path | None = None) -> Path:
    """The `mizzen.yaml` in `start` or its nearest parent."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / SPEC_FILE
        if candidate.is_file():
            return candidate
    raise SpecError(
        [
            Problem(
                f"no {SPEC_FILE} here or in any parent folder",
                location=Location(str(here)),
                hint="run `mizzen init`, or pass --file PATH",
            )
        ]
    )


def load(
    path: Path | str | None = None, env: str | None = None, *, text: str | None = None
) -> Spec:
    file = Path(path) if path is not None else find_spec()
    with deps.Recording() as reads:
        deps.environ("PYDANTIC_DISABLE_PLUGINS")  # pydantic reads it, for its plugins
        source = parse_text(text, str(file)) if text is not None else parse_file(file)
        spec = build(source, env)
    spec.reads = reads
    return spec


def build(source: Source, env: str | None) -> Spec:
    """Validate `source` (with the overlay of `env` applied); every problem found is reported."""
    if not isinstance(source.data, dict):
        raise SpecError(
            [
                Problem(
                    "the spec must be a mapping (key: value) at the top level",
                    location=source.locate(()),
                )
            ]
        )
    problems: list[Problem] = []
    effective = source
    if env is not None:
        effective = overlay(source, env, problems)
        if effective is source:
            raise SpecError(problems)
    project, found = check(effective)
    problems += found
    if env is None:
        seen = {(p.field, p.message) for p in problems}
        for name in _environment_names(source.data):
            for problem in _environment_problems(source, name):
                if (problem.field, problem.message) not in seen:
                    seen.add((problem.field, problem.message))
                    problems.append(in_environment(problem, name))
    if problems:
        raise SpecError(ordered(problems))
    assert project is not None
    return Spec(project=project, source=effective, env=env, data=effective.data)


def check(source: Source) -> tuple[Project | None, list[Problem]]:
    """Validate one document. When some sections are invalid, the reference checks still run
    on the sections that did validate, so one pass reports as much as it can."""
    try:
        project = Project.model_validate(source.data)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
    else:
        problems = check_references(project, source)
        return (None if problems else project), problems
    problems = [from_pydantic(err, source) for err in errors]
    data = source.data
    for depth in (3, 2, 2, 1):
        data = _prune(data, [tuple(p for p in err["loc"] if p != "[key]") for err in errors], depth)
        try:
            partial = Project.model_validate(data)
        except ValidationError as again:
            errors = again.errors(include_url=False)
            continue
        problems += check_references(partial, source, declared=Declared.of(source.data))
        break
    return None, problems


_DICT_SECTIONS = (
    "stores",
    "volumes",
    "config",
    "secrets",
    "jobs",
    "pipelines",
    "services",
    "signals",
    "environments",
)
_NEUTRAL_ALERT = {"on": ["failed"], "jobs": ["*"], "webhook": "http://localhost/"}
_PLACEHOLDERS = {"apiVersion": API_VERSION, "kind": "Project", "name": "project"}


def _prune(data: dict[str, Any], locs: list[tuple[str | int, ...]], depth: int) -> dict[str, Any]:
    """A copy of `data` without what failed validation: first the failing field of an entry
    (depth 3), then whole entries (depth 2); placeholders for the required top-level keys."""
    out = dict(data)
    drop_alerts: set[int] = set()
    for loc in locs:
        if not loc:
            continue
        head = str(loc[0])
        section = out.get(head)
        if head in _DICT_SECTIONS and len(loc) >= 2 and isinstance(section, dict):
            section = dict(section)
            entry = section.get(str(loc[1]))
            if depth >= 3 and len(loc) >= 3 and isinstance(entry, dict):
                section[str(loc[1])] = {k: v for k, v in entry.items() if k != loc[2]}
            else:
                section.pop(str(loc[1]), None)
            out[head] = section
        elif head == "alerts" and len(loc) >= 2 and isinstance(loc[1], int):
            drop_alerts.add(loc[1])
        elif head in _PLACEHOLDERS:
            out[head] = _PLACEHOLDERS[head]
        else:
            out.pop(head, None)
    if drop_alerts and isinstance(out.get("alerts"), list):
        # A neutral stand-in keeps the other alerts at their index (problems name alerts[i]).
        out["alerts"] = [
            _NEUTRAL_ALERT if i in drop_alerts else a for i, a in enumerate(out["alerts"])
        ]
    return out


def _environment_names(data: dict[str, Any]) -> list[str]:
    envs = data.get("environments")
    if not isinstance(envs, dict):
        return []
    return [
        name
        for name, value in envs.items()
        if isinstance(name, str) and isinstance(value, dict | None)
    ]


def _environment_problems(source: Source, env: str) -> list[Problem]:
    """Every environment must validate too, so `mizzen validate` catches a broken overlay."""
    problems: list[Problem] = []
    merged = overlay(source, env, problems)
    if merged is source:
        return problems
    return problems + check(merged)[1]
