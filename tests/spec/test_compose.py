"""The bounded YAML composer: what a spec may use, and the limits that keep parsing bounded."""

from __future__ import annotations

import pytest

from mizzen.errors import SpecError
from mizzen.spec.compose import MAX_DEPTH, MAX_VALUES
from mizzen.spec.source import parse_text


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as caught:
        parse_text(text, "mizzen.yaml")
    return [str(p) for p in caught.value.problems]


def test_aliases_within_the_limits_expand_to_copies() -> None:
    src = parse_text("base: &r {cpu: '2', tags: [a]}\na: *r\nb: *r\n", "mizzen.yaml")
    assert src.data["a"] == src.data["b"] == {"cpu": "2", "tags": ["a"]}
    src.data["a"]["tags"].append("b")  # an overlay merge may change one without the other
    assert src.data["b"]["tags"] == ["a"]
    assert src.locate(("b", "cpu")).line == 1  # an aliased value is found where it was written


def test_values_are_counted_once_aliases_are_expanded() -> None:
    # 10 + 9 * 10 + 9 * 91 ... : six nested aliases stay under the limit, seven do not.
    levels = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    levels += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 7)]
    assert parse_text("\n".join(levels[:5]) + "\n", "mizzen.yaml").data["a4"]
    assert problems("\n".join(levels) + "\n") == [
        f"mizzen.yaml:6:10: aliases expand the spec past {MAX_VALUES} values "
        "(nested aliases multiply: write the values out, or nest fewer aliases)"
    ]


def test_a_spec_written_out_beyond_the_limit_is_refused() -> None:
    text = "config:\n" + "".join(f"  K{i}: v\n" for i in range(MAX_VALUES // 2))
    (line,) = problems(text)
    assert line.startswith(f"mizzen.yaml:{MAX_VALUES // 2}:")
    assert f"the spec holds more than {MAX_VALUES} values" in line


def test_depth_counts_what_an_alias_brings_in() -> None:
    deep = "[" * (MAX_DEPTH - 2) + "]" * (MAX_DEPTH - 2)
    assert parse_text(f"a: &d {deep}\n", "mizzen.yaml").data["a"]
    assert problems(f"a: &d {deep}\nb: [[*d]]\n") == [
        f"mizzen.yaml:2:6: nested more than {MAX_DEPTH} levels deep "
        "(a spec needs a dozen levels at most; flatten this value)"
    ]


def test_plain_yaml_tags_and_values_still_read() -> None:
    data = parse_text(
        "a: !!str 7\nb: !!int '8'\nc: =\nd: 2024-01-02\ne: !!map {x: !!seq [1]}\n",
        "mizzen.yaml",
    ).data
    assert data["a"] == "7" and data["b"] == 8 and data["c"] == "="
    assert str(data["d"]) == "2024-01-02"
    assert data["e"] == {"x": [1]}


def test_tags_that_build_other_types_are_refused_everywhere() -> None:
    assert problems("a: !!binary aGk=\nb: !!set {x}\nc: !!omap [x: 1]\n") == [
        "mizzen.yaml:1:4: unsupported YAML tag !!binary (remove the tag: mizzen.yaml takes plain YAML values)",
        "mizzen.yaml:2:4: unsupported YAML tag !!set (remove the tag: mizzen.yaml takes plain YAML values)",
        "mizzen.yaml:3:4: unsupported YAML tag !!omap (remove the tag: mizzen.yaml takes plain YAML values)",
    ]


def test_a_key_yaml_cannot_build_is_a_problem() -> None:
    assert problems("config:\n  ? {[a]: 1}\n  : x\n") == [
        "mizzen.yaml:2:5: cannot read this key: found unhashable key (write keys as plain text)"
    ]


def test_scalar_anchors_are_checked_like_any_other() -> None:
    assert parse_text("a: &x 1\nb: *x\n", "mizzen.yaml").data == {"a": 1, "b": 1}
    assert problems("a: &x 1\nb: &x 2\n") == [
        "mizzen.yaml:2:4: anchor &x is already defined at line 1 (give each anchor its own name)"
    ]


def test_a_bad_value_reached_again_through_an_alias_is_reported_once() -> None:
    assert problems("a: &d 2024-13-45\nb: *d\n") == [
        "mizzen.yaml:1:4: '2024-13-45' reads as a timestamp but is not one: month must be in "
        "1..12 (quote it to keep it as text)"
    ]
