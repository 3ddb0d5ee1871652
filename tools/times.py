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


def check_filter(value: str | None) -> str | None:
    """A pydantic validator body: the value must name a real moment (the pattern only checks its shape)."""
    if value is not None:
        try:
            to_instant(value)
        except ValueError as exc:
            raise ValueError(
                f"{value!r} is not a real date or time ({exc}); use e.g. 2026-11-26T00:00:00Z or -24h"
            ) from None
    return value
