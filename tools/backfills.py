"""Backfills: re-export a past range of a batch export, interval by interval."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from tools.declaration import READ, WRITE, NotPossible, Preview, ToolSpec
from tools.exports import EXPORT_PATH, INTERVAL_WORDS, export_summary, is_newer_posthog, read_export
from tools.models import Backfill, BackfillPage, BackfillStarted, Cancelled
from tools.paging import CursorList, cursor_of
from tools.params import BackfillOrdering, BackfillParams, Params
from tools.request import build_request
from tools.times import in_utc, to_instant
from tools.upstream import Request, Upstream, path_for
from tools.versions import export_version, newest_id, status_version

BACKFILLS_PATH = "batch_exports/{batch_export_id}/backfills/"
BACKFILL_PATH = BACKFILLS_PATH + "{backfill_id}/"
INTERVAL_SECONDS = {"hour": 3600, "day": 86400, "week": 604800, "every 5 minutes": 300, "every 15 minutes": 900}
BOUND = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2})?)?$"
_BOUND_HELP = "YYYY-MM-DD or ISO datetime (UTC if no offset); whole days for daily/weekly exports"


class BackfillCreateParams(Params):
    batch_export_id: UUID
    start_at: str = Field(pattern=BOUND, description=f"Range start, inclusive: {_BOUND_HELP}.")
    end_at: str = Field(pattern=BOUND, description="Range end, exclusive, not in the future (same formats).")

    @model_validator(mode="after")
    def _start_before_end(self) -> BackfillCreateParams:
        bounds = []
        for name in ("start_at", "end_at"):
            try:
                bounds.append(in_utc(getattr(self, name)))
            except ValueError as exc:
                raise ValueError(f"{name} is not a valid date or datetime ({exc}); use e.g. 2026-11-25") from None
        start, end = bounds
        if start >= end:
            raise ValueError(
                f"start_at ({self.start_at}) must be before end_at ({self.end_at}); end_at is exclusive, "
                "so one day is start_at 2026-11-25, end_at 2026-11-26"
            )
        return self


def effective_bounds(export: dict[str, Any], start_at: str, end_at: str) -> tuple[str, str]:
    """The bounds in the form this export's PostHog accepts, or NotPossible saying what would work.

    Newer PostHog takes only dates for daily and weekly exports (a day starts at the export's
    offset_hour in its timezone); every other case takes an ISO datetime with an offset.
    """
    if is_newer_posthog(export) and export.get("interval") in ("day", "week"):
        zone = ZoneInfo(str(export.get("timezone") or "UTC"))
        hour = int(export.get("offset_hour") or 0)
        out = []
        for name, value in (("start_at", start_at), ("end_at", end_at)):
            if len(value) == 10:
                out.append(value)
                continue
            local = to_instant(value).astimezone(zone)
            if (local.hour, local.minute, local.second, local.microsecond) != (hour, 0, 0, 0):
                raise NotPossible(
                    f"{name} {value} is not the start of a day for this {INTERVAL_WORDS[export['interval']]} export "
                    f"(days start at {hour:02d}:00 {zone.key}); give dates such as {local.date().isoformat()}."
                )
            out.append(local.date().isoformat())
        return out[0], out[1]
    return to_instant(start_at).isoformat(), to_instant(end_at).isoformat()


def _run_count(export: dict[str, Any], start_at: str, end_at: str) -> int | None:
    seconds = INTERVAL_SECONDS.get(str(export.get("interval")))
    if not seconds:
        return None
    return int((to_instant(end_at) - to_instant(start_at)).total_seconds() // seconds)


async def preview_backfill(upstream: Upstream, params: BackfillCreateParams) -> Preview:
    export = await read_export(upstream, params)
    start, end = effective_bounds(export, params.start_at, params.end_at)
    runs = _run_count(export, start, end)
    interval = export.get("interval")
    summary = f"Backfill export {export.get('name')!r} ({interval}) from {start} to {end}"
    summary += f": {runs} run(s), one per whole interval." if runs is not None else "."
    if to_instant(end) > datetime.now(UTC):
        summary += " Note: end_at is later than this server's clock; PostHog refuses an end in the future."
    backfills = path_for(BACKFILLS_PATH, batch_export_id=params.batch_export_id)
    return Preview(
        summary=summary,
        details={"export": export_summary(export), "start_at": start, "end_at": end, "runs": runs},
        version=f"{export_version(export)}|{await newest_id(upstream, backfills)}",
        target_id=str(params.batch_export_id),
    )


async def create_backfill(upstream: Upstream, params: BackfillCreateParams, request: Request) -> Any:
    """Send the bounds in the form the export's PostHog accepts (whole days for some exports)."""
    export = await read_export(upstream, params)
    start, end = effective_bounds(export, params.start_at, params.end_at)
    return await upstream.send(dataclasses.replace(request, body={"start_at": start, "end_at": end}))


