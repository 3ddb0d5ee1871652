"""batch-export-errors: log lines across a project (or one export, or one run) in one call.

The Query API reads every export's log lines at once (HogQL table batch_export_log_entries,
docs/posthog-api.md "Logs and the Query API"); where it is refused (no query:read scope, or an
older PostHog), each export's logs route is read instead, and the answer says which source it used.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tools.answers import progress
from tools.answers.health import all_exports
from tools.answers.intervals import iso, moment, short_error
from tools.declaration import READ, ToolSpec
from tools.hogql import contains_pattern, literal
from tools.logs import RUN_WINDOW_SLACK
from tools.params import LogLevel, Params, RunParams
from tools.runs import read_run
from tools.times import TIME_FILTER, check_filter, to_instant
from tools.upstream import Upstream, UpstreamError, path_for

QUERY_PATH = "query/"
LOGS_PATH = "batch_exports/{batch_export_id}/logs/"
TABLE = "batch_export_log_entries"
_LINES_PER_EXPORT = 3  # newest distinct messages shown per export; counts cover them all


class ErrorsParams(Params):
    batch_export_id: UUID | None = Field(None, description="Only this export.")
    run_id: UUID | None = Field(None, description="Only this run's lines (with batch_export_id).")
    level: list[LogLevel] = Field(["ERROR"], min_length=1, max_length=5, description="Levels.")
    search: str | None = Field(None, min_length=1, max_length=200, description="Text to find (any case).")
    after: str = Field("-24h", pattern=TIME_FILTER, description="Since: ISO date/time or -24h.")
    before: str | None = Field(None, pattern=TIME_FILTER, description="Until (default now).")
    limit: int = Field(200, ge=1, le=1000, description="Most lines read, newest first.")

    @field_validator("after", "before")
    @classmethod
    def _real_times(cls, value: str | None) -> str | None:
        return check_filter(value)

    @model_validator(mode="after")
    def _ordered(self) -> ErrorsParams:
        if self.run_id is not None and self.batch_export_id is None:
            raise ValueError("run_id needs the batch_export_id of its export")
        if self.before and to_instant(self.after) >= to_instant(self.before):
            raise ValueError(f"after ({self.after}) must be before before ({self.before})")
        return self


class ErrorsAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    source: str
    total: int
    exports: list[dict[str, Any]]


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def where_clause(params: ErrorsParams, after: datetime, before: datetime | None) -> str:
    conditions = [f"timestamp >= {literal(_when(after))}"]
    if before is not None:
        conditions.append(f"timestamp < {literal(_when(before))}")
    conditions += [
        "level IN (" + ", ".join(literal(level) for level in params.level) + ")",
    ]
    if params.batch_export_id is not None:
        conditions.append(f"log_source_id = {literal(str(params.batch_export_id))}")
    if params.search:
        conditions.append(f"message ILIKE {literal(contains_pattern(params.search))}")
    return " AND ".join(conditions)


async def _query(upstream: Upstream, hogql: str) -> list[dict[str, Any]]:
    answer = await upstream.request("POST", QUERY_PATH, json={"query": {"kind": "HogQLQuery", "query": hogql}})
    columns = list((answer or {}).get("columns") or [])
    return [dict(zip(columns, row, strict=False)) for row in (answer or {}).get("results") or []]


async def _from_query_api(upstream: Upstream, params: ErrorsParams, after: datetime, before: datetime | None) -> Any:
    where = where_clause(params, after, before)
    counted = await _query(upstream, f"SELECT log_source_id, count() FROM {TABLE} WHERE {where} GROUP BY log_source_id")
    counts = {
        str(row.get("log_source_id")): int(next(v for k, v in row.items() if k != "log_source_id")) for row in counted
    }
    await progress.report(1, 2, "counted the lines")
    lines = await _query(
        upstream,
        f"SELECT log_source_id, instance_id, timestamp, level, message FROM {TABLE} WHERE {where} "
        f"ORDER BY timestamp DESC LIMIT {params.limit}",
    )
    await progress.report(2, 2, "read the newest lines")
    return counts, lines


async def _from_logs_route(
    upstream: Upstream, params: ErrorsParams, after: datetime, before: datetime | None, exports: list[dict[str, Any]]
) -> Any:
    chosen = [e for e in exports if params.batch_export_id is None or e.get("id") == str(params.batch_export_id)]
    counts: dict[str, int] = {}
    lines: list[dict[str, Any]] = []
    for index, export in enumerate(chosen):
        query: dict[str, Any] = {
            "level": ",".join(params.level),
            "after": iso(after),
            "limit": min(params.limit, 500),  # the logs route's own cap
        }
        if params.search:
            query["search"] = params.search
        if before is not None:
            query["before"] = iso(before)
        page = await upstream.request("GET", path_for(LOGS_PATH, batch_export_id=export.get("id")), query=query)
        rows = [r for r in (page or {}).get("results") or [] if isinstance(r, dict)]
        if rows:
            counts[str(export.get("id"))] = len(rows)
            lines += [{**r, "log_source_id": export.get("id")} for r in rows]
        await progress.report(index + 1, len(chosen), f"read the logs of {index + 1} of {len(chosen)} exports")
    lines.sort(key=lambda r: str(r.get("timestamp")), reverse=True)
    return counts, lines[: params.limit]


def _refused(error: Exception) -> bool:
    return isinstance(error, UpstreamError) and error.status in (403, 404, 405)


async def errors(upstream: Upstream, params: ErrorsParams, request: Any = None) -> dict[str, Any]:
    now = datetime.now(UTC)
    after = to_instant(params.after, now)
    # No upper bound unless asked: PostHog's clock, not this server's, says what "now" is.
    before = to_instant(params.before, now) if params.before else None
    if params.run_id is not None and params.batch_export_id is not None:
        # Log lines carry the workflow's id, not the run's: a run's lines are those of its lifetime
        # (as batch-export-logs reads them, docs/posthog-api.md "Logs and the Query API").
        run = await read_run(
            upstream,
            RunParams(project_id=params.project_id, batch_export_id=params.batch_export_id, run_id=params.run_id),
        )
        started, finished = moment(run.get("created_at")), moment(run.get("finished_at"))
        if started is not None:
            after = max(after, started - RUN_WINDOW_SLACK)
        if finished is not None:
            before = min(before, finished + RUN_WINDOW_SLACK) if before else finished + RUN_WINDOW_SLACK
    exports = await all_exports(upstream)
    try:
        counts, lines = await _from_query_api(upstream, params, after, before)
        source = "Query API (batch_export_log_entries)"
    except Exception as error:
        if not _refused(error):
            raise
        counts, lines = await _from_logs_route(upstream, params, after, before, exports)
        why = "the key lacks scope query:read" if getattr(error, "status", None) == 403 else "it is not served here"
        source = f"each export's logs route (the Query API was refused: {why})"
    names = {str(e.get("id")): e.get("name") for e in exports}
    groups: dict[str, dict[str, Any]] = {}
    for line in lines:
        export_id = str(line.get("log_source_id"))
        group = groups.setdefault(
            export_id,
            {
                "batch_export_id": export_id,
                "name": names.get(export_id),
                "count": counts.get(export_id, 0),
                "lines": [],
            },
        )
        message = short_error(line.get("message"), 300) or ""
        same = next((item for item in group["lines"] if item["message"] == message), None)
        if same is not None:
            same["repeats"] = same.get("repeats", 1) + 1
            continue
        if len(group["lines"]) < _LINES_PER_EXPORT:
            group["lines"].append({"timestamp": line.get("timestamp"), "level": line.get("level"), "message": message})
    for export_id, count in counts.items():
        if export_id not in groups:
            groups[export_id] = {"batch_export_id": export_id, "name": names.get(export_id), "count": count}
    ordered = sorted(groups.values(), key=lambda g: -g["count"])
    answer: dict[str, Any] = {
        "source": source,
        "window": {"after": iso(after)} | ({"before": iso(before)} if before else {}),
        "levels": params.level,
        "total": sum(counts.values()),
        "exports": [{k: v for k, v in g.items() if v is not None} for g in ordered],
    }
    if len(lines) >= params.limit:
        answer["note"] = f"Lines shown come from the newest {params.limit}; counts cover every line in the window."
    return answer


TOOLS = [
    ToolSpec(
        name="batch-export-errors",
        title="Search export logs",
        description="Log lines across the project, an export or a run (default: ERROR, last 24 h), grouped by export.",
        method="POST",
        path=QUERY_PATH,
        scope=READ,
        params=ErrorsParams,
        output=ErrorsAnswer,
        handler=errors,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
]
