"""The time filters models send: ISO dates and datetimes, or PostHog's relative forms like -7d."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

TIME_FILTER = r"^(-\d{1,4}[hdwmy]|\d{4}-\d\d-\d\d([T ]\d\d:\d\d[0-9:.]*(Z|[+-]\d\d:?\d\d)?)?)$"
_RELATIVE = re.compile(r"^-(\d{1,4})([hdwmy])$")
_UNIT_HOURS = {"h": 1, "d": 24, "w": 24 * 7, "m": 24 * 30, "y": 24 * 365}


def to_instant(value: str, now: datetime | None = None) -> datetime:
    """An aware datetime for a filter value: a relative form counts back from now, a bare date is
    midnight UTC, and a time without an offset is UTC."""
    relative = _RELATIVE.match(value)
    if relative:
        hours = int(relative.group(1)) * _UNIT_HOURS[relative.group(2)]
        try:
            return (now or datetime.now(UTC)) - timedelta(hours=hours)
        except OverflowError:
            raise ValueError(f"{value} reaches before year 1") from None
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "T", 1))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# A day's margin from the ends of datetime's range: any time zone can then show the moment.
_EARLIEST = datetime.min.replace(tzinfo=UTC) + timedelta(days=1)
_LATEST = datetime.max.replace(tzinfo=UTC) - timedelta(days=1)


def in_utc(value: str, now: datetime | None = None) -> datetime:
    """`to_instant` in UTC; a ValueError (not an OverflowError) for a moment no time zone can hold,
    such as 0001-01-01T00:00:00+01:00, which is in the year 0 in UTC."""
    try:
        moment = to_instant(value, now).astimezone(UTC)
    except OverflowError:
        raise ValueError(f"{value} lies outside the years 1 to 9999 in UTC") from None
    if not _EARLIEST <= moment <= _LATEST:
        raise ValueError(f"{value} is too close to the year {moment.year} edge of the calendar")
    return moment


def utc_filter(value: str, now: datetime | None = None) -> str:
    """A filter value as PostHog should get it: an ISO datetime in UTC with its offset spelled out.

    PostHog reads a time without an offset in the project's time zone (docs/posthog-api.md,
    section "Times"); ours mean UTC, so the offset is always sent.
    """
    return in_utc(value, now).isoformat().replace("+00:00", "Z")


def check_filter(value: str | None) -> str | None:
    """A pydantic validator body: the value must name a real moment (the pattern only checks its shape)."""
    if value is not None:
        try:
            in_utc(value)
        except ValueError as exc:
            raise ValueError(
                f"{value!r} is not a real date or time ({exc}); use e.g. 2026-11-26T00:00:00Z or -24h"
            ) from None
    return value
