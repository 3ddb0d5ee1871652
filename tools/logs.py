"""Log rows of a batch export, optionally narrowed to one run."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import Field, field_validator

from tools.declaration import READ, ToolSpec, Upstream
from tools.models import LogPage
from tools.params import LogLevel, Params, RunParams
from tools.request import Request
from tools.runs import read_run
from tools.times import TIME_FILTER, check_filter, to_instant

LOGS_PATH = "batch_exports/{batch_export_id}/logs/"
# Workers log a moment before a run row is created and after it is marked finished.
RUN_WINDOW_SLACK = timedelta(minutes=2)


class LogsParams(Params):
    batch_export_id: UUID = Field(description="Batch export id (UUID).")
    run_id: UUID | None = Field(None, description="Only logs written while this run was in progress.")
    level: list[LogLevel] | None = Field(None, max_length=5, description="Only these levels, e.g. [ERROR, WARNING].")
    search: str | None = Field(None, max_length=200, description="Case-insensitive text to find in messages.")
    after: str | None = Field(None, pattern=TIME_FILTER, description="Rows after: ISO date/time or -24h, -7d.")
    before: str | None = Field(None, pattern=TIME_FILTER, description="Rows before (same formats).")
    limit: int | None = Field(None, ge=1, le=500, description="Max rows, newest first (default 50).")

    @field_validator("after", "before")
    @classmethod
    def _real_times(cls, value: str | None) -> str | None:
        return check_filter(value)


def _compact(page: Any) -> Any:
    """Rows without log_source_id: it is the export id the caller asked for, on every row."""
    if isinstance(page, dict) and isinstance(page.get("results"), list):
        rows = [
            {k: v for k, v in r.items() if k != "log_source_id"} if isinstance(r, dict) else r for r in page["results"]
        ]
        return {**page, "results": rows}
    return page


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return to_instant(value)
    except ValueError:
        return None


async def read_logs(upstream: Upstream, params: LogsParams, request: Request) -> Any:
    """PostHog's own runs/{id}/logs/ route is broken (docs/posthog-api.md, section "Logs and the
    Query API"): narrow the export's logs to the run's lifetime instead."""
    after = to_instant(params.after) if params.after else None
    before = to_instant(params.before) if params.before else None
    if params.run_id is not None:
        run = await read_run(
            upstream,
            RunParams(project_id=params.project_id, batch_export_id=params.batch_export_id, run_id=params.run_id),
        )
        started, finished = _moment(run.get("created_at")), _moment(run.get("finished_at"))
        if started is not None:
            start = started - RUN_WINDOW_SLACK
            after = max(after, start) if after else start
        if finished is not None:
            end = finished + RUN_WINDOW_SLACK
            before = min(before, end) if before else end
    query = {k: v for k, v in request.query.items() if k not in ("level", "after", "before")}
    if params.level:
        # One value works on every PostHog; the newer API takes several comma-separated.
        query["level"] = ",".join(params.level)
    if after:
        query["after"] = after.isoformat()
    if before:
        query["before"] = before.isoformat()
    return _compact(await upstream.send(dataclasses.replace(request, query=query)))


TOOLS = [
    ToolSpec(
        name="batch-export-logs",
        title="Read batch export logs",
        description="Read a batch export's log rows, newest first; give run_id to see one run's logs.",
        method="GET",
        path=LOGS_PATH,
        scope=READ,
        params=LogsParams,
        output=LogPage,
        query=("level", "search", "after", "before", "limit"),
        handler=read_logs,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
]
