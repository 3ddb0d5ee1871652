"""Datetimes as PostHog writes and reads them: DRF output, ISO input, relative dates, intervals."""

from __future__ import annotations

import calendar
import re
from datetime import UTC as UTC  # re-exported: the sandbox names one UTC
from datetime import date, datetime, timedelta
from functools import lru_cache
from typing import overload
from zoneinfo import ZoneInfo, available_timezones

INTERVALS: dict[str, timedelta] = {
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
    "week": timedelta(weeks=1),
    "every 5 minutes": timedelta(minutes=5),
    "every 15 minutes": timedelta(minutes=15),
}

_TIMEZONES: frozenset[str] | None = None


def timezones() -> frozenset[str]:
    global _TIMEZONES
    if _TIMEZONES is None:
        _TIMEZONES = frozenset(available_timezones()) | {"UTC"}
    return _TIMEZONES


def utcnow() -> datetime:
    return datetime.now(UTC)


@overload
def drf(value: datetime) -> str: ...
@overload
def drf(value: None) -> None: ...
def drf(value: datetime | None) -> str | None:
    """DRF's DateTimeField output: UTC, `Z`, microseconds only when non-zero."""
    if value is None:
        return None
    return _drf(value)


@lru_cache(maxsize=65536)  # a list page writes the same ticks for many exports
def _drf(value: datetime) -> str:
    text = value.astimezone(UTC).isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


@overload
def to_db(value: datetime) -> str: ...
@overload
def to_db(value: None) -> None: ...
def to_db(value: datetime | None) -> str | None:
    """Fixed-width UTC text that sorts lexicographically."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")


@overload
def from_db(value: str) -> datetime: ...
@overload
def from_db(value: None) -> None: ...
def from_db(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def parse_datetime(value: str) -> datetime | None:
    """ISO-8601 date or datetime; naive values are returned naive. None if unparseable."""
    text = value.strip()
    if text.endswith("Z") or text.endswith("z"):
        text = text[:-1] + "+00:00"
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def parse_drf_datetime(value: object) -> datetime:
    """Input side of DRF's DateTimeField (naive → UTC). Raises ValueError when invalid."""
    if not isinstance(value, str):
        raise ValueError(value)
    parsed = parse_datetime(value)
    if parsed is None:
        raise ValueError(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


_RELATIVE = re.compile(r"-?(?P<number>[0-9]+)?(?P<type>[a-zA-Z])(?P<position>Start|End)?")


def relative_date_parse(value: str, now: datetime, tz_name: str = "UTC") -> datetime:
    """posthog.utils.relative_date_parse: ISO dates/datetimes or `-7d`, `-24h`, `-1w`, `-1m`, `-1y`, `-30M`.

    A date or datetime without an offset is read in the project's timezone (docs/posthog-api.md, "Times").
    Anything else falls back to `now`, like PostHog.
    """
    parsed = parse_datetime(value)
    if parsed is not None:
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC if tz_name == "UTC" else ZoneInfo(tz_name))
        return parsed.astimezone(UTC)
    match = _RELATIVE.search(value)
    if not match:
        return now
    number = int(match.group("number") or 0)
    kind = match.group("type")
    if kind == "h":
        return now - timedelta(hours=number)
    if kind == "d":
        return now - timedelta(days=number)
    if kind == "w":
        return now - timedelta(weeks=number)
    if kind == "M":
        return now - timedelta(minutes=number)
    if kind == "m":
        return _add_months(now, -number)
    if kind == "q":
        return _add_months(now, -3 * number)
    if kind == "y":
        return _add_months(now, -12 * number)
    return now


def _add_months(value: datetime, months: int) -> datetime:
    index = value.year * 12 + value.month - 1 + months
    year, month = divmod(index, 12)
    day = min(value.day, calendar.monthrange(year, month + 1)[1])
    return value.replace(year=year, month=month + 1, day=day)


def step(value: datetime, interval: str, tz_name: str = "UTC") -> datetime:
    """One interval later; day and week steps follow the wall clock of the export's timezone."""
    delta = INTERVALS[interval]
    if interval in ("day", "week") and tz_name != "UTC":
        local = value.astimezone(ZoneInfo(tz_name))
        return (local + delta).astimezone(UTC)
    return value + delta


def floor_to_interval(value: datetime, interval: str, offset_seconds: int | None = 0, tz_name: str = "UTC") -> datetime:
    """The schedule tick at or before `value`: the interval grid shifted by the export's offset, with
    daily and weekly ticks on the wall clock of the export's timezone (weeks start on Sunday)."""
    delta = INTERVALS[interval]
    local_tz = ZoneInfo(tz_name) if interval in ("day", "week") and tz_name != "UTC" else UTC
    wall = value.astimezone(local_tz).replace(tzinfo=None)
    epoch = datetime(1970, 1, 4) if interval == "week" else datetime(1970, 1, 1)
    epoch += timedelta(seconds=offset_seconds or 0)
    tick = (epoch + ((wall - epoch) // delta) * delta).replace(tzinfo=local_tz).astimezone(UTC)
    return tick - delta if tick > value else tick


def str_range_bound(value: datetime | None) -> str:
    """How the worker prints a bound in a log message: `2025-01-01 00:00:00+00:00`, or START."""
    return "START" if value is None else str(value.astimezone(UTC).replace(microsecond=0))


def weekday_name(value: date) -> str:
    return value.strftime("%A")
