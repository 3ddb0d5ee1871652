"""What an answer left out, and the exact call that continues after the last item it showed.

Every tool that pages or shortens says so the same way (docs/architecture.md, "Rules for answers at a
fleet's size"):

    "omitted": {"count": 69, "reason": "...", "call": {"tool": "batch-export-list", "arguments": {...}}}

`count` is how many items follow, where that is known (PostHog's cursor pages carry no count: there it
is left out); `call` continues after the last item shown, so following it, and the `call` of each answer
it returns, visits every item once. An answer with nothing left out has no `omitted`.

Lists PostHog pages by offset (exports) continue at offset + shown. Lists it pages by an opaque cursor
(runs, backfills; docs/posthog-api.md, "Pagination") cannot be cut inside a page with PostHog's cursors
alone: such a cut continues with a cursor of ours (`resume_cursor`) naming the PostHog page the items came
from and the last item shown; the tool reads that page again and starts after that item (`after_resume`).
Re-reading a page is exact: a cursor page starts at a position in the ordering, not at an item count, so
items created since then do not shift it (and on the first page, where they do, the item is found by id).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from tools.times import to_instant

# What one answer may cost a model's context, as compact JSON text: no answer is longer.
BUDGET = 16_000
# What a tool fills with its own answer: room is left for the result shaper (redaction) under BUDGET.
FIT = BUDGET - 500
RESUME_PREFIX = "resume:"

T = TypeVar("T")


def size(value: Any) -> int:
    """Bytes of `value` as compact JSON, the form an answer's text takes."""
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def omitted(tool: str, arguments: dict[str, Any], reason: str, count: int | None = None) -> dict[str, Any]:
    """The one shape of "what this answer left out and the call that continues after it"."""
    shape: dict[str, Any] = {}
    if count is not None:
        shape["count"] = count
    shape["reason"] = reason
    shape["call"] = {"tool": tool, "arguments": arguments}
    return shape


def longest_fitting(items: Sequence[T], fits: Callable[[Sequence[T]], bool]) -> int:
    """The largest n such that `fits(items[:n])` (0 when not even one item fits); `fits` must be monotone."""
    low, high = 0, len(items)
    if fits(items):
        return high
    while low < high:
        middle = (low + high + 1) // 2
        if fits(items[:middle]):
            low = middle
        else:
            high = middle - 1
    return low


def fit_prefix(value: dict[str, Any], key: str, budget: int = BUDGET, room: int = 0) -> int:
    """How many of `value[key]` fit, the rest of `value` as it is, within `budget` less `room` bytes
    (room kept for the `omitted` note the caller adds). At least one, so every call makes progress."""
    items = value[key]
    limit = budget - room
    shown = longest_fitting(items, lambda prefix: size({**value, key: list(prefix)}) <= limit)
    return max(shown, 1) if items else 0


# --------------------------------------------------------------------------------- cursor pages


@dataclass(frozen=True)
class Resume:
    """Where a cut cursor page continues: PostHog's cursor of the page (None: the first page), the id of
    the last item shown and its value of the ordering field (to place it should the id be gone)."""

    page: str | None
    after: str
    key: str | None = None


def encode_cursor(data: dict[str, Any]) -> str:
    """A cursor of ours: what a tool needs to continue, opaque to the model that passes it back."""
    encoded = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")
    return RESUME_PREFIX + encoded


def decode_cursor(cursor: str | None, *required: str) -> dict[str, Any] | None:
    """The data of a cursor of ours (None for PostHog's cursors and for none); a ValueError when it is
    damaged or lacks a `required` key."""
    if not cursor or not cursor.startswith(RESUME_PREFIX):
        return None
    body = cursor[len(RESUME_PREFIX) :]
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    except (ValueError, binascii.Error):
        data = None
    if not isinstance(data, dict) or any(key not in data for key in required):
        raise ValueError("cursor is not one this server gave out; pass omitted.call's cursor unchanged")
    return data


def resume_cursor(page: str | None, after: str, key: Any = None) -> str:
    """Our cursor for "the items after `after` on the page PostHog's cursor `page` reads"."""
    return encode_cursor({"p": page, "a": after, "k": None if key is None else str(key)})


def read_resume(cursor: str | None) -> Resume | None:
    """The Resume a cursor of ours names; None for PostHog's own cursors (and for no cursor)."""
    data = decode_cursor(cursor, "p", "a")
    if data is None:
        return None
    page, after, key = data["p"], data["a"], data.get("k")
    if not isinstance(after, str) or not (page is None or isinstance(page, str)):
        raise ValueError("cursor is not one this server gave out; pass omitted.call's cursor unchanged")
    return Resume(page=page, after=after, key=key if isinstance(key, str) else None)


def after_resume(items: list[dict[str, Any]], resume: Resume, field: str, descending: bool) -> list[dict[str, Any]]:
    """The items of a re-read page that follow the resume point, in the page's order.

    By id when the item is on the page; otherwise (it moved off the first page) by the ordering field:
    the items strictly past its value.
    """
    for index, item in enumerate(items):
        if str(item.get("id")) == resume.after:
            return items[index + 1 :]
    if resume.key is None:
        return items
    key = _ordered(resume.key)

    def past(item: dict[str, Any]) -> bool:
        value = _ordered(item.get(field))
        return value < key if descending else value > key

    return [item for item in items if past(item)]


def _ordered(value: Any) -> tuple[int, Any]:
    """A value of an ordering field made comparable: timestamps as instants (PostHog writes microseconds
    only when not zero, so their text does not sort), anything else as text after them."""
    if isinstance(value, str):
        try:
            return (0, to_instant(value).timestamp())
        except ValueError:
            return (1, value)
    return (1, str(value))
