"""Runs of a batch export: list, read, retry and cancel."""

from __future__ import annotations

import dataclasses
from typing import Any
from uuid import UUID

from pydantic import Field, field_validator, model_validator

from tools.declaration import READ, WRITE, NotPossible, Preview, ToolSpec
from tools.exports import export_summary, read_export
from tools.models import BackfillStarted, Cancelled, Run, RunPage
from tools.paging import CursorList, cursor_of
from tools.params import Params, RunOrdering, RunParams, RunStatus
from tools.request import build_request
from tools.times import TIME_FILTER, check_filter, utc_filter
from tools.upstream import Request, Upstream, path_for
from tools.versions import export_version, newest_id, status_version

RUNS_PATH = "batch_exports/{batch_export_id}/runs/"
RUN_PATH = RUNS_PATH + "{run_id}/"
BACKFILLS_PATH = "batch_exports/{batch_export_id}/backfills/"

# PostHog filters single-run lookups by the list's 7-day default window too, so a run
# older than a week would be "not found" (docs/posthog-api.md, section "Runs"). An explicit
# early `after` lifts the window for retrieve, retry and cancel alike.
WHOLE_HISTORY = {"after": "2000-01-01T00:00:00Z"}


class RunsListParams(Params):
    batch_export_id: UUID
    limit: int | None = Field(None, ge=1, le=100, description="Runs per page (default 20).")
    status: list[RunStatus] | None = Field(None, max_length=10, description="Only runs in these statuses.")
    ordering: RunOrdering | None = Field(None, description="Sort order (default -created_at).")
    after: str | None = Field(None, pattern=TIME_FILTER, description="Created since: ISO date/time or -7d, -24h.")
    before: str | None = Field(None, pattern=TIME_FILTER, description="Created until (same formats).")
    start: str | None = Field(None, pattern=TIME_FILTER, description="Interval start from (interval ordering).")
    end: str | None = Field(None, pattern=TIME_FILTER, description="Interval end until (interval ordering).")
    cursor: str | None = Field(None, max_length=2000, description="omitted.call's cursor, unchanged.")

    @field_validator("after", "before", "start", "end")
    @classmethod
    def _explicit_utc(cls, value: str | None) -> str | None:
        """Sent as UTC with its offset: PostHog reads one without in the project's time zone."""
        if value is None:
            return None
        check_filter(value)
        return utc_filter(value)

    @field_validator("cursor")
    @classmethod
    def _bare_cursor(cls, value: str | None) -> str | None:
        return cursor_of(value) if value else value

    @model_validator(mode="after")
    def _interval_filters_need_interval_order(self) -> RunsListParams:
        if (self.start or self.end) and self.ordering in ("created_at", "-created_at"):
            raise ValueError(
                "start/end filter by data interval and only apply with ordering data_interval_start or "
                "-data_interval_start; drop ordering, or use after/before to filter by creation time"
            )
        return self


_NOISE = ("batch_export", "batch_export_on_demand", "cursor")


def compact_run(run: Any) -> Any:
    """A run without empty fields or the export id the caller already knows."""
    if not isinstance(run, dict):
        return run
    return {k: v for k, v in run.items() if v is not None and k not in _NOISE}


def run_ordering(params: RunsListParams) -> tuple[str, bool]:
    """The field runs are listed by, and whether newest first (PostHog's default: -created_at)."""
    ordering = params.ordering or ("-data_interval_start" if params.start or params.end else "-created_at")
    return ordering.lstrip("-"), ordering.startswith("-")


RUNS = CursorList("batch-export-runs-list", "runs", run_ordering, compact_run)


async def list_runs(upstream: Upstream, params: RunsListParams, request: Request) -> Any:
    """At most `limit` runs (ours, not PostHog's: its page holds 100), continuing exactly after the last
    one shown (tools/paging.py `CursorList`)."""
    if (params.start or params.end) and params.ordering is None:
        # PostHog ignores start/end under its default ordering.
        request = dataclasses.replace(request, query={**request.query, "ordering": "-data_interval_start"})
    return await RUNS.page(upstream, request, params, params.limit or 20)


