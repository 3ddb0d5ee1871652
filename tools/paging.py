"""PostHog's pages: cursors a model can pass back, and following `next` across pages.

PostHog lists newest first and answers `{"results": [...], "next": url | null}`; the `next`
URL carries the cursor (runs, backfills) or the offset (exports) of the following page
(docs/posthog-api.md, section "Pagination").
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tools.upstream import Request, Upstream


def cursor_of(value: str) -> str:
    """A page cursor, whether given bare or as the whole `next` URL a previous page returned."""
    if "cursor=" in value:
        found = parse_qs(urlsplit(value).query).get("cursor")
        if found:
            return found[0]
    return value


def with_next_cursor(page: Any) -> Any:
    """Add `next_cursor` (the bare cursor of `next`) so a model can page on without parsing URLs."""
    if isinstance(page, dict) and isinstance(page.get("next"), str):
        return {**page, "next_cursor": cursor_of(page["next"])}
    return page


def next_query(page: Any) -> dict[str, str] | None:
    """The query parameters that ask for the page after `page`, or None on the last page."""
    url = page.get("next") if isinstance(page, dict) else None
    if not isinstance(url, str) or not url:
        return None
    found = {key: values[-1] for key, values in parse_qs(urlsplit(url).query).items() if values}
    return found or None


async def pages(upstream: Upstream, request: Request, *, max_pages: int) -> AsyncIterator[dict[str, Any]]:
    """Each page of a list, starting with `request`, following `next` for at most `max_pages` pages."""
    for _ in range(max_pages):
        page = await upstream.send(request)
        if not isinstance(page, dict):
            return
        yield page
        more = next_query(page)
        if more is None:
            return
        request = dataclasses.replace(request, query={**request.query, **more})
