"""YAML text -> plain data plus a map from each value's path to its line and column."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mizzen.errors import Location, Problem, SpecError
from mizzen.spec import deps
from mizzen.spec.compose import Composer, show_tag

try:
    _Loader: type = yaml.CSafeLoader
except AttributeError:  # pragma: no cover - libyaml missing
    _Loader = yaml.SafeLoader

PathKey = tuple[str | int, ...]


@dataclass
class Source:
    """A parsed document: the data and where every key and item stood in the file."""

    file: str
    data: Any
    positions: dict[PathKey, tuple[int, int]] = field(default_factory=dict)
    # Set on a source merged with an environment overlay: the overlay's own path in the file
    # and the merged paths whose value the overlay wrote (so problems name the overlay's line).
    overlay: PathKey = ()
    replaced: frozenset[PathKey] = frozenset()

    def from_overlay(self, path: PathKey) -> bool:
        return bool(self.overlay) and any(
            path[:i] in self.replaced for i in range(1, len(path) + 1)
        )

    def field(self, path: PathKey) -> str:
        """The dotted field path as the user wrote it (inside the overlay when it came from there)."""
        return _dotted((*self.overlay, *path) if self.from_overlay(path) else path)

    def problem(self, path: PathKey, message: str, hint: str = "") -> Problem:
        return Problem(message, field=self.field(path), location=self.locate(path), hint=hint)

    def locate(self, path: PathKey) -> Location:
        """The closest known position for `path` (walking up to a parent when needed)."""
        probe = tuple(path)
        while probe:
            if probe in self.positions:
                line, col = self.positions[probe]
                return Location(self.file, line, col)
            probe = probe[:-1]
        return Location(self.file, 1, 1)


def parse_text(text: str, file: str) -> Source:
    loader = _Loader(text)
    try:
        return _read(loader, file)
    finally:
        loader.dispose()


def _read(loader: Any, file: str) -> Source:
    composer = Composer(loader, file)
    try:
        node = composer.compose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        loc = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        raise SpecError(
            [
                Problem(
                    f"not valid YAML: {exc.problem or exc}",
                    location=loc,
                    hint="check indentation and quoting",
                )
            ]
        ) from None
    src = Source(file=file, data=None)
    problems = composer.problems
    src.data = {} if node is None else _convert(node, (), src, problems, loader)
    if problems:
        raise SpecError(sorted(problems, key=_line_col))
    return src


def _line_col(problem: Problem) -> tuple[int, int]:
    loc = problem.location
    return (loc.line or 0, loc.column or 0) if loc else (0, 0)


def parse_file(path: Path) -> Source:
    try:
        text = deps.read_text(path, encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(
            [
                Problem(
                    "file not found",
                    location=Location(str(path)),
                    hint="run `mizzen init` to create one, or pass --file",
                )
            ]
        ) from None
    return parse_text(text, str(path))


def _convert(
    node: yaml.Node, path: PathKey, src: Source, problems: list[Problem], loader: Any
) -> Any:
    src.positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                problems.append(
                    Problem(
                        "YAML merge keys (<<) are not supported",
                        location=_at(src.file, key_node),
                        hint="use an environment overlay or repeat the fields",
                    )
                )
                continue
            # Keys are taken as written: YAML 1.1 would turn `on:` into True.
            key = (
                key_node.value
                if isinstance(key_node, yaml.ScalarNode)
                else str(_construct(key_node, src, problems, loader))
            )
            child = (*path, key)
            if key in out:
                first = src.positions.get(child, (0, 0))[0]
                problems.append(
                    Problem(
                        f"duplicate key {key!r} (first at line {first})",
                        field=_dotted(child),
                        location=_at(src.file, key_node),
                        hint="remove one of them",
                    )
                )
                continue
            src.positions[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = _convert(value_node, child, src, problems, loader)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [
            _convert(item, (*path, i), src, problems, loader) for i, item in enumerate(node.value)
        ]
    return _construct(node, src, problems, loader)


def _construct(node: yaml.Node, src: Source, problems: list[Problem], loader: Any) -> Any:
    """A plain value; one YAML cannot build (`!!int abc`, a date like 2024-13-45) is a problem."""
    try:
        return loader.construct_object(node, deep=True)
    except Exception as exc:  # the constructors raise ValueError, TypeError, KeyError…
        loader.recursive_objects.pop(node, None)  # left behind by the failed attempt
        location = _at(src.file, node)
        if any(p.location == location for p in problems):  # the same node, through an alias
            return None
        if not isinstance(node, yaml.ScalarNode):  # a mapping or list used as a key
            problems.append(
                Problem(
                    f"cannot read this key: {getattr(exc, 'problem', None) or exc}",
                    location=location,
                    hint="write keys as plain text",
                )
            )
            return None
        tag = show_tag(node.tag)
        explicit = node.tag != loader.resolve(yaml.ScalarNode, node.value, (True, False))
        problems.append(
            Problem(
                f"{node.value!r} is not a valid {tag}"
                if explicit
                else f"{node.value!r} reads as a {tag.removeprefix('!!')} but is not one: {exc}",
                location=location,
                hint="fix the value or remove the tag"
                if explicit
                else "quote it to keep it as text",
            )
        )
        return node.value


def _at(file: str, node: yaml.Node) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)


def _dotted(path: PathKey) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


dotted = _dotted
