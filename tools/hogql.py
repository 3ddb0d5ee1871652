"""Caller text inside the HogQL the Query API is sent (docs/posthog-api.md, "Logs and the Query API")."""

from __future__ import annotations


def literal(text: str) -> str:
    """A HogQL string literal (ClickHouse rules: backslash escapes), so input cannot end the string."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def contains_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own wildcards (% and _) taken literally."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
