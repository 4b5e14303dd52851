"""Load `mizzen.yaml`: parse, apply an environment overlay, validate, cross-check references."""

from __future__ import annotations

import difflib
import hashlib
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from mizzen.errors import Location, Problem, SpecError
from mizzen.spec.interpolate import RefError, refs
from mizzen.spec.models import OVERLAY_KEYS, Project
from mizzen.spec.source import PathKey, Source, dotted, parse_file, parse_text

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
        [Problem(f"no {SPEC_FILE} here or in any parent folder", location=Location(str(here)), hint="run `mizzen init`, or pass --file PATH")]
    )


def load(path: Path | str | None = None, env: str | None = None, *, text: str | None = None) -> Spec:
    file = Path(path) if path is not None else find_spec()
    source = parse_text(text, str(file)) if text is not None else parse_file(file)
    return build(source, env)


def build(source: Source, env: str | None) -> Spec:
    data = source.data
    if not isinstance(data, dict):
        raise SpecError([Problem("the spec must be a mapping (key: value) at the top level", location=source.locate(()))])
    problems: list[Problem] = []
    effective = source
    if env is not None:
        effective = _overlay(source, env, problems)
        if problems:
            raise SpecError(problems)
    project = _validate(effective, problems)
    if project is not None:
        problems.extend(check_references(project, effective))
        if env is None:
            for name in project.environments:
                problems.extend(_environment_problems(source, name))
    if problems:
        raise SpecError(_dedupe(problems))
    assert project is not None
    return Spec(project=project, source=effective, env=env, data=effective.data)


def _environment_problems(source: Source, env: str) -> list[Problem]:
    """Every environment must validate too, so `mizzen validate` catches a broken overlay."""
    problems: list[Problem] = []
    merged = _overlay(source, env, problems)
    if problems:
        return problems
    project = _validate(merged, problems)
    if project is not None:
        problems.extend(check_references(project, merged))
    return problems


def _dedupe(problems: list[Problem]) -> list[Problem]:
    seen: set[str] = set()
    out = []
    for p in problems:
        if str(p) not in seen:
            seen.add(str(p))
            out.append(p)
    return out


# --- overlays ------------------------------------------------------------------------------


def _overlay(source: Source, env: str, problems: list[Problem]) -> Source:
    envs = source.data.get("environments") or {}
    if not isinstance(envs, dict) or env not in envs:
        known = sorted(envs) if isinstance(envs, dict) else []
        hint = _suggest(env, known)
        problems.append(
            Problem(
                f"no environment {env!r}" + (f"; known: {', '.join(known)}" if known else "; the spec has no `environments:`"),
                field="environments",
                location=source.locate(("environments",)),
                hint=hint or "add it under `environments:`",
            )
        )
        return source
    overlay = envs[env] or {}
    base_path: PathKey = ("environments", env)
    if not isinstance(overlay, dict):
        problems.append(Problem("an environment is a mapping of overlays", field=dotted(base_path), location=source.locate(base_path)))
        return source
    for key in overlay:
        if key not in OVERLAY_KEYS:
            problems.append(
                Problem(
                    f"{key!r} cannot be overlaid per environment",
                    field=dotted((*base_path, key)),
                    location=source.locate((*base_path, key)),
                    hint=_suggest(key, OVERLAY_KEYS) or f"allowed: {', '.join(OVERLAY_KEYS)}",
                )
            )
    positions = dict(source.positions)
    for path, pos in source.positions.items():
        if path[: len(base_path)] == base_path and len(path) > len(base_path):
            positions[path[len(base_path) :]] = pos
    merged = _deep_merge(source.data, overlay)
    return Source(file=source.file, data=merged, positions=positions)


def _deep_merge(base: Any, over: Any) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for key, value in over.items():
            out[key] = _deep_merge(base[key], value) if key in base else value
        return out
    return over


# --- pydantic errors -> problems ---------------------------------------------------------


