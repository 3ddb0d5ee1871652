"""A caller's value as an error message may repeat it."""

from __future__ import annotations

ECHO_LIMIT = 60


def echoed(value: str, limit: int = ECHO_LIMIT) -> str:
    """Whole when short, cut with its length when not, so a 100 kB name or key costs the context a
    line, not 100 kB."""
    return value if len(value) <= limit else f"{value[: limit - 3]}... ({len(value)} characters)"
