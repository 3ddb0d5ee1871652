"""Confirmation versions: one short value for the state a write's preview was built from.

A confirmation is honoured only while the target's version is unchanged, so a person never
approves one state and gets a write against another.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from tools.upstream import Upstream


def export_version(export: dict[str, Any]) -> str:
    """The export's state as one short value: any change to it (name, paused, config...) changes this.

    `last_updated_at` alone is not enough: a change within the same clock tick keeps it.
    """
    stable = {k: v for k, v in export.items() if k != "latest_runs"}
    text = json.dumps(stable, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def status_version(item: dict[str, Any]) -> str:
    """A run's or backfill's state: its status and when it last changed."""
    return f"{item.get('status')}@{item.get('last_updated_at') or item.get('finished_at') or ''}"


async def newest_id(upstream: Upstream, path: str) -> str:
    """The id of the newest item of a list (PostHog lists newest first), or "none".

    A write that adds to a collection (create, backfill, retry) changes nothing it could be
    compared on, so its confirmation is bound to the collection's newest member instead: once
    the write has happened, the same confirmation no longer matches, in any process.
    """
    page = await upstream.request("GET", path)
    results = page.get("results") if isinstance(page, dict) else None
    first = results[0] if isinstance(results, list) and results else None
    return str(first.get("id")) if isinstance(first, dict) else "none"