def _validate(source: Source, problems: list[Problem]) -> Project | None:
    try:
        return Project.model_validate(source.data)
    except ValidationError as exc:
        for err in exc.errors(include_url=False):
            problems.append(_problem_from_pydantic(err, source))
        return None


def _problem_from_pydantic(err: Any, source: Source) -> Problem:
    loc: PathKey = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith(("function-", "lax-", "json-"))))
    kind = err["type"]
    message = err["msg"]
    hint = ""
    if kind == "extra_forbidden":
        key = str(loc[-1])
        fields = _fields_at(Project, loc[:-1])
        message = f"unknown field {key!r}"
        hint = _suggest(key, fields) or (f"known fields: {', '.join(sorted(fields))}" if fields else "")
    elif kind == "missing":
        message = "required field is missing"
        hint = f"add `{loc[-1]}:`"
    elif kind == "literal_error":
        message = f"got {err.get('input')!r}; expected {message.removeprefix('Input should be ')}"
        if isinstance(err.get("input"), str):
            options = [o.strip(" '\"") for o in message.split("expected ", 1)[1].replace(" or ", ",").split(",")]
            hint = _suggest(err["input"], [o for o in options if o])
    elif kind == "value_error":
        message = message.removeprefix("Value error, ")
    elif kind.endswith("_type") or kind.endswith("_parsing"):
        message = f"{message} (got {type(err.get('input')).__name__} {err.get('input')!r})"
    return Problem(message, field=dotted(loc), location=source.locate(loc), hint=hint)


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


def check_references(project: Project, source: Source) -> list[Problem]:
    problems: list[Problem] = []

    def add(path: PathKey, message: str, hint: str = "") -> None:
        problems.append(Problem(message, field=dotted(path), location=source.locate(path), hint=hint))

    def known(kind: str, name: str, names: typing.Iterable[str], path: PathKey) -> bool:
        names = list(names)
        if name in names:
            return True
        add(path, f"unknown {kind} {name!r}", _suggest(name, names) or (f"declare it under `{kind}s:`" if not names else f"known: {', '.join(names)}"))
        return False

    if project.store is not None:
        known("store", project.store, project.stores, ("store",))
    for vname, vol in project.volumes.items():
        if vol.blob is not None:
            store = vol.blob.split("/", 1)[0]
            known("store", store, project.stores, ("volumes", vname, "blob"))
    for sname, store_spec in project.stores.items():
        if store_spec.secret is not None:
            known("secret", store_spec.secret, project.secrets, ("stores", sname, "secret"))

    workloads: list[tuple[str, str, Any]] = [
        *(("jobs", n, j) for n, j in project.jobs.items()),
        *(("services", n, s) for n, s in project.services.items()),
    ]
    names_seen: dict[str, str] = {}
    for section, name, _ in [*workloads, *(("pipelines", n, p) for n, p in project.pipelines.items())]:
        if name in names_seen:
            add((section, name), f"{name!r} is also a {names_seen[name][:-1]}; workload names must be unique across jobs, pipelines and services")
        names_seen[name] = section

    for section, name, w in workloads:
        base: PathKey = (section, name)
        for i, secret in enumerate(w.secrets):
            known("secret", secret, project.secrets, (*base, "secrets", i))
        for i, vol in enumerate(w.volumes or []):
            known("volume", vol, project.volumes, (*base, "volumes", i))
        strings: list[tuple[PathKey, str, bool]] = []
        strings += [((*base, "command", i), s, False) for i, s in enumerate(w.command or [])]
        strings += [((*base, "args", i), s, False) for i, s in enumerate(w.args)]
        strings += [((*base, "env", k), s, True) for k, s in w.env.items()]
        if section == "jobs" and w.spark is not None:
            strings.append(((*base, "spark", "mainFile"), w.spark.main_file, False))
        if section == "jobs":
            for k, v in w.parameters.items():
                if isinstance(v, str):
                    strings.append(((*base, "parameters", k), v, False))
        for path, text, secret_ok in strings:
            _check_refs(project, path, text, secret_ok, add)
    for pname, pipe in project.pipelines.items():
        _pipeline_problems(project, pname, pipe, add, known)
    for i, alert in enumerate(project.alerts):
        if alert.webhook:
            _check_refs(project, ("alerts", i, "webhook"), alert.webhook, True, add)
        if alert.email and alert.email.secret:
            known("secret", alert.email.secret, project.secrets, ("alerts", i, "email", "secret"))
        import fnmatch

        for j, pattern in enumerate(alert.jobs):
            targets = [*project.jobs, *project.pipelines]
            if not any(fnmatch.fnmatchcase(t, pattern) for t in targets):
                add(("alerts", i, "jobs", j), f"{pattern!r} matches no job or pipeline", _suggest(pattern, targets))
    for vname, vol in project.volumes.items():
        if vol.blob is not None and vol.read_only and vol.sync == "mirror":
            add(("volumes", vname, "sync"), "a read-only volume is never written back; `sync` does nothing here", "remove `sync` or `readOnly`")
    return problems


