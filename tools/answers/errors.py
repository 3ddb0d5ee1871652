"""batch-export-errors: log lines across a project (or one export, or one run) in one call, within 16 KB.

Lines are grouped by export and, inside each export and across the project, by distinct message: the
message with its times, ids and record counts taken out, so the hourly "failed for range X - Y: E" of one
cause is one message. Counts are true counts of every line in the window, never of the lines read.

Two sources (docs/posthog-api.md, "Logs and the Query API"):
- The Query API (scope query:read) answers the whole project at once: a count per export and message,
  then the newest lines (their moments and runs). Two requests.
- Each export's logs route, where the Query API is refused: at most ROUTE_REQUESTS requests a call,
  every line of each export it reads (so its counts are true too), exports in PostHog's list order; the
  answer names how many it read and the call that goes on with the next, and that query:read answers the
  whole project in one call.

The window is pinned on the first call (relative times become moments), so the calls that continue a
cut answer see the same lines. A run's lines are those of its lifetime, whatever its age.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tools import continuation
from tools.answers import progress
from tools.answers.health import all_exports
from tools.answers.intervals import FAILED, iso, moment, short_error
from tools.declaration import READ, ToolSpec
from tools.hogql import contains_pattern, literal
from tools.logs import QUERY_SCOPE, RUN_WINDOW_SLACK
from tools.params import UNLISTED, LogLevel, Params, RunParams
from tools.runs import read_run
from tools.times import TIME_FILTER, check_filter, to_instant
from tools.upstream import Upstream, UpstreamError, path_for

QUERY_PATH = "query/"
LOGS_PATH = "batch_exports/{batch_export_id}/logs/"
EXPORTS_PATH = "batch_exports/"
TABLE = "batch_export_log_entries"
DEFAULT_AFTER = "-24h"
ROUTE_REQUESTS = 40  # logs-route requests one call may make: far below PostHog's 480 a minute
ROUTE_PAGE = 500  # the logs route's own cap on `limit`
MESSAGES_SHOWN = 3  # distinct messages shown per export
MESSAGE_CHARS = 200
QUERY_ROWS = 50_000  # the most rows one HogQL answer carries

# What makes two lines of one cause differ: times, ids and record counts.
_VARYING = re.compile(
    r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?"
    r"|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
    r"|\b\d+(?= records)",
    re.I,
)
_STAND_IN = "…"


class ErrorsParams(Params):
    batch_export_id: UUID | None = Field(None, description="Only this export.")
    run_id: UUID | None = Field(None, description="Only this run's lines, any age.")
    level: list[LogLevel] = Field(["ERROR"], min_length=1, max_length=5, description="Levels.")
    search: str | None = Field(None, min_length=1, max_length=200, description="Text to find (any case).")
    after: str | None = Field(
        None, pattern=TIME_FILTER, description="Since: ISO or -24h (default; a run's: its start)."
    )
    before: str | None = Field(None, pattern=TIME_FILTER, description="Until (default now).")
    limit: int = Field(200, ge=1, le=1000, description="Newest lines read for their moments; counts cover all.")
    cursor: str | None = Field(None, max_length=2000, json_schema_extra=UNLISTED)  # omitted.call's, unchanged

    @field_validator("after", "before")
    @classmethod
    def _real_times(cls, value: str | None) -> str | None:
        return check_filter(value)

    @field_validator("cursor")
    @classmethod
    def _our_cursor(cls, value: str | None) -> str | None:
        if value is not None:
            _read_cursor(value)
        return value

    @model_validator(mode="after")
    def _ordered(self) -> ErrorsParams:
        if self.run_id is not None and self.batch_export_id is None:
            raise ValueError("run_id needs the batch_export_id of its export")
        if self.before and to_instant(self.after or DEFAULT_AFTER) >= to_instant(self.before):
            raise ValueError(f"after ({self.after or DEFAULT_AFTER}) must be before before ({self.before})")
        return self


class ErrorsAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    source: str
    total: int
    exports: list[dict[str, Any]]


def _read_cursor(cursor: str | None) -> dict[str, Any]:
    """Where a continued call starts: `g` export groups already shown and, through the logs route, `e` the
    export after which this call's exports start (the same ones again while their groups are shown)."""
    data = continuation.decode_cursor(cursor)
    if data is None:
        if cursor:
            raise ValueError("cursor is not one this server gave out; pass omitted.call's cursor unchanged")
        return {}
    if not (
        isinstance(data.get("g", 0), int) and isinstance(data.get("o", 0), int) and isinstance(data.get("e", ""), str)
    ):
        raise ValueError("cursor is not one this server gave out; pass omitted.call's cursor unchanged")
    return data


