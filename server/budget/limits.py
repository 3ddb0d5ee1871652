"""PostHog's rate limits for one personal API key, by class of request (docs/posthog-api.md, "Rate limits").

- `crud`: every endpoint that keeps DRF's default throttles, `BurstRateThrottle` 480 a minute and
  `SustainedRateThrottle` 4800 an hour, counted per personal API key.
- `query`: the Query API (`POST query/`), which replaces those throttles with its own
  (`APIQueriesBurstThrottle` 240 a minute, `APIQueriesSustainedThrottle` 2400 an hour) and runs at
  most 3 queries of an organization at once. Some projects are still on an older 120 an hour.

POSTHOG_MCP_POSTHOG_LIMITS replaces them (a self-hosted PostHog with other rates, a legacy project):
`crud=480/minute,4800/hour;query=240/minute,2400/hour,3` (a bare number is the concurrency; a period is
second, minute, hour, day or a number of seconds such as `60s`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum

from server.config import ConfigError


class RequestClass(StrEnum):
    CRUD = "crud"
    QUERY = "query"


@dataclass(frozen=True)
class Rate:
    requests: int
    seconds: float

    def __str__(self) -> str:
        names = {1.0: "second", 60.0: "minute", 3600.0: "hour", 86400.0: "day"}
        return f"{self.requests}/{names.get(self.seconds, f'{self.seconds:g}s')}"


@dataclass(frozen=True)
class ClassLimits:
    rates: tuple[Rate, ...]
    concurrency: int | None = None
    """Requests of this class in flight at once (the Query API's 3), None for no bound."""

    def __str__(self) -> str:
        text = ", ".join(str(rate) for rate in self.rates)
        return text + (f", {self.concurrency} at once" if self.concurrency else "")


PUBLISHED: dict[RequestClass, ClassLimits] = {
    RequestClass.CRUD: ClassLimits((Rate(480, 60.0), Rate(4800, 3600.0))),
    RequestClass.QUERY: ClassLimits((Rate(240, 60.0), Rate(2400, 3600.0)), concurrency=3),
}

_PERIODS = {"s": 1.0, "sec": 1.0, "second": 1.0, "m": 60.0, "min": 60.0, "minute": 60.0, "h": 3600.0}
_PERIODS |= {"hour": 3600.0, "d": 86400.0, "day": 86400.0}
_RATE = re.compile(r"^(\d+)/(?:(\d+(?:\.\d+)?)s|([a-z]+))$")


def request_class(method: str, path: str) -> RequestClass:
    """The Query API (`POST .../query/`) or any other endpoint."""
    if method == "POST" and path.rstrip("/").rsplit("/", 1)[-1] == "query":
        return RequestClass.QUERY
    return RequestClass.CRUD


def parse_limits(text: str | None) -> dict[RequestClass, ClassLimits]:
    """PUBLISHED, with the classes POSTHOG_MCP_POSTHOG_LIMITS names replaced."""
    limits = dict(PUBLISHED)
    if not text or not text.strip():
        return limits
    example = "crud=480/minute,4800/hour;query=240/minute,2400/hour,3"
    for part in (p.strip() for p in text.split(";") if p.strip()):
        name, _, values = part.partition("=")
        try:
            kind = RequestClass(name.strip().lower())
        except ValueError:
            raise ConfigError(
                f"POSTHOG_MCP_POSTHOG_LIMITS names an unknown class {name.strip()[:20]!r} (crud or query), "
                f"for example {example}."
            ) from None
        rates: list[Rate] = []
        concurrency: int | None = None
        for item in (v.strip().lower() for v in values.split(",") if v.strip()):
            if item.isdigit():
                concurrency = int(item) or None
                continue
            found = _RATE.match(item)
            seconds = (
                float(found.group(2))
                if found and found.group(2)
                else _PERIODS.get(found.group(3) or "", 0.0)
                if found
                else 0.0
            )
            if not found or not seconds or not math.isfinite(seconds) or int(found.group(1)) < 1:
                raise ConfigError(
                    f"POSTHOG_MCP_POSTHOG_LIMITS: {item[:30]!r} is not a rate like 480/minute or 48/6s, "
                    f"for example {example}."
                )
            rates.append(Rate(int(found.group(1)), seconds))
        if not rates:
            raise ConfigError(f"POSTHOG_MCP_POSTHOG_LIMITS gives {kind.value} no rate, for example {example}.")
        limits[kind] = ClassLimits(tuple(sorted(rates, key=lambda r: r.seconds)), concurrency)
    return limits
