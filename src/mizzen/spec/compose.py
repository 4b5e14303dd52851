"""YAML text -> one document's node graph, in bounded time and memory.

`yaml.compose` follows the text wherever it leads: nine nested aliases ("billion laughs")
expand to 10**9 values, `&a [*a]` never ends, and `[[[[…` nests deep enough to crash the
C composer. This composer reads the parser's events one at a time (no recursion) and refuses,
with the position, what a spec never needs: more than `MAX_DEPTH` levels, more than
`MAX_VALUES` values once aliases are expanded, an alias inside its own anchor, and tags
beyond YAML's plain ones. Each problem is a `SpecError` naming the line and column.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    DocumentStartEvent,
    MappingEndEvent,
    MappingStartEvent,
    ScalarEvent,
    SequenceEndEvent,
    SequenceStartEvent,
    StreamEndEvent,
)

from mizzen.errors import Location, Problem, SpecError

MAX_DEPTH = 64
MAX_VALUES = 100_000

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = frozenset(_TAG + t for t in ("str", "int", "float", "bool", "null", "timestamp"))
_STR, _VALUE, _MAP, _SEQ = _TAG + "str", _TAG + "value", _TAG + "map", _TAG + "seq"


@dataclass
class _Open:
    """A mapping or list whose items are still being read."""

    node: yaml.MappingNode | yaml.SequenceNode
    anchor: str | None
    items: list[yaml.Node] = field(default_factory=list)
    size: int = 1  # values in it once aliases are expanded (itself included)
    depth: int = 1  # levels in it once aliases are expanded


# A finished node: (node, values in it, levels in it), aliases expanded.
_Done = tuple[yaml.Node, int, int]


def show_tag(tag: str) -> str:
    return "!!" + tag.removeprefix(_TAG) if tag.startswith(_TAG) else tag


class Composer:
    """Builds the nodes of one document; `problems` collects what can be reported and read on
    past (unknown tags), anything that would make the document unbounded raises at once."""

    def __init__(self, loader: Any, file: str) -> None:
        self.loader = loader
        self.file = file
        self.problems: list[Problem] = []
        self.anchors: dict[str, _Done] = {}  # finished nodes by anchor
        self.defined: dict[str, int] = {}  # every anchor seen, with its line
        self.open: list[_Open] = []
        self.values = 0

    def fail(self, mark: Any, message: str, hint: str) -> SpecError:
        return SpecError([Problem(message, location=self.at(mark), hint=hint)])

    def at(self, mark: Any) -> Location:
        return Location(self.file, mark.line + 1, mark.column + 1)

    def compose(self) -> yaml.Node | None:
        """Read every event; scalars, the bulk of a spec, are handled inline."""
        get_event, resolve, open_ = self.loader.get_event, self.loader.resolve, self.open
        root: yaml.Node | None = None
        documents = 0
        while True:
            event = get_event()
            kind = type(event)
            done: _Done
            if kind is ScalarEvent:
                self.values += 1
                if self.values > MAX_VALUES or event.anchor is not None:
                    self.count(0, event.start_mark, via_alias=False)
                    self.claim(event.anchor, event.start_mark)
                tag = event.tag
                if tag is None or tag == "!":
                    tag = resolve(yaml.ScalarNode, event.value, event.implicit)
                    if tag == _VALUE:  # a lone `=`: YAML 1.1's "default value" key; text here
                        tag = _STR
                elif tag not in _SCALAR_TAGS:
                    self.unknown_tag(tag, event)
                    tag = _STR
                node = yaml.ScalarNode(
                    tag, event.value, event.start_mark, event.end_mark, event.style
                )
                done = (node, 1, 1)
                if event.anchor is not None:
                    self.anchors[event.anchor] = done
            elif kind is MappingStartEvent or kind is SequenceStartEvent:
                self.start(event, kind is MappingStartEvent)
                continue
            elif kind is MappingEndEvent or kind is SequenceEndEvent:
                done = self.end(event)
            elif kind is AliasEvent:
                done = self.alias(event)
            elif kind is DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise self.fail(
                        event.start_mark,
                        "a second YAML document; mizzen.yaml holds exactly one",
                        "remove the `---` line and what follows it",
                    )
                continue
            elif kind is StreamEndEvent:
                return root
            else:  # stream start, document end
                continue
            if open_:
                parent = open_[-1]
                parent.items.append(done[0])
                parent.size += done[1]
                if done[2] >= parent.depth:
                    parent.depth = done[2] + 1
            else:
                root = done[0]

    def count(self, size: int, mark: Any, via_alias: bool) -> None:
        self.values += size
        if self.values <= MAX_VALUES:
            return
        if via_alias:
            raise self.fail(
                mark,
                f"aliases expand the spec past {MAX_VALUES} values",
                "nested aliases multiply: write the values out, or nest fewer aliases",
            )
        raise self.fail(
            mark,
            f"the spec holds more than {MAX_VALUES} values",
            "keep data out of mizzen.yaml: in a volume, or a file the job reads",
        )

    def check_depth(self, depth: int, mark: Any) -> None:
        if depth > MAX_DEPTH:
            raise self.fail(
                mark,
                f"nested more than {MAX_DEPTH} levels deep",
                "a spec needs a dozen levels at most; flatten this value",
            )

    def claim(self, anchor: str | None, mark: Any) -> None:
        """A node with `anchor` starts at `mark`: the name must be new."""
        if anchor is None:
            return
        if anchor in self.defined:
            raise self.fail(
                mark,
                f"anchor &{anchor} is already defined at line {self.defined[anchor]}",
                "give each anchor its own name",
            )
        self.defined[anchor] = mark.line + 1

    def alias(self, event: Any) -> _Done:
        anchor = event.anchor
        outer = next((o for o in self.open if o.anchor == anchor), None)
        if outer is not None:
            raise self.fail(
                event.start_mark,
                f"alias *{anchor} is inside its own anchor &{anchor} "
                f"(line {outer.node.start_mark.line + 1}), so it would never end",
                "an alias cannot contain itself; repeat the values instead",
            )
        target = self.anchors.get(anchor)
        if target is None:
            raise self.fail(
                event.start_mark,
                f"alias *{anchor} has no anchor &{anchor} before it",
                f"define `&{anchor}` on a value above, or remove the `*`",
            )
        self.check_depth(len(self.open) + target[2], event.start_mark)
        self.count(target[1], event.start_mark, via_alias=True)
        return target

    def start(self, event: Any, mapping: bool) -> None:
        self.count(1, event.start_mark, via_alias=False)
        self.check_depth(len(self.open) + 1, event.start_mark)
        self.claim(event.anchor, event.start_mark)
        kind = yaml.MappingNode if mapping else yaml.SequenceNode
        tag = event.tag
        if tag is None or tag == "!":
            tag = self.loader.resolve(kind, None, event.implicit)
        elif tag != (_MAP if mapping else _SEQ):
            self.unknown_tag(tag, event)
            tag = _MAP if mapping else _SEQ
        node = kind(tag, [], event.start_mark, None, flow_style=event.flow_style)
        self.open.append(_Open(node, event.anchor))

    def end(self, event: Any) -> _Done:
        top = self.open.pop()
        node = top.node
        node.end_mark = event.end_mark
        if isinstance(node, yaml.MappingNode):
            node.value = list(zip(top.items[::2], top.items[1::2], strict=True))
        else:
            node.value = top.items
        done = (node, top.size, top.depth)
        if top.anchor is not None:
            self.anchors[top.anchor] = done
        return done

    def unknown_tag(self, tag: str, event: Any) -> None:
        shown = show_tag(tag)
        hint = "remove the tag: mizzen.yaml takes plain YAML values"
        if tag.lower() == "!env" and isinstance(event, ScalarEvent):
            hint = f'to read an environment variable, write "${{env.{event.value}}}"'
        self.problems.append(
            Problem(f"unsupported YAML tag {shown}", location=self.at(event.start_mark), hint=hint)
        )
