"""The column names a SQL expression uses, found without a SQL engine (`mizzen validate` must
stay fast): identifiers outside string literals and comments that are neither SQL words nor
function names. An expression holding a sub-query or a lambda is not checked (its names are
not all columns of the dataset)."""

from __future__ import annotations

import re

_TOKEN = re.compile(
    r"""
    (?P<string>'(?:[^']|'')*'?)
    |(?P<comment>--[^\n]*|/\*.*?(?:\*/|$))
    |(?P<quoted>"(?:[^"]|"")*"?)
    |(?P<number>\d+(?:\.\d*)?(?:[eE][-+]?\d+)?|\.\d+)
    |(?P<word>[A-Za-z_][A-Za-z0-9_$]*)
    |(?P<cast>::)
    |(?P<dot>\.)
    |(?P<other>\S)
    """,
    re.VERBOSE | re.DOTALL,
)

# SQL words an expression may hold that are not columns (DuckDB's and Spark SQL's), lower-case
_WORDS = """
    and or not in is null true false case when then else end between like ilike glob similar
    rlike regexp escape as cast try_cast distinct all any some exists interval over partition
    by order asc desc nulls first last rows range groups preceding following unbounded current
    row filter within group collate at zone from for using where select with without timezone
    date time timestamp timestamptz timestamp_ntz timestamp_ltz timestamp_s timestamp_ms
    timestamp_ns year years month months day days hour hours minute minutes second seconds
    week weeks quarter quarters millisecond milliseconds microsecond microseconds epoch dow doy
    isodow isoyear decade century millennium yearweek double float real integer int int2 int4
    int8 bigint smallint tinyint hugeint uhugeint utinyint usmallint uinteger ubigint boolean
    bool varchar string text char decimal numeric uuid json blob bytea binary varint bit struct
    map list array union current_date current_timestamp current_time localtime localtimestamp
    div mod semi anti lateral natural join on
"""
WORDS = frozenset(_WORDS.split())


def identifiers(text: str) -> list[tuple[int, str]] | None:
    """(offset, name) of every identifier in `text` that should be a column; None when the
    expression cannot be checked this way."""
    tokens = [
        (m.start(), m.lastgroup or "", m.group())
        for m in _TOKEN.finditer(text)
        if m.lastgroup != "comment"
    ]
    if "->" in text or any(k == "word" and v.lower() == "select" for _, k, v in tokens):
        return None
    out: list[tuple[int, str]] = []
    for i, (offset, kind, value) in enumerate(tokens):
        if kind not in ("word", "quoted"):
            continue
        before = tokens[i - 1] if i > 0 else (0, "", "")
        after = tokens[i + 1] if i + 1 < len(tokens) else (0, "", "")
        if kind == "quoted":
            if not value.endswith('"') or len(value) < 2:
                continue
            name = value[1:-1].replace('""', '"')
        else:
            name = value
            if name.lower() in WORDS or after[2] == "(":
                continue
        if before[1] in ("cast", "dot") or after[1] == "dot":
            continue  # a type after `::`, or a qualified name (table.column, struct.field)
        if before[1] == "word" and before[2].lower() == "as":
            continue  # an alias or a type in CAST(x AS type)
        out.append((offset, name))
    return out


def unknown_columns(text: str, columns: list[str]) -> list[tuple[int, str]]:
    """The identifiers of `text` that are no column (case-insensitive, as in DuckDB/Spark)."""
    found = identifiers(text)
    if found is None:
        return []
    known = {c.lower() for c in columns}
    return [(offset, name) for offset, name in found if name.lower() not in known]
