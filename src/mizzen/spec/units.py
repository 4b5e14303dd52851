"""Pure parsers of the spec's scalars (no pydantic: the run path imports these)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_DNS1123 = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def check_name(value: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("a name is required")
    if len(value) > 63:
        raise ValueError(f"{value!r} is longer than 63 characters")
    if not _DNS1123.match(value):
        fixed = re.sub(r"[^a-z0-9-]+", "-", value.lower()).strip("-") or "name"
        raise ValueError(
            f"{value!r} is not a DNS-1123 label (lower-case letters, digits and '-', "
            f"starting and ending with a letter or digit); try {fixed!r}"
        )
    return value


def check_blob(value: str) -> str:
    """`<store>` or `<store>/<path>`: a path that stays inside the store, written plainly."""
    if not value or value.startswith("/"):
        raise ValueError("blob takes <store>/<path>, e.g. lake/raw/drives")
    store, _, path = value.partition("/")
    segments = path.removesuffix("/").split("/") if path else []
    odd = next((s for s in segments if s in ("", ".", "..")), None)
    if odd is None:
        return value
    import posixpath

    plain = posixpath.normpath(path.strip("/")) if path.strip("/") else "."
    if plain == ".." or plain.startswith("../"):
        raise ValueError(
            f"{value!r} climbs out of store {store!r}: a blob volume stays inside its store; "
            "declare the other location as a store under `stores:`"
        )
    what = {"": "an empty segment (//)", ".": "a '.' segment", "..": "a '..' segment"}[odd]
    fixed = store if plain == "." else f"{store}/{plain}"
    raise ValueError(f"{value!r} has {what}; write {fixed}")


_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def check_env_name(value: str) -> str:
    if not _ENV_NAME.match(value):
        fixed = re.sub(r"[^A-Za-z0-9_]+", "_", value).strip("_") or "NAME"
        fixed = "_" + fixed if fixed[0].isdigit() else fixed
        raise ValueError(
            f"{value!r} is not a valid environment variable name (letters, digits and '_'); try {fixed!r}"
        )
    return value


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(value: object) -> float:
    """'90s', '10m', '1h30m', '2d', or a number of seconds -> seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 30s, 10m, 2h or 1d")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError("a duration cannot be negative")
        return float(value)
    if not isinstance(value, str):
        raise ValueError("expected a duration like 30s, 10m, 2h or 1d")
    text = value.strip()
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if not text or pos != len(text):
        raise ValueError(f"{value!r} is not a duration; expected e.g. 30s, 10m, 2h, 1h30m or 1d")
    return total


_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_SUFFIX = {
    None: Decimal(1),
    "m": Decimal("0.001"),
    "k": Decimal(10) ** 3,
    "M": Decimal(10) ** 6,
    "G": Decimal(10) ** 9,
    "T": Decimal(10) ** 12,
    "P": Decimal(10) ** 15,
    "E": Decimal(10) ** 18,
    "Ki": Decimal(2) ** 10,
    "Mi": Decimal(2) ** 20,
    "Gi": Decimal(2) ** 30,
    "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50,
    "Ei": Decimal(2) ** 60,
}


def parse_quantity(value: object) -> Decimal:
    """A Kubernetes quantity ('500m', '2', '4Gi', '1.5G') -> its value as a Decimal."""
    if isinstance(value, bool):
        raise ValueError("expected a quantity like 500m, 2, 512Mi or 4Gi")
    text = str(value).strip()
    match = _QUANTITY.match(text)
    if not match:
        hint = ""
        number = re.match(r"^[0-9]+(?:\.[0-9]+)?", text)
        unit = text[number.end() :].strip().lower() if number else ""
        right = {
            "gb": "Gi",
            "g": "Gi",
            "gi": "Gi",
            "mb": "Mi",
            "mi": "Mi",
            "kb": "Ki",
            "ki": "Ki",
            "tb": "Ti",
            "t": "Ti",
            "ti": "Ti",
        }.get(unit)
        if number and right:
            hint = f"; did you mean {number.group(0)}{right}?"
        raise ValueError(f"{value!r} is not a quantity like 500m, 2, 512Mi or 4Gi{hint}")
    try:
        return Decimal(match.group(1)) * _SUFFIX[match.group(2)]
    except InvalidOperation as exc:  # pragma: no cover - regex guards this
        raise ValueError(str(exc)) from None


def scalar_to_str(value: object) -> object:
    """YAML scalars where a string is expected: 7 -> "7", true -> "true" (as written in YAML)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


def check_cron(value: str) -> str:
    from datetime import datetime

    from cronsim import CronSim, CronSimError

    if not isinstance(value, str):
        raise ValueError("expected a cron expression like '0 3 * * *'")
    fields = value.split()
    if len(fields) != 5 and not value.startswith("@"):
        raise ValueError(
            f"{value!r} has {len(fields)} fields; a cron expression has 5: minute hour day-of-month month day-of-week"
        )
    try:
        CronSim(_expand_macro(value), datetime(2000, 1, 1))
    except CronSimError as exc:
        raise ValueError(f"{value!r} is not a valid cron expression: {exc}") from None
    return value


_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def _expand_macro(value: str) -> str:
    if value.startswith("@"):
        if value not in _MACROS:
            raise ValueError(f"{value!r} is not a known cron macro ({', '.join(_MACROS)})")
        return _MACROS[value]
    return value


expand_cron = _expand_macro
