"""Scalar types (durations, quantities, cron, names) and `${...}` references."""

from __future__ import annotations

from decimal import Decimal

import pytest

from mizzen.spec.interpolate import (
    RefError,
    fill_run,
    finish,
    parse_ref,
    refs,
    substitute,
    unescape,
)
from mizzen.spec.types import (
    check_blob,
    check_cron,
    check_env_name,
    check_name,
    parse_duration,
    parse_quantity,
)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("10m", 600),
        ("2h", 7200),
        ("1h30m", 5400),
        ("1d", 86400),
        ("250ms", 0.25),
        (45, 45),
        ("1.5h", 5400),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["10 minutes", "1w", "", "m10", True, -1, "10m junk"])
def test_bad_durations(text: object) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("500m", Decimal("0.5")),
        ("2", Decimal(2)),
        ("4Gi", Decimal(4 * 2**30)),
        ("1.5G", Decimal("1.5e9")),
        (2, Decimal(2)),
    ],
)
def test_quantities(text: object, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize(
    ("text", "suggestion"), [("4GB", "4Gi"), ("4g", "4Gi"), ("512mb", "512Mi"), ("1 Ti", "1Ti")]
)
def test_quantity_suggests_the_binary_unit(text: str, suggestion: str) -> None:
    with pytest.raises(ValueError, match=f"did you mean {suggestion}"):
        parse_quantity(text)


@pytest.mark.parametrize("cron", ["0 3 * * *", "*/5 * * * 1-5", "@daily", "@hourly", "0 0 1 1 *"])
def test_good_cron(cron: str) -> None:
    assert check_cron(cron) == cron


@pytest.mark.parametrize(
    "cron", ["0 3 * *", "61 * * * *", "@every 5m", "* * * * * *", "0 3 * * mon-fry"]
)
def test_bad_cron(cron: str) -> None:
    with pytest.raises(ValueError):
        check_cron(cron)


@pytest.mark.parametrize("name", ["a", "train", "drive-classifier", "a1", "1a", "x" * 63])
def test_good_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["Train", "a_b", "-a", "a-", "a.b", "x" * 64, ""])
def test_bad_names(name: str) -> None:
    with pytest.raises(ValueError):
        check_name(name)


def test_env_name_suggests_a_fix() -> None:
    with pytest.raises(ValueError, match="try 'bad_key'"):
        check_env_name("bad-key")


@pytest.mark.parametrize("blob", ["lake", "lake/raw", "lake/raw/", "lake/a.b/c..d", "lake/.hidden"])
def test_good_blob_paths(blob: str) -> None:
    assert check_blob(blob) == blob


@pytest.mark.parametrize(
    ("blob", "fix"),
    [
        ("lake/raw/../x", "write lake/x"),
        ("lake/raw/..", "write lake"),
        ("lake/./x", "write lake/x"),
        ("lake/a//b", "write lake/a/b"),
        ("lake/../x", "declare the other location as a store"),
        ("lake/a/../../x", "declare the other location as a store"),
    ],
)
def test_blob_paths_stay_inside_their_store(blob: str, fix: str) -> None:
    with pytest.raises(ValueError, match=fix):
        check_blob(blob)


def test_refs_and_escape() -> None:
    found = list(refs("${volumes.raw}/x-${config.HOST}:$${not.a.ref}-${run.id}"))
    assert [r.dotted for r in found] == ["volumes.raw", "config.HOST", "run.id"]
    out = substitute(
        "${volumes.raw}/$${HOME}/${run.id}", lambda r: "/data" if r.root == "volumes" else None
    )
    assert out == "/data/$${HOME}/${run.id}"
    assert unescape(out) == "/data/${HOME}/${run.id}"


def test_fill_run() -> None:
    text = "out/${run.date}/${run.id}/$${x}/${run.outputs}/m.json"
    assert fill_run(text, "r-1", "2024-05-01", "/o") == "out/2024-05-01/r-1/${x}//o/m.json"


def test_fill_run_leaves_other_references_alone() -> None:
    assert fill_run("${HOME}/${run.id}/${not a ref", "r-1", "d") == "${HOME}/r-1/${not a ref"
    assert fill_run("/plain/path", "r", "d") == "/plain/path"


def test_finish_keeps_escapes_only_while_run_references_are_pending() -> None:
    assert finish("$${HOME}/x") == "${HOME}/x"
    assert finish("$${HOME}/${run.id}") == "$${HOME}/${run.id}"
    assert finish("$${run.id}") == "$${run.id}"  # a literal, which fill_run unescapes
    assert fill_run(finish("$${run.id}-${run.id}"), "r-1", "d") == "${run.id}-r-1"


@pytest.mark.parametrize(
    "body", ["volume.raw", "volumes", "secrets.db", "run.name", "volumes.", "config.A.B"]
)
def test_bad_refs(body: str) -> None:
    with pytest.raises(RefError):
        parse_ref(body)
