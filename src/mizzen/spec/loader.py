"""Load `mizzen.yaml`: parse, apply an environment overlay, validate, cross-check references."""

from __future__ import annotations

import difflib
import hashlib
import json
import types
import typing
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from mizzen.errors import Location, Problem, SpecError
from mizzen.spec.interpolate import RefError, refs
from mizzen.spec.models import API_VERSION, OVERLAY_KEYS, Project
from mizzen.spec.source import PathKey, Source, parse_file, parse_text

SPEC_FILE = "mizzen.yaml"


@dataclass
class Spec:
    """A validated project with the environment overlay already applied."""

    project: Project
    source: Source
    env: str | None
    data: dict[str, Any]

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
    source = parse_text(text, str(file)) if text is not None else parse_file(file)
    return build(source, env)


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
                    problems.append(_in_environment(problem, name))
    if problems:
        raise SpecError(_ordered(problems))
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
    problems = [_problem_from_pydantic(err, source) for err in errors]
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


def _in_environment(problem: Problem, env: str) -> Problem:
    if problem.field == f"environments.{env}" or problem.field.startswith(f"environments.{env}."):
        return problem
    return replace(problem, message=f"with environment {env!r}: {problem.message}")


def _ordered(problems: list[Problem]) -> list[Problem]:
    """Without repeats, in file order (line, column), stable otherwise."""
    seen: set[str] = set()
    out = []
    for p in problems:
        if str(p) not in seen:
            seen.add(str(p))
            out.append(p)

    def where(p: Problem) -> tuple[str, int, int]:
        loc = p.location
        return (loc.file, loc.line or 0, loc.column or 0) if loc else ("", 0, 0)

    return sorted(out, key=where)


# --- overlays ------------------------------------------------------------------------------


def overlay(source: Source, env: str, problems: list[Problem]) -> Source:
    """`source` with `environments.<env>` deep-merged over it.

    Mappings merge key by key; lists and scalars replace; `null` deletes the key.
    """
    envs = source.data.get("environments") or {}
    if not isinstance(envs, dict) or env not in envs:
        known = sorted(envs) if isinstance(envs, dict) else []
        problems.append(
            Problem(
                f"no environment {env!r}"
                + (
                    f"; known: {', '.join(known)}" if known else "; the spec has no `environments:`"
                ),
                field="environments",
                location=source.locate(("environments",)),
                hint=_suggest(env, known) or "add it under `environments:`",
            )
        )
        return source
    over = envs[env] or {}
    base_path: PathKey = ("environments", env)
    if not isinstance(over, dict):
        problems.append(
            source.problem(
                base_path, "an environment is a mapping of overlays, e.g. {stores: {lake: s3://…}}"
            )
        )
        return source
    for key in [k for k in over if k not in OVERLAY_KEYS]:
        hint = _suggest(key, OVERLAY_KEYS) or f"allowed: {', '.join(OVERLAY_KEYS)}"
        problems.append(
            source.problem((*base_path, key), f"{key!r} cannot be overlaid per environment", hint)
        )
    over = {k: v for k, v in over.items() if k in OVERLAY_KEYS}
    positions = dict(source.positions)
    replaced: set[PathKey] = set()

    def take(path: PathKey) -> None:
        for key in [k for k in positions if k[: len(path)] == path]:
            del positions[key]
        full = (*base_path, *path)
        for key, pos in source.positions.items():
            if key[: len(full)] == full:
                positions[path + key[len(full) :]] = pos
        replaced.add(path)

    def merge(base: dict[str, Any], layer: dict[str, Any], path: PathKey) -> dict[str, Any]:
        out = dict(base)
        for key, value in layer.items():
            here = (*path, key)
            if value is None:
                out.pop(key, None)
                take(here)
            elif isinstance(value, dict) and isinstance(base.get(key), dict):
                out[key] = merge(base[key], value, here)
            else:
                out[key] = value
                take(here)
        return out

    merged = merge(source.data, over, ())
    return Source(
        file=source.file,
        data=merged,
        positions=positions,
        overlay=base_path,
        replaced=frozenset(replaced),
    )


_overlay = overlay


def deep_merge(base: Any, over: Any) -> Any:
    """The overlay rule on plain data: mappings merge, lists and scalars replace, None deletes."""
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            if value is None:
                out.pop(key, None)
            else:
                out[key] = deep_merge(base[key], value) if key in base else value
        return out
    return over


_deep_merge = deep_merge


# --- pydantic errors -> problems ---------------------------------------------------------


