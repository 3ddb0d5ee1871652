"""PostHog's pages: cursors a model can pass back, following `next` across pages, and a cursor page
shown as a tool shows it, cut anywhere without losing a run or backfill.

PostHog lists newest first and answers `{"results": [...], "next": url | null}`; the `next`
URL carries the cursor (runs, backfills) or the offset (exports) of the following page
(docs/posthog-api.md, section "Pagination"). A tool continues a cursor page it cut with a cursor of
its own (tools/continuation.py, `resume_cursor`), which names PostHog's page and the last item shown.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

from tools import continuation
from tools.upstream import Request, Upstream


def cursor_of(value: str) -> str:
    """A page cursor, whether given bare or as the whole `next` URL a previous page returned; a cursor
    of ours (tools/continuation.py) is checked and kept as it is."""
    if value.startswith(continuation.RESUME_PREFIX):
        continuation.read_resume(value)  # a ValueError names what is wrong with it
        return value
    if "cursor=" in value:
        found = parse_qs(urlsplit(value).query).get("cursor")
        if found:
            return found[0]
    return value


def page_cursor(cursor: str | None) -> str | None:
    """PostHog's cursor of the page a tool's `cursor` argument reads (a cursor of ours names it inside)."""
    resume = continuation.read_resume(cursor)
    return resume.page if resume is not None else cursor


@dataclass(frozen=True)
class CursorList:
    """A tool over one of PostHog's cursor-paged lists: its name, what it calls an item, and how an
    item's place in the list is read from the call's parameters (ordering field, newest first?)."""

    tool: str
    noun: str
    ordering: Callable[[Any], tuple[str, bool]]
    compact: Callable[[dict[str, Any]], dict[str, Any]] = lambda item: item

    def _call(self, params: Any, cursor: str, reason: str) -> dict[str, Any]:
        arguments = params.model_dump(mode="json", exclude_none=True) | {"cursor": cursor}
        return continuation.omitted(self.tool, arguments, reason)

    def after(self, params: Any, last: dict[str, Any], reason: str) -> dict[str, Any]:
        """The call continuing after `last`, an item of the page `params.cursor` reads."""
        field, _ = self.ordering(params)
        return self._call(
            params, continuation.resume_cursor(page_cursor(params.cursor), str(last.get("id")), last.get(field)), reason
        )

    async def page(self, upstream: Upstream, request: Request, params: Any, limit: int) -> Any:
        """At most `limit` items from where `params.cursor` points, and `omitted` naming the call that
        continues after the last one shown (PostHog's own cursor when the page was shown to its end)."""
        resume = continuation.read_resume(params.cursor)
        query = {k: v for k, v in request.query.items() if k != "cursor"}
        cursor = resume.page if resume is not None else params.cursor
        if cursor:
            query["cursor"] = cursor
        page = await upstream.send(dataclasses.replace(request, query=query))
        if not isinstance(page, dict) or not isinstance(page.get("results"), list):
            return page
        items = [item for item in page["results"] if isinstance(item, dict)]
        if resume is not None:
            field, descending = self.ordering(params)
            items = continuation.after_resume(items, resume, field, descending)
        shown = items[:limit]
        answer: dict[str, Any] = {"results": [self.compact(item) for item in shown]}
        following = page.get("next")
        if len(shown) < len(items):
            answer["omitted"] = self.after(
                params, shown[-1], f"{len(items) - len(shown)} more {self.noun} on this page, then perhaps more pages"
            )
        elif isinstance(following, str) and following:
            answer["omitted"] = self._call(params, cursor_of(following), f"more {self.noun} on PostHog's next page")
        return answer

    def resume(self, params: Any, answer: Any, shown: int) -> dict[str, Any] | None:
        """The declaration's `resume`: after the first `shown` of this answer's items."""
        results = answer.get("results") if isinstance(answer, dict) else None
        if not isinstance(results, list) or shown >= len(results):
            return answer.get("omitted") if isinstance(answer, dict) else None
        if shown == 0:
            return None
        return self.after(
            params, results[shown - 1], f"{shown} of {len(results)} {self.noun} fit the answer budget; more follow"
        )


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
