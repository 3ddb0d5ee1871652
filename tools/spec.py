"""The declaration type of the catalog.

A tool is data: what PostHog route it maps to, which scope it needs, how a client
should treat it (annotations), what it accepts (a pydantic model, whose JSON Schema
becomes the tool's inputSchema) and what it returns. `server/` turns declarations
into MCP tools and HTTP calls; nothing here knows about MCP or httpx.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol
from urllib.parse import parse_qs, quote, urlsplit

from pydantic import BaseModel

READ = "batch_export:read"
WRITE = "batch_export:write"

HttpMethod = Literal["GET", "POST", "PATCH", "DELETE"]


class Upstream(Protocol):
    """What a tool's own function may ask of PostHog: one request, relative to the project.

    `path` is relative to `/api/<route>/<project_id>/`; path segments are already
    inserted and escaped by the caller through `path_for`. Returns the decoded JSON
    body (None for an empty body) or raises the server's upstream error.
    """

    async def request(
        self,
        method: HttpMethod,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any: ...


class NotPossible(Exception):
    """The call cannot succeed as asked (known from live state before any write); the message
    says why and what would work. No confirmation is offered for it and nothing is written."""


@dataclass(frozen=True)
class Preview:
    """What a person is shown before a write, built from live state.

    `summary` is one or two sentences; `details` is a small, secret-free dict;
    `version` identifies the target's state (a confirmation is only valid while
    it is unchanged); `confirm_name`, when set, is what the user must type.
    """

    summary: str
    details: dict[str, Any]
    version: str | None = None
    target_id: str | None = None
    confirm_name: str | None = None


PreviewFn = Callable[[Upstream, BaseModel], Awaitable[Preview]]
HandlerFn = Callable[[Upstream, BaseModel], Awaitable[Any]]

_PLACEHOLDER = re.compile(r"\{(\w+)\}")


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


def path_for(template: str, **values: Any) -> str:
    """Fill a path template, escaping each value so it stays inside its own segment."""
    return template.format(**{k: quote(str(v), safe="") for k, v in values.items()})


@dataclass(frozen=True)
class ToolSpec:
    """One MCP tool, declared once.

    Parameters named in `path` fill its placeholders; those in `query` go to the query
    string, with `fixed_query` added; the rest go to the JSON body (for GET, to the
    query string). `handler` replaces the plain request where a tool needs more than
    one call; `shape` trims a response for the model's context; `preview` describes a
    write before it happens (guarded tools must have one).
    """

    name: str
    title: str
    description: str
    method: HttpMethod
    path: str
    scope: str
    params: type[BaseModel]
    output: type[BaseModel]
    read_only: bool
    destructive: bool
    idempotent: bool
    open_world: bool = False
    guarded: bool | None = None
    query: tuple[str, ...] = ()
    fixed_query: Mapping[str, str] | None = None
    shape: Callable[[Any], Any] | None = None
    preview: PreviewFn | None = None
    handler: HandlerFn | None = None
    deprecated: bool = False
    ui_resource: str | None = None
    """A `ui://` app a host may render the result in (the MCP Apps extension); the result stays
    complete as text for hosts without it."""

    @property
    def is_guarded(self) -> bool:
        return (not self.read_only) if self.guarded is None else self.guarded

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(_PLACEHOLDER.findall(self.path))
