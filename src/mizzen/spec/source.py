"""YAML text -> plain data plus a map from each value's path to its line and column."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from mizzen.errors import Location, Problem, SpecError

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
    try:
        node = yaml.compose(text, Loader=_Loader)
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
    problems: list[Problem] = []
    src.data = {} if node is None else _convert(node, (), src, problems)
    if problems:
        raise SpecError(problems)
    return src


def parse_file(path: Path) -> Source:
    try:
        text = path.read_text(encoding="utf-8")
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


_constructor = yaml.constructor.SafeConstructor()


def _convert(node: yaml.Node, path: PathKey, src: Source, problems: list[Problem]) -> Any:
    src.positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                problems.append(
                    Problem(
                        "YAML merge keys (<<) are not supported",
                        location=Location(
                            src.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1
                        ),
                        hint="use an environment overlay or repeat the fields",
                    )
                )
                continue
            # Keys are taken as written: YAML 1.1 would turn `on:` into True.
            key = (
                key_node.value
                if isinstance(key_node, yaml.ScalarNode)
                else str(_constructor.construct_object(key_node, deep=True))
            )
            child = (*path, key)
            if key in out:
                first = src.positions.get(child, (0, 0))[0]
                problems.append(
                    Problem(
                        f"duplicate key {key!r} (first at line {first})",
                        field=_dotted(child),
                        location=Location(
                            src.file, key_node.start_mark.line + 1, key_node.start_mark.column + 1
                        ),
                        hint="remove one of them",
                    )
                )
                continue
            src.positions[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            out[key] = _convert(value_node, child, src, problems)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_convert(item, (*path, i), src, problems) for i, item in enumerate(node.value)]
    return _constructor.construct_object(node, deep=True)


def _dotted(path: PathKey) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


dotted = _dotted
