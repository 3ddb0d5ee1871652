"""How many backfills PostHog lets a project run at once, and how many run now, as PostHog counts them.

PostHog refuses a new backfill (429 too_many_concurrent_backfills) while the project (its "team")
has its limit of backfill rows in Starting or Running, whichever exports they belong to
(docs/posthog-api.md, "Backfills"). The limit is a setting of the PostHog deployment that its API
does not show, so the server is told it (POSTHOG_MCP_BACKFILL_LIMIT) and installs it for the
duration of a call, as it installs the progress reporter.

Counting the running ones costs one backfills read per export, too many at a fleet's size; an
export that has a backfill at work shows it in its embedded latest runs (a Starting or Running run
made by a backfill), and only such exports are read. A backfill started a moment ago, whose first run
is not made yet, shows nowhere: PostHog's refusal then stops a plan, and its receipt says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from tools.answers.intervals import RUNNING

# PostHog's own default is not in the code we read (docs/posthog-api.md, "Backfills"); its tests set 2
# and the sandbox 5. A deployment says its own with POSTHOG_MCP_BACKFILL_LIMIT.
DEFAULT_LIMIT = 5

_limit: ContextVar[int] = ContextVar("backfill_limit", default=DEFAULT_LIMIT)


@contextmanager
def limited(limit: int) -> Iterator[None]:
    token = _limit.set(limit)
    try:
        yield
    finally:
        _limit.reset(token)


def limit() -> int:
    """The most backfills the project may have running at once, for this call."""
    return _limit.get()


def backfill_at_work(export: dict[str, Any]) -> bool:
    """Whether the export's embedded latest runs show one of its backfills at work."""
    return any(
        isinstance(run, dict) and run.get("backfill") and run.get("status") in RUNNING
        for run in export.get("latest_runs") or []
    )


def running(backfills: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The backfills PostHog counts against the limit: written rows in Starting or Running."""
    return [b for b in backfills if isinstance(b, dict) and b.get("status") in RUNNING]