def distinct_message(text: Any) -> str:
    """A line's message with what varies between lines of one cause (times, ids, counts) taken out."""
    line = short_error(text, 10_000) or ""
    return _VARYING.sub(_STAND_IN, line)


def _when(moment: datetime) -> str:
    """A moment as HogQL compares it with `timestamp`: with its offset, or it is read in the project's zone."""
    return iso(moment)


def where_clause(params: ErrorsParams, after: datetime, before: datetime) -> str:
    conditions = [f"timestamp >= {literal(_when(after))}", f"timestamp < {literal(_when(before))}"]
    conditions.append("level IN (" + ", ".join(literal(level) for level in params.level) + ")")
    if params.batch_export_id is not None:
        conditions.append(f"log_source_id = {literal(str(params.batch_export_id))}")
    if params.search:
        conditions.append(f"message ILIKE {literal(contains_pattern(params.search))}")
    return " AND ".join(conditions)


async def _query(upstream: Upstream, hogql: str) -> list[dict[str, Any]]:
    answer = await upstream.request("POST", QUERY_PATH, json={"query": {"kind": "HogQLQuery", "query": hogql}})
    columns = list((answer or {}).get("columns") or [])
    return [dict(zip(columns, row, strict=False)) for row in (answer or {}).get("results") or []]