def _validate(source: Source, problems: list[Problem]) -> Project | None:
    try:
        return Project.model_validate(source.data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            problems.append(_problem_from_pydantic(err, source))
        return None


def _problem_from_pydantic(err: Any, source: Source) -> Problem:
    loc: PathKey = tuple(
        p
        for p in err["loc"]
        if not (
            isinstance(p, str) and (p == "[key]" or p.startswith(("function-", "lax-", "json-")))
        )
    )
    kind = err["type"]
    message = err["msg"]
    given = err.get("input")
    hint = ""
    if kind == "extra_forbidden":
        key = str(loc[-1])
        fields = _fields_at(Project, loc[:-1])
        message = f"unknown field {key!r}"
        hint = _suggest(key, fields) or (
            f"known fields: {', '.join(sorted(fields))}" if fields else ""
        )
    elif kind == "missing":
        message = "required field is missing"
        hint = f"add `{loc[-1]}:`" if loc else ""
    elif kind == "literal_error":
        expected = str(
            (err.get("ctx") or {}).get("expected", message.removeprefix("Input should be "))
        )
        message = f"got {given!r}; expected {expected}"
        if isinstance(given, str):
            options = [o.strip(" '\"") for o in expected.replace(" or ", ",").split(",")]
            hint = _suggest(given, [o for o in options if o])
    elif kind == "model_type" and loc and loc[-1] == "schedule":
        message = f"expected a cron expression like '0 3 * * *' or a mapping {{cron: …, timeZone: …}}, got {_yaml_type(given)} {given!r}"
    elif kind in ("value_error", "assertion_error"):
        message = message.removeprefix("Value error, ").removeprefix("Assertion failed, ")
    else:
        message = _type_message(kind, message, given, err.get("ctx"))
    return source.problem(loc, message, hint)


_EXPECTED = {
    "int": "an integer",
    "float": "a number",
    "bool": "true or false",
    "string": "a string",
    "dict": "a mapping (key: value)",
    "model": "a mapping (key: value)",
    "list": "a list",
}


def _type_message(kind: str, message: str, given: Any, ctx: dict[str, Any] | None) -> str:
    got = (
        "nothing (null)"
        if given is None
        else f"{_yaml_type(given)} {given!r}"
        if not isinstance(given, dict | list)
        else _yaml_type(given)
    )
    stem = kind.removesuffix("_type").removesuffix("_parsing").removesuffix("_attributes_type")
    if kind.endswith(("_type", "_parsing")) and stem in _EXPECTED:
        return f"expected {_EXPECTED[stem]}, got {got}"
    bounds = {
        "greater_than_equal": "at least",
        "greater_than": "more than",
        "less_than_equal": "at most",
        "less_than": "less than",
    }
    if kind in bounds:
        limit = next(iter((ctx or {}).values()), "?")
        return f"must be {bounds[kind]} {limit}, got {given!r}"
    if kind == "too_short":
        return "cannot be empty"
    return message.replace("Input should be ", "expected ")


def _yaml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return type(value).__name__


def _fields_at(model: type[BaseModel], path: PathKey) -> list[str]:
    """The YAML keys the model at `path` accepts (for "did you mean")."""
    current: Any = model
    for part in path:
        current = _descend(current, part)
        if current is None:
            return []
    model_cls = _as_model(current)
    if model_cls is None:
        return []
    return [f.alias or name for name, f in model_cls.model_fields.items()]


def _as_model(tp: Any) -> type[BaseModel] | None:
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return tp
    for arg in typing.get_args(tp):
        found = _as_model(arg)
        if found is not None and typing.get_origin(tp) in (typing.Union, types.UnionType):
            return found
    return None


def _descend(tp: Any, part: str | int) -> Any:
    origin = typing.get_origin(tp)
    if origin is typing.Annotated:
        return _descend(typing.get_args(tp)[0], part)
    if origin in (typing.Union, types.UnionType):
        for arg in typing.get_args(tp):
            found = _descend(arg, part)
            if found is not None:
                return found
        return None
    if origin is dict:
        return typing.get_args(tp)[1]
    if origin is list:
        return typing.get_args(tp)[0] if isinstance(part, int) else None
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        for name, f in tp.model_fields.items():
            if part in (name, f.alias):
                return f.annotation
    return None


def _suggest(word: str, options: typing.Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"did you mean {match[0]!r}?" if match else ""


# --- cross references ---------------------------------------------------------------------


@dataclass
class Declared:
    """The names a spec declares. From the validated project, or from the raw data when some
    sections failed validation (so a reference to an invalid volume is not also "unknown")."""

    stores: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    secrets: dict[str, list[str] | None] = field(default_factory=dict)  # None: keys unknown
    config: list[str] = field(default_factory=list)
    jobs: list[str] = field(default_factory=list)
    pipelines: list[str] = field(default_factory=list)

    @classmethod
    def from_project(cls, project: Project) -> Declared:
        return cls(
            stores=list(project.stores),
            volumes=list(project.volumes),
            secrets={n: list(s.keys) for n, s in project.secrets.items()},
            config=list(project.config),
            jobs=list(project.jobs),
            pipelines=list(project.pipelines),
        )

    @classmethod
    def of(cls, data: dict[str, Any]) -> Declared:
        def names(section: str) -> list[str]:
            value = data.get(section)
            return [str(k) for k in value] if isinstance(value, dict) else []

        secrets: dict[str, list[str] | None] = {}
        raw = data.get("secrets")
        for name, value in raw.items() if isinstance(raw, dict) else []:
            keys = value.get("keys") if isinstance(value, dict) else value
            secrets[str(name)] = [str(k) for k in keys] if isinstance(keys, list) else None
        return cls(
            names("stores"),
            names("volumes"),
            secrets,
            names("config"),
            names("jobs"),
            names("pipelines"),
        )


def check_references(
    project: Project, source: Source, declared: Declared | None = None
) -> list[Problem]:
    """Cross-section checks: every name used is declared, `${...}` references are well placed,
    pipelines form a DAG, alerts match something."""
    names = declared or Declared.from_project(project)
    problems: list[Problem] = []

    def add(path: PathKey, message: str, hint: str = "") -> None:
        problems.append(source.problem(path, message, hint))

    def known(kind: str, name: str, options: typing.Iterable[str], path: PathKey) -> bool:
        options = list(options)
        if name in options:
            return True
        hint = _suggest(name, options) or (
            f"declare it under `{kind}s:`" if not options else f"known: {', '.join(options)}"
        )
        add(path, f"unknown {kind} {name!r}", hint)
        return False

    if project.store is not None:
        known("store", project.store, names.stores, ("store",))
    for vname, vol in project.volumes.items():
        if vol.blob is not None:
            known("store", vol.blob.split("/", 1)[0], names.stores, ("volumes", vname, "blob"))
        if vol.blob is not None and vol.read_only and vol.sync == "mirror":
            add(
                ("volumes", vname, "sync"),
                "a read-only volume is never written back; `sync` does nothing here",
                "remove `sync` or `readOnly`",
            )
    for sname, store_spec in project.stores.items():
        if store_spec.secret is not None:
            known("secret", store_spec.secret, names.secrets, ("stores", sname, "secret"))
    for key, value in project.config.items():
        _check_config_refs(("config", key), value, add)

    workloads: list[tuple[str, str, Any]] = [
        *(("jobs", n, j) for n, j in project.jobs.items()),
        *(("services", n, s) for n, s in project.services.items()),
    ]
    sections_of: dict[str, str] = {}
    for section, name, _ in [
        *workloads,
        *(("pipelines", n, p) for n, p in project.pipelines.items()),
    ]:
        if name in sections_of:
            add(
                (section, name),
                f"{name!r} is also a {sections_of[name][:-1]}; workload names must be unique across jobs, pipelines and services",
            )
        sections_of[name] = section

    for section, name, w in workloads:
        base: PathKey = (section, name)
        for i, secret in enumerate(w.secrets):
            known("secret", secret, names.secrets, (*base, "secrets", i))
        for i, vol in enumerate(w.volumes or []):
            known("volume", vol, names.volumes, (*base, "volumes", i))
        strings: list[tuple[PathKey, str, bool]] = []
        strings += [((*base, "command", i), s, False) for i, s in enumerate(w.command or [])]
        strings += [((*base, "args", i), s, False) for i, s in enumerate(w.args)]
        strings += [((*base, "env", k), s, True) for k, s in w.env.items()]
        if w.working_dir is not None:
            strings.append(((*base, "workingDir"), w.working_dir, False))
        if section == "jobs":
            if w.spark is not None:
                strings.append(((*base, "spark", "mainFile"), w.spark.main_file, False))
            strings += [
                ((*base, "parameters", k), v, False)
                for k, v in w.parameters.items()
                if isinstance(v, str)
            ]
        for path, text, secret_ok in strings:
            _check_refs(names, path, text, secret_ok, add)
    for pname, pipe in project.pipelines.items():
        _pipeline_problems(names, pname, pipe, add, known)
    for i, alert in enumerate(project.alerts):
        if alert.webhook:
            _check_refs(names, ("alerts", i, "webhook"), alert.webhook, True, add)
        if alert.email and alert.email.secret:
            known("secret", alert.email.secret, names.secrets, ("alerts", i, "email", "secret"))
        _alert_jobs(names, i, alert.jobs, add)
    return problems


_GLOB = frozenset("*?[")


def _alert_jobs(names: Declared, index: int, patterns: list[str], add: Any) -> None:
    import fnmatch

    targets = [*names.jobs, *names.pipelines]
    for j, pattern in enumerate(patterns):
        path: PathKey = ("alerts", index, "jobs", j)
        if not _GLOB & set(pattern):
            if pattern not in targets:
                add(
                    path,
                    f"unknown job or pipeline {pattern!r}",
                    _suggest(pattern, targets)
                    or (f"known: {', '.join(targets)}" if targets else "declare it under `jobs:`"),
                )
        elif pattern != "*" and not any(fnmatch.fnmatchcase(t, pattern) for t in targets):
            add(
                path,
                f"{pattern!r} matches no job or pipeline",
                f"known: {', '.join(targets)}" if targets else "",
            )


def _check_config_refs(path: PathKey, text: str, add: Any) -> None:
    try:
        found = list(refs(text))
    except RefError as exc:
        add(path, str(exc))
        return
    for ref in found:
        if ref.root != "env":
            hint = (
                "config values are plain (not secret) settings; use `secrets:` and ${secrets.NAME.KEY} in a workload's env"
                if ref.root == "secrets"
                else "use the reference in the workload's args or env instead"
            )
            add(path, f"{ref.text}: config values may only use ${{env.NAME}}", hint)


def _check_refs(names: Declared, path: PathKey, text: str, secret_ok: bool, add: Any) -> None:
    try:
        found = list(refs(text))
    except RefError as exc:
        add(path, str(exc))
        return
    for ref in found:
        head = ref.parts[0]
        if ref.root == "volumes" and head not in names.volumes:
            add(
                path,
                f"{ref.text}: unknown volume {head!r}",
                _suggest(head, names.volumes) or "declare it under `volumes:`",
            )
        elif ref.root == "config" and head not in names.config:
            add(
                path,
                f"{ref.text}: unknown config key {head!r}",
                _suggest(head, names.config) or "declare it under `config:`",
            )
        elif ref.root == "secrets":
            if not secret_ok:
                add(
                    path,
                    f"{ref.text}: secrets may only be used in `env` values (never in command lines, where they would leak)",
                    "set an env var: env: {TOKEN: " + ref.text + "}",
                )
            elif text.strip() != ref.text:
                add(
                    path,
                    f"{ref.text}: a secret reference must be the whole value (it becomes a secretKeyRef)",
                    "read the secret in code with mizzen.secret(), or put it alone in its own env var",
                )
            elif head not in names.secrets:
                add(
                    path,
                    f"{ref.text}: unknown secret {head!r}",
                    _suggest(head, names.secrets) or "declare it under `secrets:`",
                )
            else:
                keys = names.secrets[head]
                if keys is not None and ref.parts[1] not in keys:
                    add(
                        path,
                        f"{ref.text}: secret {head!r} has no key {ref.parts[1]!r}",
                        _suggest(ref.parts[1], keys) or f"keys: {', '.join(keys)}",
                    )


def _pipeline_problems(names: Declared, pname: str, pipe: Any, add: Any, known: Any) -> None:
    base: PathKey = ("pipelines", pname, "steps")
    step_names: dict[str, int] = {}
    for i, step in enumerate(pipe.steps):
        known("job", step.job, names.jobs, (*base, i, "job"))
        for j, arg in enumerate(step.args or []):
            _check_refs(names, (*base, i, "args", j), arg, False, add)
        if step.step_name in step_names:
            add(
                (*base, i),
                f"duplicate step {step.step_name!r}: step {step_names[step.step_name] + 1} has the same name",
                "give one of them a distinct `name:`",
            )
        step_names[step.step_name] = i
    for i, step in enumerate(pipe.steps):
        for j, dep in enumerate(step.after):
            if dep == step.step_name:
                add((*base, i, "after", j), f"step {dep!r} cannot run after itself")
            elif dep not in step_names:
                add(
                    (*base, i, "after", j),
                    f"unknown step {dep!r}",
                    _suggest(dep, step_names) or f"steps: {', '.join(step_names)}",
                )
    cycle = find_cycle(
        {
            s.step_name: [d for d in s.after if d in step_names and d != s.step_name]
            for s in pipe.steps
        }
    )
    if cycle:
        first = step_names[cycle[0]]
        add(
            (*base, first),
            "dependency cycle: " + " -> ".join([*cycle, cycle[0]]),
            "remove one of the `after:` links",
        )


def find_cycle(graph: dict[str, list[str]]) -> list[str] | None:
    """A cycle in `node -> [dependencies]`, as a list of nodes, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for dep in graph.get(node, []):
            if state.get(dep) == 1:
                return stack[stack.index(dep) :]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for node in graph:
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None