def _check_refs(project: Project, path: PathKey, text: str, secret_ok: bool, add: Any) -> None:
    try:
        found = list(refs(text))
    except RefError as exc:
        add(path, str(exc))
        return
    for ref in found:
        if ref.root == "volumes" and ref.parts[0] not in project.volumes:
            add(path, f"{ref.text}: unknown volume {ref.parts[0]!r}", _suggest(ref.parts[0], project.volumes) or "declare it under `volumes:`")
        elif ref.root == "config" and ref.parts[0] not in project.config:
            add(path, f"{ref.text}: unknown config key {ref.parts[0]!r}", _suggest(ref.parts[0], project.config) or "declare it under `config:`")
        elif ref.root == "secrets":
            if not secret_ok:
                add(path, f"{ref.text}: secrets may only be used in `env` values (never in command lines, where they would leak)", "set an env var: env: {TOKEN: " + ref.text + "}")
            elif text.strip() != ref.text:
                add(path, f"{ref.text}: a secret reference must be the whole value (it becomes a secretKeyRef)", "read the secret in code with mizzen.secret(), or put it alone in its own env var")
            elif ref.parts[0] not in project.secrets:
                add(path, f"{ref.text}: unknown secret {ref.parts[0]!r}", _suggest(ref.parts[0], project.secrets) or "declare it under `secrets:`")
            elif ref.parts[1] not in project.secrets[ref.parts[0]].keys:
                keys = project.secrets[ref.parts[0]].keys
                add(path, f"{ref.text}: secret {ref.parts[0]!r} has no key {ref.parts[1]!r}", _suggest(ref.parts[1], keys) or f"keys: {', '.join(keys)}")


def _pipeline_problems(project: Project, pname: str, pipe: Any, add: Any, known: Any) -> None:
    base: PathKey = ("pipelines", pname, "steps")
    step_names: dict[str, int] = {}
    for i, step in enumerate(pipe.steps):
        known("job", step.job, project.jobs, (*base, i, "job"))
        if step.step_name in step_names:
            add((*base, i), f"duplicate step {step.step_name!r} (also step {step_names[step.step_name] + 1})", "give one of them a distinct `name:`")
        step_names[step.step_name] = i
    for i, step in enumerate(pipe.steps):
        for j, dep in enumerate(step.after):
            if dep == step.step_name:
                add((*base, i, "after", j), f"step {dep!r} cannot run after itself")
            elif dep not in step_names:
                add((*base, i, "after", j), f"unknown step {dep!r}", _suggest(dep, step_names) or f"steps: {', '.join(step_names)}")
    cycle = find_cycle({s.step_name: [d for d in s.after if d in step_names and d != s.step_name] for s in pipe.steps})
    if cycle:
        first = step_names[cycle[0]]
        add((*base, first), "dependency cycle: " + " -> ".join([*cycle, cycle[0]]), "remove one of the `after:` links")


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