async def read_run(upstream: Upstream, params: RunParams) -> dict[str, Any]:
    """The run as batch-export-run-get reads it, whatever its age."""
    run: dict[str, Any] = await upstream.send(build_request(GET_RUN, params))
    return run


def _run_summary(run: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "status", "data_interval_start", "data_interval_end", "latest_error", "backfill")
    return {k: run.get(k) for k in keys if run.get(k) is not None}


async def preview_retry(upstream: Upstream, params: RunParams) -> Preview:
    run = await read_run(upstream, params)
    summary = (
        f"Retry the {run.get('status')} run for {run.get('data_interval_start')} - {run.get('data_interval_end')}: "
        "PostHog starts a one-interval backfill that creates a new run; the original run is kept."
    )
    # A retry re-exports with the export's current destination and schedule: bind to the export's
    # version as well, so a destination changed after the preview refuses the retry (as backfills do).
    export = await read_export(upstream, params)
    # Retrying leaves the run as it was and adds a backfill: bind to the newest backfill too.
    backfills = path_for(BACKFILLS_PATH, batch_export_id=params.batch_export_id)
    version = f"{status_version(run)}|{export_version(export)}|{await newest_id(upstream, backfills)}"
    details = {"export": export_summary(export), "run": _run_summary(run)}
    return Preview(summary=summary, details=details, version=version, target_id=str(params.run_id))


def _retry_started(answer: Any) -> Any:
    if isinstance(answer, dict):
        return {
            **answer,
            "note": "backfill_id is PostHog's workflow id, not a backfill row id: follow the new run for "
            "the same interval with batch-export-runs-list.",
        }
    return answer


async def preview_cancel(upstream: Upstream, params: RunParams) -> Preview:
    run = await read_run(upstream, params)
    status = run.get("status")
    if status not in ("Running", "Starting"):
        raise NotPossible(f"The run is {status}; PostHog cancels only Starting or Running runs.")
    summary = f"Cancel the {status} run for {run.get('data_interval_start')} - {run.get('data_interval_end')}."
    details = {"batch_export_id": str(params.batch_export_id), "run": _run_summary(run)}
    return Preview(summary=summary, details=details, version=status_version(run), target_id=str(params.run_id))


GET_RUN = ToolSpec(
    name="batch-export-run-get",
    title="Get a run",
    description="Read one run: status, data interval, record counts and latest error (any age).",
    method="GET",
    path=RUN_PATH,
    scope=READ,
    params=RunParams,
    output=Run,
    fixed_query=WHOLE_HISTORY,
    read_only=True,
    destructive=False,
    idempotent=True,
)

TOOLS = [
    ToolSpec(
        name="batch-export-runs-list",
        title="List runs",
        description="List a batch export's runs, newest first; by default those created in the last 7 days (after=-30d widens).",
        method="GET",
        path=RUNS_PATH,
        scope=READ,
        params=RunsListParams,
        output=RunPage,
        query=("status", "ordering", "after", "before", "start", "end", "cursor"),
        handler=list_runs,
        resume=RUNS.resume,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    GET_RUN,
    ToolSpec(
        name="batch-export-run-retry",
        title="Retry a run",
        description="Re-export a run's data interval: PostHog starts a backfill that creates a new run.",
        method="POST",
        path=RUN_PATH + "retry/",
        scope=WRITE,
        params=RunParams,
        output=BackfillStarted,
        fixed_query=WHOLE_HISTORY,
        shape=_retry_started,
        preview=preview_retry,
        read_only=False,
        destructive=False,
        idempotent=False,
    ),
    ToolSpec(
        name="batch-export-run-cancel",
        title="Cancel a run",
        description="Cancel a Starting or Running run.",
        method="POST",
        path=RUN_PATH + "cancel/",
        scope=WRITE,
        params=RunParams,
        output=Cancelled,
        fixed_query=WHOLE_HISTORY,
        preview=preview_cancel,
        read_only=False,
        destructive=True,
        idempotent=True,
    ),
]
