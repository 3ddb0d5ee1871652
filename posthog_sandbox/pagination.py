"""DRF's two page styles (docs/posthog-api.md, "Pagination"): limit/offset with `count`, and opaque-cursor pages without it."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from .errors import not_found


def replace_query(url: str, **params: Any) -> str:
    """Set (value not None) or remove (value None) query parameters of an absolute URL."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += [(k, str(v)) for k, v in params.items() if v is not None]
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def _positive_int(value: str | None, default: int) -> int:
    try:
        number = int(value) if value is not None else default
    except ValueError:
        return default
    return number if number > 0 else default


def page_window(query: Any, default_limit: int) -> tuple[int, int]:
    """The `(limit, offset)` a limit/offset request asks for."""
    limit = _positive_int(query.get("limit"), default_limit)
    try:
        offset = max(0, int(query.get("offset", 0)))
    except ValueError:
        offset = 0
    return limit, offset


def limit_offset(items: list[Any], url: str, query: Any, default_limit: int) -> dict[str, Any]:
    limit, offset = page_window(query, default_limit)
    return limit_offset_page(len(items), items[offset : offset + limit], url, limit, offset)


def limit_offset_page(count: int, page: list[Any], url: str, limit: int, offset: int) -> dict[str, Any]:
    """The envelope around one page that the caller already cut out of `count` items."""
    next_url = replace_query(url, limit=limit, offset=offset + limit) if offset + limit < count else None
    if offset <= 0:
        previous = None
    elif offset - limit <= 0:
        previous = replace_query(url, limit=limit, offset=None)
    else:
        previous = replace_query(url, limit=limit, offset=offset - limit)
    return {"count": count, "next": next_url, "previous": previous, "results": page}


def _encode(position: list[Any], reverse: bool) -> str:
    return base64.b64encode(json.dumps({"p": position, "r": int(reverse)}).encode()).decode()


def _decode(cursor: str) -> tuple[list[Any], bool]:
    try:
        data = json.loads(base64.b64decode(cursor.encode(), validate=True))
        return list(data["p"]), bool(data["r"])
    except Exception:
        raise not_found("Invalid cursor") from None


def cursor_page(
    items: list[Any], key: Callable[[Any], list[Any]], url: str, cursor: str | None, page_size: int
) -> dict[str, Any]:
    """`items` are already in display order; `key` gives each item's position (sort key + id), unique.

    A forward cursor returns the items after its position; a reverse one the page before it.
    """
    keys = [key(item) for item in items]
    if cursor is None:
        start = 0
    else:
        position, reverse = _decode(cursor)
        index = _index_of(keys, position)
        if reverse:
            end = index
            start = max(0, end - page_size)
            page = items[start:end]
            return _envelope(items, keys, page, start, end, url)
        start = index + 1
    end = min(len(items), start + page_size)
    return _envelope(items, keys, items[start:end], start, end, url)


def _index_of(keys: list[list[Any]], position: list[Any]) -> int:
    """Index of the item at `position`, or where it would be (items may have been added or removed)."""
    if position in keys:
        return keys.index(position)
    for index, key in enumerate(keys):
        if _after(key, position, keys):
            return index - 1 if index else -1
    return len(keys) - 1


def _after(key: list[Any], position: list[Any], keys: list[list[Any]]) -> bool:
    # Display order is monotonic in `key`; detect its direction from the first two distinct keys.
    descending = len(keys) > 1 and keys[0] > keys[-1]
    return key < position if descending else key > position


def _envelope(
    items: list[Any], keys: list[list[Any]], page: list[Any], start: int, end: int, url: str
) -> dict[str, Any]:
    next_url = replace_query(url, cursor=_encode(keys[end - 1], False)) if end < len(items) and page else None
    previous = replace_query(url, cursor=_encode(keys[start], True)) if start > 0 and page else None
    return {"next": next_url, "previous": previous, "results": page}
