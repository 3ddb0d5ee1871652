"""batch-export-health: how every export of a project is doing, in one call at any size, within 16 KB.

PostHog pages exports 100 at a time and embeds each export's 10 newest runs, so the state of 500 exports
costs 5 requests. The newest run of each data interval decides it (tools/answers/intervals.py). Each
export gets one state an operator can filter on:

- failing: its newest decided interval failed; billing: failed with FailedBilling (a billing limit, not
  the destination: retrying does not help); degraded: an older failure in view still stands;
- silent: its newest runs completed exporting 0 records while its own earlier runs exported records;
  never_exported: no run it completed ever exported a record; partial: runs completed while reporting
  failed records (where PostHog's runs carry `records_failed`);
- auto_paused: paused by PostHog itself (its activity log or its log line says so); paused: otherwise;
- healthy.

Where the 10 embedded runs cannot tell (a failure or a silence longer than them), the export's own runs
are read further back, one request each, only for the exports the answer shows, at most READ_BACKS a call
and READ_BACK_DAYS back; when that bound is met the answer says so (`failing_since_before`) instead of
guessing. Backfills in flight are found by their runs among the embedded ones (PostHog has no
project-wide backfills route, docs/posthog-api.md "Backfills"), and their progress read for at most
BACKFILL_READS exports. A cut says what it left out and the call that continues after it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tools import continuation
from tools.answers import progress
from tools.answers.intervals import RUNNING, cell_status, deciding_runs, grid, iso, moment, short_error
from tools.backfills import INTERVAL_SECONDS
from tools.declaration import READ, ToolSpec
from tools.destinations import DestinationType
from tools.hogql import literal
from tools.params import UNLISTED, Params
from tools.upstream import Upstream, UpstreamError, path_for

HealthState = Literal["attention", "failing", "billing", "silent", "paused", "auto_paused", "healthy", "all"]
STATE_ORDER = (
    "failing",
    "billing",
    "silent",
    "never_exported",
    "partial",
    "auto_paused",
    "degraded",
    "billing_gap",
    "paused",
    "healthy",
)
_SELECTS: dict[str, tuple[str, ...]] = {
    "attention": STATE_ORDER[:8],
    "failing": ("failing", "billing", "degraded"),
    "billing": ("billing", "billing_gap"),
    "silent": ("silent", "never_exported", "partial"),
    "paused": ("auto_paused", "paused"),
    "auto_paused": ("auto_paused",),
    "healthy": ("healthy",),
    "all": STATE_ORDER,
}
PAGE_SIZE = 100
MAX_PAGES = 200  # 20,000 exports: a bound on the loop, far past any real project
READ_BACKS = 150  # runs requests one call makes for failures and silences older than the embedded runs
READ_BACK_DAYS = 90
BACKFILL_READS = 10  # backfills lists read for progress in one call
SILENT_RUNS = 3  # completed runs in a row with 0 records before an export that exports records is silent
SILENT_EXPECTED = 30  # records the export's usual runs would have exported over the silent ones
ERROR_FULL = 240  # a latest error as kept for grouping; each export shows a shorter cut of it
ERROR_CUTS = (120, 80, 56, 40)  # tried in turn until the listed exports fit the budget
BILLING = "FailedBilling"
RUNS_PATH = "batch_exports/{batch_export_id}/runs/"
BACKFILLS_PATH = "batch_exports/{batch_export_id}/backfills/"
ACTIVITY_PATH = "activity_log/"
QUERY_PATH = "query/"
AUTO_PAUSE_LINE = "Batch export was automatically paused%"
HEALTH_VIEW = "ui://posthog-batch-exports/health.html"  # the health view a host with MCP Apps renders this in


class HealthParams(Params):
    state: HealthState = Field("attention", description="attention: all but paused/healthy.")
    destination_type: DestinationType | None = Field(None, description="Only this destination type.")
    name_contains: str | None = Field(None, min_length=1, max_length=200, description="Name contains (any case).")
    # Recent intervals per export, as cells: the health app asks for them (a model reads states).
    intervals: int = Field(0, ge=0, le=48, json_schema_extra=UNLISTED)
    offset: int = Field(0, ge=0, le=100_000, json_schema_extra=UNLISTED)  # omitted.call's, unchanged


class HealthAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    project_id: int
    counts: dict[str, int]
    exports: list[Any]


# ------------------------------------------------------------------------------- one export, from its runs


def _records(run: dict[str, Any], key: str) -> int | None:
    value = run.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _interval_step(export: dict[str, Any]) -> timedelta:
    return timedelta(seconds=INTERVAL_SECONDS.get(str(export.get("interval")), 3600))


def _intervals_between(export: dict[str, Any], first: datetime, last: datetime) -> int:
    """Data intervals from the one starting at `first` to the one starting at `last`, both counted
    (a daily export's day is an hour longer or shorter across a change of clocks: rounded)."""
    return max(1, round((last - first) / _interval_step(export)) + 1)


def assess(export: dict[str, Any]) -> dict[str, Any]:
    """One export's entry from its embedded runs: who it is, its state and, when it is not simply healthy,
    what is wrong since when. `_read_back` marks what the embedded runs could not tell."""
    destination = export.get("destination") or {}
    entry: dict[str, Any] = {
        "batch_export_id": export.get("id"),
        "name": export.get("name"),
        "destination_type": destination.get("type"),
        "interval": export.get("interval"),
    }
    embedded = [r for r in export.get("latest_runs") or [] if isinstance(r, dict)]
    decided = deciding_runs(embedded)
    newest_first = [decided[start] for start in sorted(decided, reverse=True)]
    finished = [r for r in newest_first if cell_status(r) in ("completed", "failed")]
    # The failures since the last success, whatever stopped them (the newest says which state it is).
    streak: list[dict[str, Any]] = []
    for run in finished:
        if cell_status(run) != "failed":
            break
        streak.append(run)
    failed = [r for r in finished if cell_status(r) == "failed"]
    billing = [r for r in failed if r.get("status") == BILLING]
    completed = [r for r in finished if cell_status(r) == "completed"]
    whole_history = len(embedded) < 10  # PostHog embeds 10: fewer is every run the export has
    if streak:
        entry["failing_since"] = streak[-1].get("data_interval_start")
        entry["consecutive_failures"] = len(streak)
        entry["failed_run_id"] = streak[0].get("id")
        if streak[-1] is finished[-1] and not whole_history:
            entry["_read_back"] = "failing"  # nothing else in view: the streak may be longer
    elif failed:
        entry["failed_run_id"] = failed[0].get("id")
    if billing:
        # PostHog checks its billing limit per project: these intervals exported nothing, and a retry fails
        # the same way until the limit is raised (docs/posthog-api.md, "Runs").
        entry["billing_failures"] = len(billing)
        entry["billing_since"] = billing[-1].get("data_interval_start")
    last_success = completed[0] if completed else None
    if last_success is not None and not streak:
        entry["last_success"] = last_success.get("data_interval_end")
    destination_failures = [r for r in failed if r.get("status") != BILLING]
    error = short_error(destination_failures[0].get("latest_error"), ERROR_FULL) if destination_failures else None
    if error:
        entry["latest_error"] = error
    _records_flags(entry, completed, whole_history)
    if export.get("paused"):
        entry["paused"] = True
        if export.get("last_paused_at"):
            entry["paused_at"] = export.get("last_paused_at")
    entry["state"] = entry["_assessed"] = _state(export, entry, streak, destination_failures)
    return entry


def _records_flags(entry: dict[str, Any], completed: list[dict[str, Any]], whole_history: bool) -> None:
    """Silences and failed records among the completed runs in view (newest first)."""
    zero_streak = []
    for run in completed:
        if _records(run, "records_completed") != 0:
            break
        zero_streak.append(run)
    earlier = [_records(r, "records_completed") for r in completed[len(zero_streak) :]]
    exporting = [n for n in earlier if n is not None]
    if len(zero_streak) >= SILENT_RUNS and exporting and unusual_silence(len(zero_streak), exporting):
        entry["zero_records_since"] = zero_streak[-1].get("data_interval_start")
        entry["zero_record_runs"] = len(zero_streak)
    elif zero_streak and len(zero_streak) == len(completed) and len(zero_streak) >= SILENT_RUNS:
        # Every completed run in view exported nothing: whether it ever did is further back.
        entry["zero_records_since"] = zero_streak[-1].get("data_interval_start")
        entry["zero_record_runs"] = len(zero_streak)
        entry["_read_back"] = "never" if whole_history else "silent"
    failed_records = [(r, _records(r, "records_failed")) for r in completed]
    failed_records = [(r, n) for r, n in failed_records if n]
    if failed_records:
        entry["records_failed"] = sum(n for _, n in failed_records if n)
        entry["records_failed_run_id"] = failed_records[0][0].get("id")


def unusual_silence(zero_runs: int, earlier: list[int]) -> bool:
    """Whether `zero_runs` runs in a row with 0 records are unusual for an export whose earlier runs
    exported `earlier` records: a quiet export (a few records a run) meets runs without any at night;
    one whose runs usually export records would have exported SILENT_EXPECTED or more by now."""
    if not earlier:
        return False
    usual = sum(earlier) / len(earlier)
    return sum(1 for n in earlier if n > 0) * 2 > len(earlier) and usual * zero_runs >= SILENT_EXPECTED


def _state(export: dict[str, Any], entry: dict[str, Any], streak: list[Any], destination_failures: list[Any]) -> str:
    """One state by precedence: what most needs a person first."""
    if export.get("paused"):
        return "paused"  # auto_paused once PostHog is asked who paused it
    if streak:
        return "billing" if streak[0].get("status") == BILLING else "failing"
    if entry.get("_read_back") == "never":
        return "never_exported"
    if "zero_records_since" in entry:
        return "silent"
    if entry.get("records_failed"):
        return "partial"
    if destination_failures:
        return "degraded"
    if entry.get("billing_failures"):
        return "billing_gap"  # intervals the billing limit left unexported still stand
    return "healthy"


def _now() -> datetime:
    return datetime.now(UTC)


# ------------------------------------------------------------------------------- reading further back


def _oldest_in_view(export: dict[str, Any]) -> datetime | None:
    starts = [moment(r.get("data_interval_start")) for r in export.get("latest_runs") or [] if isinstance(r, dict)]
    return min((s for s in starts if s is not None), default=None)


async def _completed_runs(
    upstream: Upstream,
    export: dict[str, Any],
    start: datetime,
    end: datetime,
    newest_first: bool = True,
    statuses: tuple[str, ...] = ("Completed",),
) -> tuple[list[dict[str, Any]], datetime | None]:
    """One page (100) of the export's completed runs with intervals inside [start, end], newest interval
    first (or oldest), and, when PostHog has more pages, the farthest interval start the page reached (an
    older PostHog, without the status filter, lists failed runs too)."""
    query: dict[str, Any] = {
        "ordering": "-data_interval_start" if newest_first else "data_interval_start",
        "status": list(statuses),
        "start": iso(start),
        "end": iso(end),
    }
    page = await upstream.request("GET", path_for(RUNS_PATH, batch_export_id=export.get("id")), query=query)
    listed = [r for r in (page or {}).get("results") or [] if isinstance(r, dict)]
    reached = None
    if (page or {}).get("next") and listed:
        starts = [m for m in (moment(r.get("data_interval_start")) for r in listed) if m]
        reached = (min if newest_first else max)(starts, default=None)
    return [r for r in listed if r.get("status") in statuses], reached


# A completed run's INFO line names its records (docs/posthog-api.md, "Runs"); a count that starts with 1-9 is
# not 0. The sandbox's HogQL has no NOT, so "not 0 records" is these nine patterns.
NONZERO_LINES = tuple(f"Batch export for range % finished successfully with {d}% records exported" for d in "123456789")
LOG_WINDOWS = (7, 30)  # days of log lines asked, the shorter first: most silent exports exported a week ago


async def ever_exported(upstream: Upstream, exports: list[dict[str, Any]], now: datetime) -> dict[str, bool]:
    """Whether each export's runs logged a record in the last 7 days, else in the last 30, from the INFO
    line every completed run logs: at most two Query API requests for all of them (scope query:read);
    {} where the Query API is refused, and each export's runs tell instead."""
    found: dict[str, bool] = {}
    left = [str(e.get("id")) for e in exports]
    patterns = " OR ".join(f"message LIKE {literal(line)}" for line in NONZERO_LINES)
    for days in LOG_WINDOWS:
        if not left:
            break
        ids = ", ".join(literal(i) for i in left)
        since = literal(iso(now - timedelta(days=days)))
        hogql = (
            f"SELECT log_source_id, count() FROM batch_export_log_entries WHERE log_source_id IN ({ids}) "
            f"AND level = 'INFO' AND timestamp >= {since} AND ({patterns}) GROUP BY log_source_id"
        )
        try:
            answer = await upstream.request("POST", QUERY_PATH, json={"query": {"kind": "HogQLQuery", "query": hogql}})
        except UpstreamError as error:
            if error.status in (400, 403, 404, 405):
                return {}
            raise
        rows = (answer or {}).get("results") or []
        exported = {str(r[0]) for r in rows if isinstance(r, list) and len(r) == 2 and int(r[1]) > 0}
        found |= {i: True for i in exported}
        left = [i for i in left if i not in exported]
    return found | {i: False for i in left}


async def read_back(
    upstream: Upstream,
    entry: dict[str, Any],
    export: dict[str, Any],
    now: datetime,
    budget: list[int],
    exported_before: bool | None = None,
) -> None:
    """What the embedded runs could not tell, from the export's older runs: one request for a failure,
    at most two for a silence; each read taken from `budget`. Where the answer is not found within
    READ_BACK_DAYS (or the budget), the entry says how far it looked instead of guessing."""
    why = entry.pop("_read_back", None)
    oldest = _oldest_in_view(export)
    if why is None or oldest is None:
        return
    if why == "silent" and exported_before is False:
        entry["state"] = "never_exported"  # its runs' log lines say none ever exported a record
        entry["read_back"] = f"no run logged a record since {iso(now - timedelta(days=LOG_WINDOWS[-1]))}"
        return
    if budget[0] <= 0:
        entry["read_back"] = "not read: this call's read-back budget is spent (ask for this export by name)"
        return
    budget[0] -= 1
    window_start = now - timedelta(days=READ_BACK_DAYS)
    runs, reached = await _completed_runs(upstream, export, window_start, oldest)
    bound = iso(reached or window_start)
    if why == "failing":
        starts = [moment(r.get("data_interval_start")) for r in export.get("latest_runs") or [] if isinstance(r, dict)]
        streak_end = max((m for m in starts if m is not None), default=oldest)
        if runs:
            since = moment(runs[0].get("data_interval_end")) or oldest
            entry["failing_since"] = iso(since)  # the interval after the last success: nothing exported since
            entry["consecutive_failures"] = _intervals_between(export, since, streak_end)
        else:
            entry.pop("failing_since", None)
            entry.pop("consecutive_failures", None)
            entry["failing_since_before"] = bound
            entry["read_back"] = f"no successful run between {bound} and the 10 newest runs"
        return
    exported = next((r for r in runs if (_records(r, "records_completed") or 0) > 0), None)
    zero_runs = entry.get("zero_record_runs", 0) + (runs.index(exported) if exported is not None else len(runs))
    usual = [n for n in (_records(r, "records_completed") for r in runs) if n is not None]
    if exported is not None and not unusual_silence(zero_runs, usual[runs.index(exported) :]):
        entry.pop("zero_records_since", None)  # a quiet export between records, not a silent one
        entry.pop("zero_record_runs", None)
        entry["state"] = "healthy"
        return
    if exported is not None:
        silent_from = moment(exported.get("data_interval_end"))
        if silent_from is not None:
            entry["zero_records_since"] = iso(silent_from)
            entry["zero_record_runs"] = entry.get("zero_record_runs", 0) + runs.index(exported)
        entry["state"] = "silent"
        return
    entry["zero_record_runs"] = entry.get("zero_record_runs", 0) + len(runs)
    created = moment(export.get("created_at")) or window_start
    if reached is None and created >= window_start:
        entry["state"] = "never_exported"  # every run it completed since it was made exported nothing
        return
    entry.pop("zero_records_since", None)
    entry["zero_records_since_before"] = bound
    if exported_before:
        entry["state"] = "silent"
        entry["read_back"] = f"exported records before (its log says); 0 records since at least {bound}"
        return
    # Did it ever export? Its oldest completed runs in the window say (a second request).
    if budget[0] <= 0:
        entry["read_back"] = f"0 records since at least {bound}; whether it ever exported was not read"
        entry["state"] = "silent"
        return
    budget[0] -= 1
    first_runs, _ = await _completed_runs(upstream, export, max(window_start, created), oldest, newest_first=False)
    if any((_records(r, "records_completed") or 0) > 0 for r in first_runs):
        entry["state"] = "silent"
        entry["read_back"] = f"exported records before; 0 records since at least {bound}"
    else:
        entry["state"] = "never_exported"
        entry["read_back"] = f"no records in its first and its latest runs since {iso(max(window_start, created))}"


# ------------------------------------------------------------------------------- who paused, what is running


ACTIVITY_PAGE = 1000  # the activity log's largest numbered page (docs/posthog-api.md, "Activity log")
ACTIVITY_PAGES = 5


def _paused_by(entry: dict[str, Any]) -> str | None:
    """Who an activity-log entry says paused an export: "PostHog" for the workers (no user), or the
    person; None when the entry is not a pause (PostHog shows `paused` as the field `enabled`)."""
    changes = (entry.get("detail") or {}).get("changes") or []
    if not any(c.get("field") == "enabled" and c.get("after") is True for c in changes if isinstance(c, dict)):
        return None
    user = entry.get("user")
    if not isinstance(user, dict) or entry.get("is_system"):
        return "PostHog"
    name = " ".join(str(user.get(k) or "") for k in ("first_name", "last_name")).strip()
    return name or str(user.get("email") or "a person")


async def _paused_in_activity_log(upstream: Upstream, paused: list[dict[str, Any]]) -> dict[str, str]:
    """Who paused each of `paused`, from the project's activity log, newest first, back to the oldest
    pause (at most ACTIVITY_PAGES pages). Raises PostHog's refusal when the key may not read it."""
    wanted = {str(e.get("id")) for e in paused}
    since = min((m for m in (moment(e.get("last_paused_at")) for e in paused) if m), default=None)
    found: dict[str, str] = {}
    for page_number in range(1, ACTIVITY_PAGES + 1):
        query = {"scope": "BatchExport", "page": page_number, "page_size": ACTIVITY_PAGE}
        page = await upstream.request("GET", ACTIVITY_PATH, query=query)
        results = [e for e in (page or {}).get("results") or [] if isinstance(e, dict)]
        for entry in results:
            item = str(entry.get("item_id"))
            if item in wanted and item not in found:
                who = _paused_by(entry)
                if who is not None:
                    found[item] = who
        oldest = min((m for m in (moment(e.get("created_at")) for e in results) if m), default=None)
        if not (page or {}).get("next") or wanted <= set(found) or (since and oldest and oldest < since):
            break
    return found


async def paused_by(upstream: Upstream, paused: list[dict[str, Any]]) -> tuple[dict[str, str], str | None]:
    """Who paused each paused export where PostHog says so, and where it said it (None: nowhere here).

    A pause is an `enabled` change in the activity log, with the person's user or none for PostHog's
    workers, which pause an export after too many failures (scope activity_log:read); where that is
    refused, the WARNING line the workers log then, through the Query API (scope query:read): one request
    either way (docs/posthog-api.md, "Activity log" and "Runs")."""
    if not paused:
        return {}, None
    try:
        return await _paused_in_activity_log(upstream, paused), "activity log"
    except UpstreamError as error:
        if error.status not in (403, 404, 405):
            raise
    ids = ", ".join(literal(str(e.get("id"))) for e in paused)
    hogql = (
        "SELECT log_source_id, count() FROM batch_export_log_entries WHERE level = 'WARNING' "
        f"AND message LIKE '{AUTO_PAUSE_LINE}' AND log_source_id IN ({ids}) GROUP BY log_source_id"
    )
    try:
        answer = await upstream.request("POST", QUERY_PATH, json={"query": {"kind": "HogQLQuery", "query": hogql}})
    except UpstreamError as error:
        if error.status in (400, 403, 404, 405):
            return {}, None
        raise
    rows = (answer or {}).get("results") or []
    return {str(row[0]): "PostHog" for row in rows if isinstance(row, list) and row}, "log"


def _backfill_candidates(exports: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
    """Exports with a backfill's run among their embedded runs that is running or finished within the
    hour (a backfill runs its intervals one after another, so its newest run is among the newest)."""
    chosen = []
    for export in exports:
        for run in export.get("latest_runs") or []:
            if not isinstance(run, dict) or not run.get("backfill"):
                continue
            finished = moment(run.get("finished_at"))
            if run.get("status") in RUNNING or finished is None or finished > now - timedelta(hours=1):
                chosen.append(export)
                break
    return chosen


async def running_backfills(
    upstream: Upstream, exports: list[dict[str, Any]], now: datetime
) -> tuple[list[dict[str, Any]], int]:
    """Backfills in flight and how far along, and how many exports with one were not read (bound)."""
    candidates = _backfill_candidates(exports, now)
    found = []
    for export in candidates[:BACKFILL_READS]:
        page = await upstream.request("GET", path_for(BACKFILLS_PATH, batch_export_id=export.get("id")))
        for backfill in (page or {}).get("results") or []:
            if not isinstance(backfill, dict) or backfill.get("status") not in RUNNING:
                continue
            item: dict[str, Any] = {
                "batch_export_id": export.get("id"),
                "name": export.get("name"),
                "backfill_id": backfill.get("id"),
                "status": backfill.get("status"),
                "start_at": backfill.get("start_at"),
                "end_at": backfill.get("end_at"),
            }
            done: dict[str, Any] = backfill["progress"] if isinstance(backfill.get("progress"), dict) else {}
            if done.get("total_runs"):
                item["runs_done"] = f"{done.get('finished_runs') or 0}/{done['total_runs']}"
            found.append({k: v for k, v in item.items() if v is not None})
    return found, max(0, len(candidates) - BACKFILL_READS)


# ------------------------------------------------------------------------------- the project


async def all_exports(upstream: Upstream, path: str = "batch_exports/") -> list[dict[str, Any]]:
    """Every export of the project, paging PostHog's list (100 a page), with progress."""
    exports: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES):
        page = await upstream.request("GET", path, query={"limit": PAGE_SIZE, "offset": len(exports)})
        results = page.get("results") if isinstance(page, dict) else None
        if not isinstance(results, list):
            break
        exports.extend(e for e in results if isinstance(e, dict))
        total = page.get("count") if isinstance(page.get("count"), int) else None
        await progress.report(len(exports), total, f"read {len(exports)} of {total or '?'} exports")
        if not page.get("next") or not results:
            break
    return exports


async def interval_cells(upstream: Upstream, export: dict[str, Any], count: int, now: datetime) -> list[dict[str, Any]]:
    """The export's `count` most recent whole data intervals, oldest first, each with its status; a
    completed interval that exported no record is `empty`, not `completed`."""
    latest = [r for r in export.get("latest_runs") or [] if isinstance(r, dict)]
    seconds = INTERVAL_SECONDS.get(str(export.get("interval")), 3600)
    newest_end = max((m for m in (moment(r.get("data_interval_end")) for r in latest) if m), default=now)
    end = max(now, newest_end)
    start = end - timedelta(seconds=seconds * (count + 1))
    path = path_for(RUNS_PATH, batch_export_id=export.get("id"))
    page = await upstream.request(
        "GET", path, query={"ordering": "-data_interval_start", "start": iso(start), "limit": 100}
    )
    runs = [r for r in (page.get("results") if isinstance(page, dict) else None) or [] if isinstance(r, dict)]
    runs += latest
    shape = grid(export, runs, start, end)
    if shape is None:
        return []
    decided = deciding_runs(runs)
    paused_since = moment(export.get("last_paused_at")) if export.get("paused") else None
    cells = []
    for point in shape.starts[-count:]:
        run = decided.get(point)
        status = cell_status(run)
        if run is None and export.get("paused") and (paused_since is None or point + shape.step > paused_since):
            status = "paused"
        cell: dict[str, Any] = {"start": iso(point), "end": iso(point + shape.step), "status": status}
        if run is not None:
            cell["run_id"] = run.get("id")
            if isinstance(run.get("records_completed"), int):
                cell["records"] = run["records_completed"]
                if status == "completed" and run["records_completed"] == 0:
                    cell["status"] = "empty"
            if status == "failed" and short_error(run.get("latest_error"), 80):
                cell["error"] = short_error(run.get("latest_error"), 80)
        cells.append(cell)
    return cells


def _with_error_cut(entry: dict[str, Any], limit: int) -> dict[str, Any]:
    if "latest_error" not in entry:
        return entry
    return {**entry, "latest_error": short_error(entry["latest_error"], limit)}


def distinct_errors(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each different latest error once, with how many listed exports it stands for, most common first."""
    tally: dict[str, int] = {}
    for entry in entries:
        if "latest_error" in entry:
            tally[entry["latest_error"]] = tally.get(entry["latest_error"], 0) + 1
    return [{"error": text, "exports": n} for text, n in sorted(tally.items(), key=lambda item: -item[1])]


def _matches(export: dict[str, Any], params: HealthParams) -> bool:
    if params.destination_type and (export.get("destination") or {}).get("type") != params.destination_type:
        return False
    return not params.name_contains or params.name_contains.lower() in str(export.get("name") or "").lower()


def _compact(entry: dict[str, Any]) -> dict[str, Any]:
    """An entry as a long list shows it: what its name and state already say left out."""
    return {k: v for k, v in entry.items() if k not in ("destination_type", "interval", "paused", "_assessed")}


async def health(upstream: Upstream, params: HealthParams, request: Any = None) -> dict[str, Any]:
    now = _now()
    path = getattr(request, "path", None) or "batch_exports/"
    exports = await all_exports(upstream, path)
    entries = [(assess(e), e) for e in exports]
    paused = [e for entry, e in entries if entry["state"] == "paused"]
    who, told_by = await paused_by(upstream, paused)
    for entry, export in entries:
        if entry["state"] == "paused" and str(export.get("id")) in who:
            entry["paused_by"] = who[str(export.get("id"))]
            if entry["paused_by"] == "PostHog":
                entry["state"] = entry["_assessed"] = "auto_paused"  # after too many failures
    billed = [entry for entry, _ in entries if entry.get("billing_failures")]
    counts = {"total": len(entries)} | {s: 0 for s in STATE_ORDER}
    for entry, _ in entries:
        counts[entry["state"]] += 1
    chosen = [(entry, e) for entry, e in entries if entry["state"] in _SELECTS[params.state] and _matches(e, params)]
    chosen.sort(key=lambda pair: (STATE_ORDER.index(pair[0]["state"]), str(pair[0].get("name")).lower()))
    answer: dict[str, Any] = {"project_id": params.project_id, "counts": {k: v for k, v in counts.items() if v}}
    if params.destination_type or params.name_contains:
        answer["matching"] = len(chosen)
    if billed:
        starts = sorted(str(e["billing_since"]) for e in billed if e.get("billing_since"))
        answer["billing"] = {
            "exports": len(billed),
            "first_interval": starts[0] if starts else None,
            "note": "runs stopped by the project's billing limit (FailedBilling): retries fail until it is raised; "
            "then batch-export-gaps finds what to backfill",
        }
    if paused and told_by is None:
        answer["paused_by"] = (
            "unknown: PostHog says who paused an export in its activity log (scope activity_log:read) "
            "or its logs (scope query:read)"
        )
    if params.offset == 0:
        running, unread = await running_backfills(upstream, exports, now)
        if running:
            answer["backfills_running"] = running
        if unread:
            answer["backfills_not_read"] = (
                f"{unread} more exports have a backfill's run in flight (batch-export-backfills-list)"
            )
    answer["exports"] = []
    listed = chosen[params.offset :]
    room = continuation.FIT - 700  # the omitted note, if one is needed
    if params.intervals:
        answer["exports"] = await _with_cells(upstream, listed, params.intervals, room - continuation.size(answer), now)
        shown = len(answer["exports"])
    else:
        answer, shown = await _fitted(upstream, answer, listed, room, now, _SELECTS[params.state])
    for entry, _ in listed[:shown]:
        if entry.get("_assessed") != entry["state"]:  # a read back told more than the embedded runs
            answer["counts"][entry["_assessed"]] -= 1
            answer["counts"][entry["state"]] = answer["counts"].get(entry["state"], 0) + 1
    answer["counts"] = {k: v for k, v in answer["counts"].items() if v}
    for entry in answer["exports"]:
        if isinstance(entry, dict):
            entry.pop("_assessed", None)
            entry.pop("_cleared", None)
    _omitted(answer, params, shown, listed)
    if not listed and params.offset and params.offset > len(chosen):
        answer["note"] = f"offset {params.offset} is past the {len(chosen)} exports this call lists."
    return answer


TABLE_ERROR = 60  # characters of each distinct error a table lists
TABLE_SHORT = (40, 24)  # error and name characters in the table's shortest form
TABLE_COLUMNS = ("batch_export_id", "name", "state", "since", "count", "error", "failed_run_id")
TABLE_NOTE = (
    "Rows follow columns. since: failing, 0 records, billing or paused since ('before X': not found back to X); "
    "count: failed intervals, 0-record runs or failed records; error: its place in errors, from 1."
)


def entries_of(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The exports of an answer as entries, whichever form it took (rows of a table become dicts)."""
    columns = answer.get("columns")
    if not isinstance(columns, list):
        return [e for e in answer.get("exports") or [] if isinstance(e, dict)]
    return [dict(zip(columns, row, strict=False)) for row in answer.get("exports") or [] if isinstance(row, list)]


def _since(entry: dict[str, Any]) -> Any:
    for key in ("failing_since", "zero_records_since", "paused_at", "billing_since"):
        if entry.get(key):
            return _to_minute(entry[key])
    for key in ("failing_since_before", "zero_records_since_before"):
        if entry.get(key):
            return f"before {_to_minute(entry[key])}"
    return None


def _to_minute(value: Any) -> Any:
    """A moment to the minute, in UTC (2026-12-02T13:00Z): what a row needs, in fewer bytes."""
    at = moment(value)
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ") if at else value


def _count(entry: dict[str, Any]) -> Any:
    for key in ("consecutive_failures", "zero_record_runs", "records_failed", "billing_failures"):
        if entry.get(key):
            return entry[key]
    return None


def _table(entries: list[dict[str, Any]], columns: tuple[str, ...]) -> tuple[list[list[Any]], list[str]]:
    """The entries as rows of `columns`, and the distinct errors the rows number (1 is the first).

    The shorter tables (no run id column) cut names and errors shorter too."""
    error_chars, name_chars = (TABLE_ERROR, 200) if "failed_run_id" in columns else TABLE_SHORT
    errors = [item["error"] for item in distinct_errors([_with_error_cut(e, error_chars) for e in entries])]
    numbers = {error: index + 1 for index, error in enumerate(errors)}
    rows = []
    for entry in entries:
        error = short_error(entry.get("latest_error"), error_chars)
        cells = {
            "batch_export_id": entry.get("batch_export_id"),
            "name": short_error(entry.get("name"), name_chars) or entry.get("name"),
            "state": entry["state"],
            "since": _since(entry),
            "count": _count(entry),
            "error": numbers.get(error) if error else None,
            "failed_run_id": entry.get("failed_run_id"),
        }
        rows.append([cells[c] for c in columns])
    return rows, errors


def _shapes(told: list[dict[str, Any]]) -> list[tuple[str, Any]]:
    """The forms the told exports may take, longest first: whole entries with shorter and shorter errors,
    then without what their name and state say, then as rows of a table: with run ids, without them,
    and at last without names (ids name the exports; every one of them still fits)."""
    forms: list[tuple[str, Any]] = []
    for compact in (False, True):
        for cut in ERROR_CUTS:
            forms.append(("entries", [_with_error_cut(_compact(e) if compact else e, cut) for e in told]))
    forms.append(("table", TABLE_COLUMNS))
    forms.append(("table", tuple(c for c in TABLE_COLUMNS if c != "failed_run_id")))
    forms.append(("table", tuple(c for c in TABLE_COLUMNS if c not in ("failed_run_id", "name"))))
    return forms


def _shaped(answer: dict[str, Any], form: tuple[str, Any], told: list[dict[str, Any]], n: int) -> dict[str, Any]:
    """The answer with the first `n` told exports in `form` (less those a read back found to be fine)."""
    kind, value = form
    if kind == "entries":
        return {**answer, "exports": [e for e in value[:n] if not e.get("_cleared")]}
    rows, errors = _table([e for e in told[:n] if not e.get("_cleared")], value)
    shaped = {**answer, "columns": list(value), "columns_note": TABLE_NOTE, "exports": rows, "errors": errors}
    left_out = [c for c in ("failed_run_id", "name") if c not in value]
    if left_out:
        shaped["left_out"] = (
            f"{' and '.join(left_out)} of each export, to fit every one: name_contains, or batch-export-errors "
            "for failed run ids, gives them"
        )
    if "backfills_running" in answer:  # the same facts in fewer bytes
        shaped["backfills_running"] = [
            {k: b[k] for k in ("batch_export_id", "name", "backfill_id", "runs_done") if k in b}
            for b in answer["backfills_running"]
        ]
    return shaped


async def _fitted(
    upstream: Upstream, answer: dict[str, Any], listed: list[Any], room: int, now: datetime, selects: tuple[str, ...]
) -> tuple[dict[str, Any], int]:
    """The answer with as many listed exports as fit, each told whole (read back where its embedded runs
    cannot tell), in the longest form that holds them all: shorter forms before fewer exports."""
    budget = [READ_BACKS]
    quiet = [export for entry, export in listed if entry.get("_read_back") == "silent"]
    exported = await ever_exported(upstream, quiet, now)
    told: list[dict[str, Any]] = []
    for entry, export in listed:
        if "_read_back" in entry:
            await read_back(upstream, entry, export, now, budget, exported.get(str(export.get("id"))))
            await progress.report(READ_BACKS - budget[0], None, "read back older runs where the newest cannot tell")
            if entry["state"] not in selects:
                entry["_cleared"] = True  # its older runs say it is not in a state this call lists
        told.append(entry)
        # Stop telling once the exports told cannot fit even in the shortest form.
        if continuation.size(_shaped(answer, _shapes([])[-1], told, len(told))) > room:
            break
    forms = _shapes(told)
    for form in forms:
        whole = _shaped(answer, form, told, len(told))
        if len(told) == len(listed) and continuation.size(whole) <= room:
            return whole, len(told)
    shortest = forms[-1]
    n = continuation.longest_fitting(
        told, lambda prefix: continuation.size(_shaped(answer, shortest, told, len(prefix))) <= room
    )
    n = max(n, 1) if told else 0
    return _shaped(answer, shortest, told, n), n


async def _with_cells(
    upstream: Upstream, listed: list[Any], count: int, room: int, now: datetime
) -> list[dict[str, Any]]:
    kept: list[dict[str, Any]] = []
    for index, (entry, export) in enumerate(listed):
        entry.pop("_read_back", None)
        entry = _with_error_cut({**entry, "intervals": await interval_cells(upstream, export, count, now)}, 80)
        await progress.report(index + 1, len(listed), f"read the intervals of {index + 1} of {len(listed)}")
        if kept and continuation.size([*kept, entry]) > room:
            break
        kept.append(entry)
    return kept


def _omitted(answer: dict[str, Any], params: HealthParams, shown: int, listed: list[Any]) -> None:
    if shown >= len(listed):
        return
    left = len(listed) - shown
    arguments = params.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
    arguments |= {"project_id": params.project_id, "state": params.state, "offset": params.offset + shown}
    states = sorted({e["state"] for e, _ in listed[shown:]}, key=STATE_ORDER.index)
    answer["omitted"] = continuation.omitted(
        "batch-export-health",
        arguments,
        f"{shown} of {len(listed)} listed exports fit the {continuation.BUDGET // 1000} KB answer budget; the other "
        f"{left} ({', '.join(states)}) follow with the call",
        left,
    )


TOOLS = [
    ToolSpec(
        name="batch-export-health",
        title="Batch export health",
        description="Every export's state in one call: failing since, billing, 0 records, auto-paused, backfills running.",
        method="GET",
        path="batch_exports/",
        scope=READ,
        params=HealthParams,
        output=HealthAnswer,
        handler=health,
        ui_resource=HEALTH_VIEW,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
]
