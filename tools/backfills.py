"""Backfills: re-export a past range of a batch export, interval by interval."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Any
from uuid import UUID

from pydantic import Field, model_validator

from tools.exports import EXPORT_PATH, export_summary, read_export
from tools.models import Backfill, BackfillOrdering, BackfillPage, BackfillParams, BackfillStarted, Cancelled, Params
from tools.spec import READ, WRITE, Preview, ToolSpec, Upstream, newest_id, path_for

BACKFILL_PATH = "batch_exports/{batch_export_id}/backfills/{backfill_id}/"
INTERVAL_SECONDS = {"hour": 3600, "day": 86400, "week": 604800, "every 5 minutes": 300, "every 15 minutes": 900}
BOUND = r"^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:?\d{2}))?$"
_BOUND_HELP = "YYYY-MM-DD for daily/weekly exports on current PostHog, else ISO datetime with offset"


def parse_bound(value: str) -> datetime:
    """A backfill bound as an aware datetime (a bare date is midnight UTC)."""
    if len(value) == 10:
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=timezone.utc)
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


class BackfillCreateParams(Params):
    batch_export_id: UUID = Field(description="Batch export id (UUID).")
    start_at: str = Field(pattern=BOUND, description=f"Range start, inclusive: {_BOUND_HELP}.")
    end_at: str = Field(pattern=BOUND, description=f"Range end, exclusive, not in the future: {_BOUND_HELP}.")

    @model_validator(mode="after")
    def _start_before_end(self) -> BackfillCreateParams:
        try:
            start, end = parse_bound(self.start_at), parse_bound(self.end_at)
        except ValueError as exc:
            raise ValueError(f"start_at/end_at is not a valid date or datetime: {exc}") from None
        if start >= end:
            raise ValueError(f"start_at ({self.start_at}) must be before end_at ({self.end_at}).")
        return self


class BackfillsListParams(Params):
    batch_export_id: UUID = Field(description="Batch export id (UUID).")
    ordering: BackfillOrdering | None = Field(None, description="Sort order (default -created_at).")
    cursor: str | None = Field(None, max_length=500, description="Page cursor from the previous page's next URL.")


async def preview_backfill(upstream: Upstream, params: BackfillCreateParams) -> Preview:
    export = await read_export(upstream, params.batch_export_id)
    interval = export.get("interval")
    seconds = INTERVAL_SECONDS.get(str(interval))
    span = (parse_bound(params.end_at) - parse_bound(params.start_at)).total_seconds()
    runs = int(span // seconds) if seconds else None
    summary = f"Backfill export {export.get('name')!r} ({interval}) from {params.start_at} to {params.end_at}"
    summary += f": {runs} run(s), one per whole interval." if runs is not None else "."
    backfills = path_for("batch_exports/{batch_export_id}/backfills/", batch_export_id=params.batch_export_id)
    return Preview(
        summary=summary,
        details={"export": export_summary(export), "start_at": params.start_at, "end_at": params.end_at, "runs": runs},
        version=f"{export.get('last_updated_at')}|{await newest_id(upstream, backfills)}",
        target_id=str(params.batch_export_id),
    )


async def preview_backfill_cancel(upstream: Upstream, params: BackfillParams) -> Preview:
    path = path_for(BACKFILL_PATH, batch_export_id=params.batch_export_id, backfill_id=params.backfill_id)
    backfill = await upstream.request("GET", path)
    status = backfill.get("status")
    if status in ("Running", "Starting"):
        summary = f"Cancel the {status} backfill {backfill.get('start_at')} - {backfill.get('end_at')} and its unfinished runs."
    else:
        summary = f"The backfill is {status}; PostHog only cancels Starting or Running backfills, so this will be refused."
    details = {k: backfill.get(k) for k in ("id", "status", "start_at", "end_at", "progress")}
    version = f"{status}@{backfill.get('last_updated_at') or ''}"
    return Preview(summary=summary, details={"backfill": details}, version=version, target_id=str(params.backfill_id))


_CREATE = dict(
    scope=WRITE,
    params=BackfillCreateParams,
    output=BackfillStarted,
    preview=preview_backfill,
    method="POST",
    read_only=False,
    destructive=False,
    idempotent=False,
)

TOOLS = [
    ToolSpec(
        name="batch-export-backfills-list",
        title="List backfills",
        description="List a batch export's backfills, newest first, with status and progress.",
        method="GET",
        path="batch_exports/{batch_export_id}/backfills/",
        scope=READ,
        params=BackfillsListParams,
        output=BackfillPage,
        query=("ordering", "cursor"),
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    ToolSpec(
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
    ),
    ToolSpec(
        name="batch-export-backfill-create",
        title="Backfill a range",
        description="Re-export a past range of a batch export; PostHog creates one run per whole interval.",
        path="batch_exports/{batch_export_id}/backfills/",
        **_CREATE,
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
    ToolSpec(
        name="batch-export-backfill-legacy",
        title="Backfill a range (deprecated route)",
        description="Deprecated: older PostHog's backfill route; use batch-export-backfill-create instead.",
        path=EXPORT_PATH + "backfill/",
        deprecated=True,
        **_CREATE,
    ),
]
