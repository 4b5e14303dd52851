"""Problems found while validating: pydantic's errors told as a user would say them (which
field, what was wrong, a fix), environment prefixes, and the file order they are reported in."""

from __future__ import annotations

import difflib
import types
import typing
from dataclasses import replace
from typing import Any

from pydantic import BaseModel

from mizzen.errors import Problem
from mizzen.spec.models import Project
from mizzen.spec.source import PathKey, Source


def in_environment(problem: Problem, env: str) -> Problem:
    if problem.field == f"environments.{env}" or problem.field.startswith(f"environments.{env}."):
        return problem
    return replace(problem, message=f"with environment {env!r}: {problem.message}")


def ordered(problems: list[Problem]) -> list[Problem]:
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


def from_pydantic(err: Any, source: Source) -> Problem:
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
        hint = suggest(key, fields) or (
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
            hint = suggest(given, [o for o in options if o])
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


def suggest(word: str, options: typing.Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(options), n=1, cutoff=0.6)
    return f"did you mean {match[0]!r}?" if match else ""
