"""Log rows of a batch export, optionally narrowed to one run.

PostHog serves them on two routes (docs/posthog-api.md, section "Logs and the Query API"): the
export's logs/ route, which current PostHog may refuse to every personal API key, and the Query
API over the HogQL table batch_export_log_entries (scope query:read). The tool uses the first and,
where PostHog refuses it for the key, the second; the answer says which.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import Field, field_validator

from tools.declaration import READ, NotPossible, ToolSpec
from tools.hogql import contains_pattern, literal
from tools.models import LogPage
from tools.params import LogLevel, Params, RunParams
from tools.runs import read_run
from tools.times import TIME_FILTER, check_filter, to_instant
from tools.upstream import Request, Upstream, UpstreamError

LOGS_PATH = "batch_exports/{batch_export_id}/logs/"
QUERY_PATH = "query/"
QUERY_SCOPE = "query:read"
LOG_TABLE = "batch_export_log_entries"
_LOG_COLUMNS = ("timestamp", "level", "message", "instance_id")
DEFAULT_LIMIT = 50
# Workers log a moment before a run row is created and after it is marked finished.
RUN_WINDOW_SLACK = timedelta(minutes=2)


class LogsParams(Params):
    batch_export_id: UUID
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


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def logs_hogql(
    export_id: str,
    *,
    levels: list[str] | None = None,
    search: str | None = None,
    after: datetime | None = None,
    before: datetime | None = None,
    limit: int = DEFAULT_LIMIT,
) -> str:
    """The HogQL that asks the Query API for what the logs route would answer, newest first."""
    where = ["log_source = 'batch_export'", f"log_source_id = {literal(export_id)}"]
    if levels:
        where.append(f"level IN ({', '.join(literal(level) for level in levels)})")
    if search:
        where.append(f"message ILIKE {literal(contains_pattern(search))}")
    if after:
        where.append(f"timestamp >= {literal(_utc(after))}")
    if before:
        where.append(f"timestamp <= {literal(_utc(before))}")
    return (
        f"SELECT {', '.join(_LOG_COLUMNS)} FROM {LOG_TABLE} WHERE {' AND '.join(where)} "
        f"ORDER BY timestamp DESC LIMIT {int(limit)}"
    )


def _query_rows(answer: Any) -> list[dict[str, Any]]:
    """The Query API's rows (arrays under `columns`) as the logs route's objects."""
    if not isinstance(answer, dict) or not isinstance(answer.get("results"), list):
        raise NotPossible("PostHog's Query API answered without rows; read the logs in PostHog's UI instead.")
    columns = [str(c) for c in answer.get("columns") or _LOG_COLUMNS]
    rows = []
    for values in answer["results"]:
        if isinstance(values, list):
            row = dict(zip(columns, values, strict=False))
            row["timestamp"] = str(row.get("timestamp"))
            rows.append({k: v for k, v in row.items() if v is not None})
    return rows


def _refused_for_key(error: UpstreamError) -> bool:
    return error.status == 403


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
        query["after"] = _utc(after)
    if before:
        query["before"] = _utc(before)
    try:
        page = await upstream.send(dataclasses.replace(request, query=query))
    except UpstreamError as refusal:
        if not _refused_for_key(refusal):
            raise
        return await _logs_through_query_api(upstream, params, after, before, refusal)
    shaped = _compact(page)
    return {**shaped, "source": "logs_route"} if isinstance(shaped, dict) else shaped


async def _logs_through_query_api(
    upstream: Upstream, params: LogsParams, after: datetime | None, before: datetime | None, refusal: UpstreamError
) -> dict[str, Any]:
    hogql = logs_hogql(
        str(params.batch_export_id),
        levels=list(params.level) if params.level else None,
        search=params.search,
        after=after,
        before=before,
        limit=params.limit or DEFAULT_LIMIT,
    )
    try:
        answer = await upstream.request("POST", QUERY_PATH, json={"query": {"kind": "HogQLQuery", "query": hogql}})
    except UpstreamError as second:
        if second.status is None or second.status >= 500:
            raise
        if not _refused_for_key(second):
            # Older PostHog has no Query API for these rows: the route's refusal is the answer.
            raise NotPossible(
                f"{refusal} Its Query API could not serve them either (HTTP {second.status}: {second.detail})."
            ) from None
        raise NotPossible(
            f"{refusal} Its Query API, which serves the same rows, is refused too ({second.detail}). Give the "
            f"personal API key the scope {QUERY_SCOPE} in PostHog (Settings > Personal API keys), then call "
            "batch-export-logs again: it reads the same lines through the Query API."
        ) from None
    rows = _query_rows(answer)
    return {
        "results": rows,
        "count": len(rows),
        "source": "query_api",
        "note": f"PostHog refused the logs route for this key ({refusal.detail}); these lines come from "
        f"its Query API ({LOG_TABLE}).",
    }


TOOLS = [
    ToolSpec(
        name="batch-export-logs",
        title="Read batch export logs",
        description=(
            "Read a batch export's log rows, newest first; give run_id to see one run's logs. Where PostHog "
            f"refuses its logs route to the key, the rows come from its Query API (needs scope {QUERY_SCOPE})."
        ),
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
