"""The declaration type of the catalog: what a tool is, as data.

A tool says which PostHog route it maps to, which scope it needs, how a client should
treat it (annotations), what it accepts (a pydantic model, whose JSON Schema becomes the
tool's inputSchema) and what it returns. `tools/request.py` turns a declaration and its
validated parameters into the request; `server/` turns declarations into MCP tools and
sends the requests. Nothing here knows about MCP or httpx.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from tools.params import Params
from tools.upstream import HttpMethod, Request, Upstream

READ = "batch_export:read"
WRITE = "batch_export:write"


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


# A plan never holds more writes than this: a bigger job is several plans (docs/guard.md, "Plans").
MAX_PLAN_WRITES = 100


@dataclass(frozen=True)
class PlannedWrite:
    """One write of a plan: what it changes, how a person reads it, and the state it was planned against.

    `action` says what the write does, as JSON without any secret (the tool builds the request from
    it and the call's arguments); `version` is the target's state when planned, read again just
    before the write, which is skipped if it moved.
    """

    target: str
    label: str
    version: str
    action: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"target": self.target, "label": self.label, "version": self.version, "action": self.action}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> PlannedWrite:
        return cls(str(value["target"]), str(value["label"]), str(value["version"]), dict(value["action"]))


@dataclass(frozen=True)
class Plan:
    """Several writes behind one confirmation: the preview is the plan.

    `summary` is one or two sentences; `details` is what the person reads (every write, compactly,
    and what the plan will not do now and why), secret-free and within the answer budget; `writes`
    are at most MAX_PLAN_WRITES, applied in order.
    """

    summary: str
    details: dict[str, Any]
    writes: tuple[PlannedWrite, ...]


@dataclass(frozen=True)
class Applied:
    """What happened to the writes of a confirmed plan, in order: what each write started, which were
    skipped (their target moved since the preview) or refused, and which were not sent, with why."""

    started: list[tuple[PlannedWrite, dict[str, Any]]]
    skipped: list[tuple[PlannedWrite, str]]
    failed: list[tuple[PlannedWrite, str]]
    not_sent: list[tuple[PlannedWrite, str]]


# Parameters are typed Any here: each tool's functions take its own Params subclass, and a
# Callable over the base class would not accept them (parameters are contravariant).
PreviewFn = Callable[[Upstream, Any], Awaitable[Preview]]
HandlerFn = Callable[[Upstream, Any, Request], Awaitable[Any]]
# (parameters, the shaped answer, how many of its `results` are shown) -> the `omitted` note that
# continues after the last one shown (tools/continuation.py), or None when nothing follows.
ResumeFn = Callable[[Any, Any, int], dict[str, Any] | None]


@dataclass(frozen=True)
class PlanSteps:
    """How a tool writes in fleets: the guard asks for the plan, confirms it once, then per write
    re-checks the target (`recheck` answers its version now, None when it is gone; it sees what
    the plan's earlier writes started) and sends it (`write` answers what it started); `receipt`
    turns what happened into the answer, with the call that plans what is left."""

    make: Callable[[Upstream, Any], Awaitable[Plan]]
    recheck: Callable[[Upstream, Any, PlannedWrite, Applied], Awaitable[str | None]]
    write: Callable[[Upstream, Any, PlannedWrite], Awaitable[dict[str, Any]]]
    receipt: Callable[[Any, Plan, Applied], dict[str, Any]]
    applies: Callable[[Any], bool] | None = None
    """For a tool that also writes once (its `preview`): whether these arguments ask for a plan."""

    def asked(self, params: Any) -> bool:
        return self.applies is None or self.applies(params)


_PLACEHOLDER = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class ToolSpec:
    """One MCP tool, declared once; the declaration decides the request (`tools/request.py`).

    Parameters named in `path` fill its placeholders; those in `query` go to the query
    string, with `fixed_query` added. For POST and PATCH the remaining parameters are the
    JSON body; for GET and DELETE they are not sent (they are for the handler). `handler`
    receives the built request and amends it where a tool needs more than the plain
    request; `shape` trims a response for the model's context; `preview` describes a
    write before it happens, `plan` several (guarded tools must have one of them). A list
    tool's `resume` names the call that continues after any number of its results, so the
    result shaper can cut a page to the answer budget without losing what it cut
    (tools/continuation.py).
    """

    name: str
    title: str
    description: str
    method: HttpMethod
    path: str
    scope: str
    params: type[Params]
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
    plan: PlanSteps | None = None
    """A guarded tool writes either once (`preview`) or as a plan of several writes (`plan`)."""
    handler: HandlerFn | None = None
    resume: ResumeFn | None = None
    deprecated: bool = False
    ui_resource: str | None = None
    """A `ui://` app a host may render the result in (the MCP Apps extension); the result stays
    complete as text for hosts without it."""
    max_requests: int | None = None
    """At most this many PostHog requests in one call (an answer that makes several). Past it the server
    sends nothing more for the call (`tools.upstream.OverBudget`); the answer returns what it has and the
    call that goes on, reading what is left with `tools.upstream.requests_left`. None: no cap of its own."""

    @property
    def is_guarded(self) -> bool:
        return (not self.read_only) if self.guarded is None else self.guarded

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(_PLACEHOLDER.findall(self.path))