class BackfillsListParams(Params):
    batch_export_id: UUID
    ordering: BackfillOrdering | None = Field(None, description="Sort order (default -created_at).")
    cursor: str | None = Field(None, max_length=2000, description="omitted.call's cursor, unchanged.")

    @field_validator("cursor")
    @classmethod
    def _bare_cursor(cls, value: str | None) -> str | None:
        return cursor_of(value) if value else value


def backfill_ordering(params: BackfillsListParams) -> tuple[str, bool]:
    """The field backfills are listed by, and whether newest first (PostHog's default: -created_at)."""
    ordering = params.ordering or "-created_at"
    return ordering.lstrip("-"), ordering.startswith("-")


BACKFILLS = CursorList("batch-export-backfills-list", "backfills", backfill_ordering)
BACKFILLS_PAGE = 50  # PostHog's fixed page size for backfills (docs/posthog-api.md, "Pagination")


async def list_backfills(upstream: Upstream, params: BackfillsListParams, request: Request) -> Any:
    """A page of backfills continuing exactly after the last one shown, however the answer is cut."""
    return await BACKFILLS.page(upstream, request, params, BACKFILLS_PAGE)


async def preview_backfill_cancel(upstream: Upstream, params: BackfillParams) -> Preview:
    backfill = await upstream.send(build_request(GET_BACKFILL, params))
    status = backfill.get("status")
    if status not in ("Running", "Starting"):
        raise NotPossible(f"The backfill is {status}; PostHog cancels only Starting or Running backfills.")
    summary = (
        f"Cancel the {status} backfill {backfill.get('start_at')} - {backfill.get('end_at')} and its unfinished runs."
    )
    details = {k: backfill.get(k) for k in ("id", "status", "start_at", "end_at", "progress")}
    return Preview(
        summary=summary,
        details={"batch_export_id": str(params.batch_export_id), "backfill": details},
        version=status_version(backfill),
        target_id=str(params.backfill_id),
    )


GET_BACKFILL = ToolSpec(
    name="batch-export-backfill-get",
    title="Get a backfill",
    description="Read one backfill: status, range, progress and record count.",
    method="GET",
    path=BACKFILL_PATH,
    scope=READ,
    params=BackfillParams,
    output=Backfill,
    read_only=True,
    destructive=False,
    idempotent=True,
)


def _backfill_tool(name: str, title: str, description: str, path: str, *, deprecated: bool = False) -> ToolSpec:
    """The two routes that start a backfill (the newer one and older PostHog's) differ only in path."""
    return ToolSpec(
        name=name,
        title=title,
        description=description,
        method="POST",
        path=path,
        scope=WRITE,
        params=BackfillCreateParams,
        output=BackfillStarted,
        preview=preview_backfill,
        handler=create_backfill,
        read_only=False,
        destructive=False,
        idempotent=False,
        deprecated=deprecated,
    )


TOOLS = [
    ToolSpec(
        name="batch-export-backfills-list",
        title="List backfills",
        description="List a batch export's backfills, newest first, with status and progress.",
        method="GET",
        path=BACKFILLS_PATH,
        scope=READ,
        params=BackfillsListParams,
        output=BackfillPage,
        query=("ordering", "cursor"),
        handler=list_backfills,
        resume=BACKFILLS.resume,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    GET_BACKFILL,
    _backfill_tool(
        "batch-export-backfill-create",
        "Backfill a range",
        "Re-export a past range of a batch export; PostHog creates one run per whole interval.",
        BACKFILLS_PATH,
    ),
    ToolSpec(
        name="batch-export-backfill-cancel",
        title="Cancel a backfill",
        description="Cancel a Starting or Running backfill and its unfinished runs.",
        method="POST",
        path=BACKFILL_PATH + "cancel/",
        scope=WRITE,
        params=BackfillParams,
        output=Cancelled,
        preview=preview_backfill_cancel,
        read_only=False,
        destructive=True,
        idempotent=True,
    ),
    _backfill_tool(
        "batch-export-backfill-legacy",
        "Backfill a range (deprecated route)",
        "Deprecated: older PostHog's backfill route; use batch-export-backfill-create instead.",
        EXPORT_PATH + "backfill/",
        deprecated=True,
    ),
]