def _counted(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {str(row.get("log_source_id")): int(next(v for k, v in row.items() if k != "log_source_id")) for row in rows}


class Tally:
    """What the lines read say, per export: true counts, counts per distinct message, the newest line."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self.messages: dict[str, dict[str, int]] = {}
        self.newest: dict[str, dict[str, Any]] = {}
        self.exact_messages = True  # every line was counted (False: PostHog's answer had its most rows)
        self.at_least: set[str] = set()  # exports with more lines than one call reads (logs route)

    def add_line(self, export_id: str, line: dict[str, Any]) -> None:
        message = distinct_message(line.get("message"))
        per_export = self.messages.setdefault(export_id, {})
        per_export[message] = per_export.get(message, 0) + 1
        held = self.newest.get(export_id)
        if held is None or str(line.get("timestamp")) > str(held.get("timestamp")):
            self.newest[export_id] = line


async def _from_query_api(upstream: Upstream, params: ErrorsParams, after: datetime, before: datetime) -> Tally:
    """Every line's count by export and message (one request: true counts of every distinct message), then
    the newest lines for each export's newest moment (a second)."""
    tally = Tally()
    where = where_clause(params, after, before)
    counted = await _query(
        upstream,
        f"SELECT log_source_id, message, count() FROM {TABLE} WHERE {where} "
        f"GROUP BY log_source_id, message LIMIT {QUERY_ROWS}",
    )
    for row in counted:
        export_id = str(row.get("log_source_id"))
        count = int(next(v for k, v in row.items() if k not in ("log_source_id", "message")))
        message = distinct_message(row.get("message"))
        tally.counts[export_id] = tally.counts.get(export_id, 0) + count
        per_export = tally.messages.setdefault(export_id, {})
        per_export[message] = per_export.get(message, 0) + count
    if len(counted) >= QUERY_ROWS:
        tally.exact_messages = False  # more different lines than one answer carries: counts are of those read
    await progress.report(1, 2, "counted the lines by export and message")
    lines = await _query(
        upstream,
        f"SELECT log_source_id, instance_id, timestamp, level, message FROM {TABLE} WHERE {where} "
        f"ORDER BY timestamp DESC LIMIT {params.limit}",
    )
    for line in lines:
        export_id = str(line.get("log_source_id"))
        held = tally.newest.get(export_id)
        if held is None or str(line.get("timestamp")) > str(held.get("timestamp")):
            tally.newest[export_id] = line
    await progress.report(2, 2, "read the newest lines")
    return tally


async def _export_lines(
    upstream: Upstream, params: ErrorsParams, export_id: str, after: datetime, before: datetime, budget: list[int]
) -> tuple[list[dict[str, Any]], bool]:
    """Every line of one export in the window through its logs route, newest first, paging back by
    time; and whether that is all of them (False when the call's request budget ran out first)."""
    lines: list[dict[str, Any]] = []
    until = before
    seen_at_until = 0
    while True:
        if budget[0] <= 0:
            return lines, False
        budget[0] -= 1
        query: dict[str, Any] = {
            "level": ",".join(params.level),
            "after": iso(after),
            "before": iso(until),
            "limit": ROUTE_PAGE,
        }
        if params.search:
            query["search"] = params.search
        page = await upstream.request("GET", path_for(LOGS_PATH, batch_export_id=export_id), query=query)
        rows = [r for r in (page or {}).get("results") or [] if isinstance(r, dict)]
        lines += rows[seen_at_until:]
        if len(rows) < ROUTE_PAGE:
            return lines, True
        # A full page: go on from the oldest moment read, inclusive, less the rows at it already read.
        oldest = moment(rows[-1].get("timestamp"))
        if oldest is None:
            return lines, True
        # The page holds every row read at that moment (those read before lead it): skip them next time.
        seen_at_until = sum(1 for r in rows if moment(r.get("timestamp")) == oldest)
        if seen_at_until >= ROUTE_PAGE:
            return lines, True  # a page of rows at one instant: PostHog cannot page past them
        until = oldest + timedelta(microseconds=1)


def _ran_in(export: dict[str, Any], after: datetime) -> bool:
    """Whether the export may have log lines since `after`: lines come from its runs' workflows, so an
    export whose runs all finished before then (or that never ran) has none (its 10 newest runs say)."""
    runs = [r for r in export.get("latest_runs") or [] if isinstance(r, dict)]
    for run in runs:
        if run.get("status") not in FAILED and run.get("status") not in ("Completed", "Cancelled"):
            return True  # still running
        finished = moment(run.get("finished_at")) or moment(run.get("last_updated_at"))
        if finished is None or finished + RUN_WINDOW_SLACK >= after:
            return True
    return False


class RouteBatch:
    """The exports one call reads through the logs route: from list offset `offset` (the export `after_id`
    just before it, to notice a list that moved), within ROUTE_REQUESTS requests, in list order."""

    def __init__(self) -> None:
        self.tally = Tally()
        self.exports: dict[str, dict[str, Any]] = {}
        self.read: list[str] = []
        self.skipped = 0  # exports without a run in the window: no lines to read
        self.next_offset: int | None = None  # where the next call starts; None when every export is read
        self.next_after = ""
        self.total: int | None = None


async def _listed_from(upstream: Upstream, offset: int, after_id: str) -> tuple[list[dict[str, Any]], int]:
    """Exports from list offset `offset` on (one page), checked against the id just before them; when the
    list moved (an export created or deleted since), found again by that id."""
    start = max(0, offset - 1) if after_id else offset
    page = await upstream.request("GET", EXPORTS_PATH, query={"limit": 100, "offset": start})
    results = [e for e in (page or {}).get("results") or [] if isinstance(e, dict)]
    if not after_id:
        return results, offset
    ids = [str(e.get("id")) for e in results]
    if after_id in ids:
        index = ids.index(after_id)
        return results[index + 1 :], start + index + 1
    everything = await all_exports(upstream)
    ids = [str(e.get("id")) for e in everything]
    index = ids.index(after_id) + 1 if after_id in ids else 0  # the list moved more than a page: read whole
    return everything[index : index + 100], index


async def _from_logs_route(
    upstream: Upstream, params: ErrorsParams, after: datetime, before: datetime, position: dict[str, Any]
) -> RouteBatch:
    batch = RouteBatch()
    budget = [ROUTE_REQUESTS]
    if params.batch_export_id is not None:
        export_id = str(params.batch_export_id)
        lines, whole = await _export_lines(upstream, params, export_id, after, before, budget)
        _count(batch, export_id, lines, whole)
        batch.exports = await _names(upstream, {export_id})
        return batch
    offset, after_id = int(position.get("o", 0)), str(position.get("e", ""))
    while True:
        budget[0] -= 1  # the list page itself
        listed, offset = await _listed_from(upstream, offset, after_id)
        if not listed:
            return batch
        for export in listed:
            export_id = str(export.get("id"))
            batch.exports[export_id] = export
            if not _ran_in(export, after):
                batch.skipped += 1
            else:
                if budget[0] <= 0:
                    batch.next_offset, batch.next_after = offset, after_id
                    return batch
                lines, whole = await _export_lines(upstream, params, export_id, after, before, budget)
                if not whole and batch.read:
                    batch.next_offset, batch.next_after = offset, after_id  # read whole by the next call
                    return batch
                _count(batch, export_id, lines, whole)
                if not whole:
                    batch.next_offset, batch.next_after = offset + 1, export_id
                    return batch
            offset, after_id = offset + 1, export_id
            await progress.report(offset, None, f"read the logs of {len(batch.read)} exports")


def _count(batch: RouteBatch, export_id: str, lines: list[dict[str, Any]], whole: bool) -> None:
    batch.read.append(export_id)
    if not whole:
        # One export with more lines than a call reads: its newest are counted, and the answer says so.
        batch.tally.at_least.add(export_id)
    if lines:
        batch.tally.counts[export_id] = len(lines)
        for line in lines:
            batch.tally.add_line(export_id, line)


def _refused(error: Exception) -> bool:
    return isinstance(error, UpstreamError) and error.status in (403, 404, 405)


async def _window(upstream: Upstream, params: ErrorsParams, now: datetime) -> tuple[datetime, datetime, str | None]:
    """The window the call reads, pinned; a run's window is its lifetime whatever its age."""
    after = to_instant(params.after or DEFAULT_AFTER, now)
    before = to_instant(params.before, now) if params.before else now
    if params.run_id is None or params.batch_export_id is None:
        return after, before, None
    # Log lines carry the workflow's id, not the run's: a run's lines are those of its lifetime
    # (as batch-export-logs reads them, docs/posthog-api.md "Logs and the Query API").
    run = await read_run(
        upstream, RunParams(project_id=params.project_id, batch_export_id=params.batch_export_id, run_id=params.run_id)
    )
    started, finished = moment(run.get("created_at")), moment(run.get("finished_at"))
    if started is not None:
        after = started - RUN_WINDOW_SLACK if params.after is None else max(after, started - RUN_WINDOW_SLACK)
    if finished is not None:
        end = finished + RUN_WINDOW_SLACK
        before = min(before, end) if params.before else min(now, end)
    return after, before, str(run.get("status")) if run.get("status") else None


async def _names(upstream: Upstream, wanted: set[str]) -> dict[str, dict[str, Any]]:
    """The exports (name, latest runs) of the ids wanted, paging the list until every one is found."""
    found: dict[str, dict[str, Any]] = {}
    offset = 0
    while wanted - set(found):
        page = await upstream.request("GET", EXPORTS_PATH, query={"limit": 100, "offset": offset})
        results = [e for e in (page or {}).get("results") or [] if isinstance(e, dict)]
        found |= {str(e.get("id")): e for e in results}
        offset += len(results)
        if not results or not (page or {}).get("next"):
            break
    return found


def failed_run_near(export: dict[str, Any] | None, line: dict[str, Any] | None) -> str | None:
    """The id of the failed run (among the export's 10 newest) whose lifetime holds the line's moment:
    log lines name the workflow, not the run (docs/posthog-api.md, "Logs and the Query API")."""
    at = moment((line or {}).get("timestamp"))
    if export is None or at is None:
        return None
    for run in export.get("latest_runs") or []:
        if not isinstance(run, dict) or run.get("status") not in FAILED:
            continue
        started = moment(run.get("created_at"))
        finished = moment(run.get("finished_at")) or moment(run.get("last_updated_at"))
        if started and finished and started - RUN_WINDOW_SLACK <= at <= finished + RUN_WINDOW_SLACK:
            return str(run.get("id"))
    return None


def _numbered_messages(tally: Tally) -> dict[str, dict[str, Any]]:
    """Each distinct message once, numbered by lines (most first), with its lines and exports."""
    totals: dict[str, list[int]] = {}
    for per_export in tally.messages.values():
        for message, count in per_export.items():
            held = totals.setdefault(message, [0, 0])
            held[0] += count
            held[1] += 1
    ranked = sorted(totals.items(), key=lambda item: (-item[1][0], item[0]))
    return {
        m: {"no": index + 1, "message": short_error(m, MESSAGE_CHARS), "count": n, "exports": e}
        for index, (m, (n, e)) in enumerate(ranked)
    }


def _group(
    export_id: str, tally: Tally, export: dict[str, Any] | None, numbers: dict[str, dict[str, Any]], one: bool
) -> dict[str, Any]:
    """One export's lines: its count, lines per distinct message (by number), the newest line's time and
    the failed run it came from. Asked about one export, the newest line itself too."""
    count = tally.counts.get(export_id, 0)
    messages = sorted(tally.messages.get(export_id, {}).items(), key=lambda item: -item[1])[:MESSAGES_SHOWN]
    group: dict[str, Any] = {"batch_export_id": export_id, "name": (export or {}).get("name"), "count": count}
    if export_id in tally.at_least:
        group["count_is_at_least"] = True  # more lines than one call reads through the logs route
    group["by_message"] = {str(numbers[m]["no"]): n for m, n in messages}
    other = count - sum(n for _, n in messages)
    if other > 0:
        group["other_lines"] = other
    newest = tally.newest.get(export_id)
    if newest is not None:
        if one:
            group["newest"] = {
                "timestamp": str(newest.get("timestamp")),
                "level": newest.get("level"),
                "message": short_error(newest.get("message"), MESSAGE_CHARS * 2),
            }
        else:
            group["newest_at"] = str(newest.get("timestamp"))
        run_id = failed_run_near(export, newest)
        if run_id:
            group["failed_run_id"] = run_id
    return {k: v for k, v in group.items() if v not in (None, [], {})}


async def errors(upstream: Upstream, params: ErrorsParams, request: Any = None) -> dict[str, Any]:
    now = datetime.now(UTC)
    after, before, run_status = await _window(upstream, params, now)
    position = _read_cursor(params.cursor)
    # Every call that continues this one reads the same window.
    pinned = params.model_dump(mode="json", exclude_none=True) | {"after": iso(after), "before": iso(before)}
    pinned.pop("cursor", None)
    answer: dict[str, Any] = {"window": {"after": iso(after), "before": iso(before)}, "levels": params.level}
    if run_status:
        answer["run"] = {"run_id": str(params.run_id), "status": run_status}
    resume_at: dict[str, Any] | None = None
    try:
        tally = await _from_query_api(upstream, params, after, before)
        answer["source"] = f"Query API ({TABLE})"
        exports = await _names(upstream, set(tally.counts))
    except UpstreamError as error:
        if not _refused(error):
            raise
        batch = await _from_logs_route(upstream, params, after, before, position)
        tally, exports = batch.tally, batch.exports
        why = f"the key lacks scope {QUERY_SCOPE}" if error.status == 403 else "it is not served here"
        answer["source"] = f"each export's logs route (the Query API was refused: {why})"
        answer["exports_read"] = len(batch.read)
        if batch.skipped:
            answer["exports_without_runs_in_window"] = batch.skipped
        if batch.next_offset is not None:
            resume_at = {"o": batch.next_offset, "e": batch.next_after}
    ordered = sorted(tally.counts, key=lambda i: (-tally.counts[i], i))
    answer["total"] = sum(tally.counts.values())
    answer["exports_with_lines"] = len(ordered)
    numbers = _numbered_messages(tally)
    answer["messages"] = list(numbers.values())
    start = int(position.get("g", 0))
    one = params.batch_export_id is not None
    answer["exports"] = [_group(i, tally, exports.get(i), numbers, one) for i in ordered[start:]]
    if not tally.exact_messages:
        answer["note"] = (
            f"More than {QUERY_ROWS} different lines in the window: counts are of those PostHog answered with; "
            "narrow the window (after, before) or the levels for true counts."
        )
    return _fit(answer, pinned, position, start, resume_at)


def _fit(
    answer: dict[str, Any], pinned: dict[str, Any], position: dict[str, Any], start: int, resume_at: Any
) -> dict[str, Any]:
    """The answer within the budget, each cut said with the call that continues after it: every distinct
    message an export shown refers to, as many exports as fit (most lines first), then other messages
    while room is left; the exports whose logs are not read yet follow in the next call."""
    room = continuation.FIT - 1100  # the omitted note
    messages = answer["messages"]
    groups = answer["exports"]

    def shaped(prefix: Any) -> dict[str, Any]:
        used = {int(no) for g in prefix for no in g.get("by_message", {})}
        return {**answer, "exports": list(prefix), "messages": [m for m in messages if m["no"] in used]}

    shown = max(1, continuation.longest_fitting(groups, lambda prefix: continuation.size(shaped(prefix)) <= room))
    shown = min(shown, len(groups))
    fitted = shaped(groups[:shown])
    listed = {m["no"] for m in fitted["messages"]}
    for message in messages:  # the other messages, while they fit: most lines first
        if message["no"] not in listed and continuation.size(fitted) + continuation.size(message) < room:
            fitted["messages"].append(message)
    fitted["messages"].sort(key=lambda m: m["no"])
    if len(fitted["messages"]) < len(messages):
        fitted["messages_not_shown"] = len(messages) - len(fitted["messages"])
    answer = fitted
    batch = {k: position[k] for k in ("o", "e") if k in position}
    if shown < len(groups):
        reason = (
            f"exports {start + 1}-{start + shown} of the {start + len(groups)} with lines (most lines first) fit the "
            "answer budget; the call shows the next, in the same window"
        )
        if resume_at is not None:
            reason += ", then reads the exports whose logs are not read yet"
        cursor = continuation.encode_cursor(batch | {"g": start + shown})
        answer["omitted"] = continuation.omitted(
            "batch-export-errors", pinned | {"cursor": cursor}, reason, len(groups) - shown
        )
    elif resume_at is not None:
        answer["omitted"] = continuation.omitted(
            "batch-export-errors",
            pinned | {"cursor": continuation.encode_cursor(resume_at | {"g": 0})},
            f"the exports after the first {resume_at['o']} in PostHog's list are not read yet: without scope "
            f"{QUERY_SCOPE} each export's logs route is read, at most {ROUTE_REQUESTS} requests a call. The call "
            f"reads the next ones; a key with {QUERY_SCOPE} answers the whole project in one call",
        )
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
