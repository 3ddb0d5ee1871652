"""Runs of a batch export: list, read, retry and cancel."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from tools.models import Cancelled, BackfillStarted, Params, Run, RunOrdering, RunPage, RunParams, RunStatus
from tools.spec import READ, WRITE, Preview, ToolSpec, Upstream, newest_id, path_for
from uuid import UUID

RUN_PATH = "batch_exports/{batch_export_id}/runs/{run_id}/"

# PostHog filters single-run lookups by the list's 7-day default window too, so a run
# older than a week would be "not found" (reference 9.10). An explicit early `after`
# lifts the window for retrieve, retry and cancel alike.
WHOLE_HISTORY = {"after": "2000-01-01T00:00:00Z"}

TIME_FILTER = r"^(-\d{1,4}[hdwmy]|\d{4}-\d\d-\d\d[T ]?[0-9:.]*(Z|[+-][0-9:]+)?)$"


class RunsListParams(Params):
    batch_export_id: UUID = Field(description="Batch export id (UUID).")
    status: list[RunStatus] | None = Field(None, max_length=10, description="Only runs in these statuses.")
    ordering: RunOrdering | None = Field(None, description="Sort order (default -created_at).")
    after: str | None = Field(None, pattern=TIME_FILTER, description="Created since: ISO date/time or -7d, -24h.")
    before: str | None = Field(None, pattern=TIME_FILTER, description="Created until (same formats).")
    start: str | None = Field(None, pattern=TIME_FILTER, description="Interval start from (interval ordering).")
    end: str | None = Field(None, pattern=TIME_FILTER, description="Interval end until (interval ordering).")
    cursor: str | None = Field(None, max_length=500, description="Page cursor from the previous page's next URL.")


async def read_run(upstream: Upstream, params: RunParams) -> dict[str, Any]:
    path = path_for(RUN_PATH, batch_export_id=params.batch_export_id, run_id=params.run_id)
    return await upstream.request("GET", path, query=WHOLE_HISTORY)


def _run_summary(run: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "status", "data_interval_start", "data_interval_end", "latest_error", "backfill")
    return {k: run.get(k) for k in keys if run.get(k) is not None}


def _version(run: dict[str, Any]) -> str:
    return f"{run.get('status')}@{run.get('last_updated_at') or run.get('finished_at') or ''}"


async def preview_retry(upstream: Upstream, params: RunParams) -> Preview:
    run = await read_run(upstream, params)
    summary = (
        f"Retry the {run.get('status')} run for {run.get('data_interval_start')} - {run.get('data_interval_end')}: "
        "PostHog starts a one-interval backfill that creates a new run; the original run is kept."
    )
    # Retrying leaves the run as it was and adds a backfill: bind to the newest backfill too.
    backfills = path_for("batch_exports/{batch_export_id}/backfills/", batch_export_id=params.batch_export_id)
    version = f"{_version(run)}|{await newest_id(upstream, backfills)}"
    return Preview(summary=summary, details={"run": _run_summary(run)}, version=version, target_id=str(params.run_id))


async def preview_cancel(upstream: Upstream, params: RunParams) -> Preview:
    run = await read_run(upstream, params)
    status = run.get("status")
    if status in ("Running", "Starting"):
        summary = f"Cancel the {status} run for {run.get('data_interval_start')} - {run.get('data_interval_end')}."
    else:
        summary = f"The run is {status}; PostHog only cancels Starting or Running runs, so this will be refused."
    return Preview(summary=summary, details={"run": _run_summary(run)}, version=_version(run), target_id=str(params.run_id))


TOOLS = [
    ToolSpec(
        name="batch-export-runs-list",
        title="List runs of a batch export",
        description="List a batch export's runs, newest first; by default only runs created in the last 7 days (widen with after=-30d).",
        method="GET",
        path="batch_exports/{batch_export_id}/runs/",
        scope=READ,
        params=RunsListParams,
        output=RunPage,
        query=("status", "ordering", "after", "before", "start", "end", "cursor"),
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    ToolSpec(
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
    ),
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
