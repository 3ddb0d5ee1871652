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

from tools import continuation
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
MAX_ROWS = 500  # the logs route's own cap on `limit`
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
    cursor: str | None = Field(None, max_length=500, description="omitted.call's cursor, unchanged.")

    @field_validator("after", "before")
    @classmethod
    def _real_times(cls, value: str | None) -> str | None:
        return check_filter(value)

    @field_validator("cursor")
    @classmethod
    def _our_cursor(cls, value: str | None) -> str | None:
        if value is not None:
            rows_before(value)  # a ValueError says what is wrong with it
        return value


# Log rows have no id and PostHog pages them by neither offset (the route's `limit` is also its query's
# limit) nor cursor: the rows after a cut are those up to the last shown row's timestamp, less the rows
# at that timestamp already shown (docs/posthog-api.md, "Logs and the Query API").
def logs_cursor(timestamp: str, shown_at_it: int) -> str:
    return continuation.encode_cursor({"t": timestamp, "s": shown_at_it})


def rows_before(cursor: str | None) -> tuple[datetime, int] | None:
    """(the timestamp rows continue at, inclusive; how many rows at it were shown) of a logs cursor."""
    data = continuation.decode_cursor(cursor, "t", "s")
    if data is None:
        if cursor:
            raise ValueError("cursor is not one this server gave out; pass omitted.call's cursor unchanged")
        return None
    moment = _moment(data["t"])
    if moment is None or not isinstance(data["s"], int) or data["s"] < 0:
        raise ValueError("cursor is not one this server gave out; pass omitted.call's cursor unchanged")
    return moment, data["s"]


def _at(row: Any) -> datetime | None:
    return _moment(row.get("timestamp")) if isinstance(row, dict) else None


def resume_logs(params: LogsParams, answer: Any, shown: int) -> dict[str, Any] | None:
    """The call continuing after the first `shown` rows of this answer (the declaration's `resume`)."""
    results = answer.get("results") if isinstance(answer, dict) else None
    if not isinstance(results, list) or shown >= len(results):
        return answer.get("omitted") if isinstance(answer, dict) else None
    return _after_row(params, results[:shown], f"{shown} of {len(results)} rows fit the answer budget")


def _after_row(params: LogsParams, shown: list[Any], reason: str) -> dict[str, Any] | None:
    last = _at(shown[-1]) if shown else None
    if last is None:
        return None
    at_last = sum(1 for row in shown if _at(row) == last)
    earlier = rows_before(params.cursor)
    if earlier is not None and earlier[0] == last:
        at_last += earlier[1]  # the rows at this moment skipped on the way here were shown before
    arguments = params.model_dump(mode="json", exclude_none=True)
    if params.after and params.after.startswith("-"):
        arguments["after"] = _utc(to_instant(params.after))  # the same window on every call that follows
    arguments["cursor"] = logs_cursor(_utc(last), at_last)
    return continuation.omitted("batch-export-logs", arguments, reason + "; older rows may follow")


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
    resumed = rows_before(params.cursor)
    skip = 0
    if resumed is not None:
        # Up to the last row shown, inclusive (the route's `before` is exclusive), less those shown.
        through = resumed[0] + timedelta(microseconds=1)
        before = min(before, through) if before else through
        skip = resumed[1]
    # The rows already shown at the resume moment are read again and dropped: ask for that many more.
    limit = min(MAX_ROWS, (params.limit or DEFAULT_LIMIT) + skip)
    if limit <= skip:
        raise NotPossible(
            f"{skip} log rows share one timestamp here, more than PostHog reads in one request ({MAX_ROWS}); "
            "narrow the call with level or search instead of following this cursor."
        )
    query = {k: v for k, v in request.query.items() if k not in ("level", "after", "before", "limit", "cursor")}
    query["limit"] = limit
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
        # The Query API's `<=` takes the last row's moment as it is.
        until = resumed[0] if resumed is not None and before == resumed[0] + timedelta(microseconds=1) else before
        answer = await _logs_through_query_api(upstream, params, after, until, refusal, limit)
    else:
        shaped = _compact(page)
        if not isinstance(shaped, dict):
            return shaped
        answer = {
            **{k: v for k, v in shaped.items() if k not in ("next", "previous", "count")},
            "source": "logs_route",
        }
    rows = answer.get("results")
    if not isinstance(rows, list):
        return answer
    read = len(rows)
    if resumed is not None:
        rows = _without_shown(rows, resumed)
    answer["results"] = rows[: params.limit or DEFAULT_LIMIT]
    rows = answer["results"]
    if read >= limit and rows:
        more = _after_row(params, rows, f"the newest {len(rows)} rows shown")
        if more is not None:
            answer["omitted"] = more
    return answer


def _without_shown(rows: list[Any], resumed: tuple[datetime, int]) -> list[Any]:
    """The rows less the first `resumed[1]` at the resume moment (newest first, so they lead)."""
    moment, skip = resumed
    kept = []
    for row in rows:
        if skip and _at(row) == moment:
            skip -= 1
            continue
        kept.append(row)
    return kept


async def _logs_through_query_api(
    upstream: Upstream,
    params: LogsParams,
    after: datetime | None,
    before: datetime | None,
    refusal: UpstreamError,
    limit: int,
) -> dict[str, Any]:
    hogql = logs_hogql(
        str(params.batch_export_id),
        levels=list(params.level) if params.level else None,
        search=params.search,
        after=after,
        before=before,
        limit=limit,
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
        resume=resume_logs,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
]
