"""Time buckets: where an hour, a day or a week starts in a time zone, and the SQL literal of
a bucket boundary for the signal's time column (a date, an instant or a wall-clock time)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo


def floor(when: datetime, grain: str, tz: str = "UTC") -> datetime:
    """The start (UTC) of the bucket holding `when`."""
    zone = ZoneInfo(tz)
    local = (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(zone)
    if grain == "hour":
        start = local.replace(minute=0, second=0, microsecond=0)
    else:
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        if grain == "week":
            start -= timedelta(days=start.weekday())
        start = start.replace(tzinfo=None).replace(tzinfo=zone)  # midnight's own offset
    return start.astimezone(UTC)


def step(start: datetime, grain: str, tz: str = "UTC") -> datetime:
    """The start (UTC) of the bucket after the one starting at `start`."""
    if grain == "hour":
        return start + timedelta(hours=1)
    zone = ZoneInfo(tz)
    local = start.astimezone(zone).replace(tzinfo=None)
    later = local + timedelta(days=7 if grain == "week" else 1)
    return later.replace(tzinfo=zone).astimezone(UTC)


def parse_bound(text: str, tz: str = "UTC") -> datetime:
    """`2025-01-31` (midnight in the signal's zone) or an ISO time, as a UTC instant."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(tz)).astimezone(UTC)
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r}: expected a date (2025-01-31) or an ISO time") from None
    return (when if when.tzinfo else when.replace(tzinfo=ZoneInfo(tz))).astimezone(UTC)


def literal(bound: datetime, time_type: str, tz: str, engine: str) -> str:
    """`bound` as a SQL literal comparable with a column of `time_type`."""
    local = bound.astimezone(ZoneInfo(tz))
    if time_type == "date":
        return f"DATE '{local.date().isoformat()}'"
    if time_type == "timestamp_ntz":
        wall = local.replace(tzinfo=None).isoformat(sep=" ")
        return f"TIMESTAMP '{wall}'" if engine == "duckdb" else f"CAST('{wall}' AS TIMESTAMP_NTZ)"
    iso = bound.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ")
    if engine == "duckdb":
        return f"CAST('{iso}+00' AS TIMESTAMPTZ)"
    return f"CAST('{iso}Z' AS TIMESTAMP)"


def span(
    start: str | None, end: str | None, grain: str, tz: str = "UTC"
) -> tuple[datetime | None, datetime | None]:
    """The buckets `--from START --to END` name (both included) as [begin, finish): one
    rule for the command line and the runner. ValueError names the flag at fault."""
    begin = finish = None
    for flag, text in (("--from", start), ("--to", end)):
        if not text:
            continue
        try:
            first = floor(parse_bound(text, tz), grain, tz)
        except ValueError as exc:
            raise ValueError(f"{flag} {exc}") from None
        if flag == "--from":
            begin = first
        else:
            finish = step(first, grain, tz)  # `to` is included
    if begin is not None and finish is not None and finish <= begin:
        raise ValueError(f"--to {end} is before --from {start}")
    return begin, finish
