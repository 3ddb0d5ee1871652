"""Reading gaps: the failed and never-run intervals of one export, or of every export of a project,
within a bounded number of PostHog requests.

The rule itself is `tools/answers/intervals.py` `find_ranges`. At a fleet's size (docs/architecture.md,
"Rules for answers at a fleet's size") one call reads:

- the export list, whole (100 a page), or the one export asked for;
- then the selected exports oldest first, from `offset`: an export whose embedded latest runs decide
  every interval of the window costs nothing more; the others have their runs of the window read;
  an export whose latest runs show a backfill at work has its backfills read (a running one covers
  ranges, and PostHog counts it);
- at most REQUEST_BOUND requests for runs and backfills. Where the bound stops the scan, the answer
  says so and the call that continues from there; following those calls reads every export once;
- and, for a repair, the backfills of exports whose latest runs show a backfill at work anywhere in
  the project (at most CAPACITY_READS), since PostHog counts those against its limit too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, get_args
from uuid import UUID

from pydantic import Field, field_validator, model_validator

from tools.answers import capacity, progress
from tools.answers.health import all_exports
from tools.answers.intervals import Gaps, covered_by, find_ranges, iso, moment
from tools.declaration import NotPossible
from tools.destinations import DestinationType
from tools.exports import read_export
from tools.paging import cursor_of
from tools.params import UNLISTED, Params
from tools.times import TIME_FILTER, check_filter, to_instant
from tools.upstream import HttpMethod, OverBudget, Upstream, path_for

RUNS_PATH = "batch_exports/{batch_export_id}/runs/"
BACKFILLS_PATH = "batch_exports/{batch_export_id}/backfills/"
MAX_RANGE = timedelta(days=93)
REQUEST_BOUND = 150
"""PostHog requests one call spends on runs and backfills (the export list comes on top: one per 100)."""
CAPACITY_READS = 10
"""Exports outside the scan whose running backfills are read to count them (each beyond counts as one)."""
# What a call of the gaps tools may send (`ToolSpec.max_requests`): the export list of a 20,000-export
# project, the bound, the capacity reads, with room to spare; the bound stops a scan well before it.
MAX_REQUESTS_READ = 400
RUNS_PAGE = 100  # PostHog's page of runs (docs/posthog-api.md, "Pagination")


class GapsParams(Params):
    batch_export_id: UUID | None = Field(None, description="One export (default all).")
    # A destination type's name, held on call (the error lists the types): listed as a plain string, since
    # the answers a model reads name the types, and the list of them is paid for in every session.
    destination_type: str | None = Field(None, description="Only this type, e.g. Snowflake.")
    name_contains: str | None = Field(None, min_length=1, max_length=200, description="Name contains.")
    start: str = Field("-7d", pattern=TIME_FILTER, description="From: ISO date/time or -7d.")
    end: str | None = Field(None, pattern=TIME_FILTER, description="Until (default now).")
    offset: int = Field(0, ge=0, description="See omitted.call.", json_schema_extra=UNLISTED)

    @field_validator("start", "end")
    @classmethod
    def _real_times(cls, value: str | None) -> str | None:
        return check_filter(value)

    @field_validator("destination_type")
    @classmethod
    def _a_type(cls, value: str | None) -> str | None:
        types = get_args(DestinationType)
        if value is not None and value not in types:
            raise ValueError(f"destination_type {value[:40]!r} is not one of {', '.join(types)}")
        return value

    @model_validator(mode="after")
    def _ordered(self) -> GapsParams:
        start, end = self.window(datetime.now(UTC))
        if start >= end:
            raise ValueError(f"start ({self.start}) must be before end ({self.end or 'now'})")
        if end - start > MAX_RANGE:
            raise ValueError("the range is longer than 93 days; narrow start/end")
        return self

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        end = min(to_instant(self.end, now), now) if self.end else now
        return to_instant(self.start, now), end

    def selects(self, export: dict[str, Any]) -> bool:
        if self.destination_type and (export.get("destination") or {}).get("type") != self.destination_type:
            return False
        return not self.name_contains or self.name_contains.lower() in str(export.get("name") or "").lower()

    def scope(self) -> dict[str, Any]:
        """The arguments that say what was searched, as the caller gave them (defaults left out)."""
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=True) | {"project_id": self.project_id}


class GapsBackfillParams(GapsParams):
    """The same arguments; the fleet filters come from batch-export-gaps' `repair.call`, so only the
    common ones are listed a second time."""

    destination_type: str | None = Field(None, description="Only this type.", json_schema_extra=UNLISTED)
    name_contains: str | None = Field(
        None, min_length=1, max_length=200, description="Name contains.", json_schema_extra=UNLISTED
    )


class Counting:
    """The call's PostHog client, counting the requests sent through it."""

    def __init__(self, upstream: Upstream) -> None:
        self.upstream = upstream
        self.sent = 0

    async def send(self, request: Any) -> Any:
        self.sent += 1
        return await self.upstream.send(request)

    async def request(
        self,
        method: HttpMethod,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        self.sent += 1
        return await self.upstream.request(method, path, query=query, json=json)


@dataclass
class Found:
    """One export's gaps, with its backfills as PostHog listed them (newest first) when they were read."""

    export: dict[str, Any]
    gaps: Gaps
    backfills: list[dict[str, Any]] | None


@dataclass
class Scan:
    start: datetime
    end: datetime
    selected: list[dict[str, Any]]
    """Every export the scope selects, in the order the scan reads them (oldest first)."""
    offset: int
    reached: int
    """The index in `selected` where this call stopped: len(selected) when it read them all."""
    found: list[Found] = field(default_factory=list)
    """The exports with gaps, in order (for one export, that export whatever it shows)."""
    too_long: list[dict[str, Any]] = field(default_factory=list)
    """Exports whose runs in the window are more than one call may read."""
    running: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Backfills PostHog counts against its limit (Starting or Running), by id, as far as they were read."""
    uncounted: int = 0
    """Exports beyond CAPACITY_READS with a backfill at work, each counted as one running backfill."""
    stopped: str | None = None
    """Why the scan stopped before its request bound, when the key's request budget did (server/budget/)."""
    tally: dict[str, int] = field(default_factory=dict)
    requests: int = 0

    @property
    def complete(self) -> bool:
        return self.reached >= len(self.selected)

    @property
    def running_count(self) -> int:
        return len(self.running) + self.uncounted


async def runs_in(
    upstream: Upstream, export_id: Any, start: datetime, end: datetime, max_pages: int
) -> tuple[list[dict[str, Any]], bool]:
    """The export's runs whose interval starts in [start, end), and whether every page was read."""
    path = path_for(RUNS_PATH, batch_export_id=export_id)
    query: dict[str, Any] = {"ordering": "data_interval_start", "start": iso(start), "end": iso(end)}
    runs: list[dict[str, Any]] = []
    for _ in range(max_pages):
        page = await upstream.request("GET", path, query=query)
        runs += [r for r in (page or {}).get("results") or [] if isinstance(r, dict)]
        following = (page or {}).get("next")
        if not following:
            return runs, True
        query = {**query, "cursor": cursor_of(str(following))}
    return runs, False


async def backfills_of(upstream: Upstream, export_id: Any) -> list[dict[str, Any]]:
    """The export's newest backfills (PostHog's first page, 50), newest first."""
    page = await upstream.request("GET", path_for(BACKFILLS_PATH, batch_export_id=export_id))
    return [b for b in (page or {}).get("results") or [] if isinstance(b, dict)]


def _oldest_seen(latest: list[dict[str, Any]], end: datetime) -> datetime:
    """Runs created since this moment are all among the latest runs in view (PostHog embeds the newest)."""
    made = [m for m in (moment(r.get("created_at")) for r in latest) if m is not None]
    return min(made) if made else end


def _pages_for(gaps: Gaps, start: datetime, end: datetime) -> int:
    """How many pages of runs the window takes, at one run per interval (re-runs add a little)."""
    intervals = max(1, int((end - start) / gaps.step))
    return intervals // RUNS_PAGE + 1


async def scan(upstream: Upstream, params: GapsParams, *, now: datetime, count_running: bool) -> Scan:
    """Read the scope's gaps within the bound (see the module's docstring)."""
    counter = Counting(upstream)
    start, end = params.window(now)
    everything: list[dict[str, Any]] | None = None
    if params.batch_export_id is not None:
        export = await read_export(counter, params)
        if not params.selects(export):
            raise NotPossible(
                f"Export {export.get('name')!r} is not one destination_type/name_contains select: drop them to look "
                "at it, or drop batch_export_id to look at every export they select."
            )
        selected = [export]
    else:
        everything = await all_exports(counter)
        selected = sorted(
            (e for e in everything if params.selects(e)),
            key=lambda e: (str(e.get("created_at") or ""), str(e.get("id"))),
        )
    bound = counter.sent + REQUEST_BOUND
    result = Scan(start=start, end=end, selected=selected, offset=params.offset, reached=params.offset)
    tally = {"selected": len(selected), "decided_by_latest_runs": 0, "runs_read": 0, "with_gaps": 0}
    backfills_read: set[str] = set()
    index, result.stopped = await _read(counter, params, selected, result, tally, backfills_read, bound, now)
    result.reached = index
    if count_running:
        if everything is None:
            everything = await all_exports(counter)
        others = [e for e in everything if capacity.backfill_at_work(e) and str(e.get("id")) not in backfills_read]
        counted = 0
        for export in others[:CAPACITY_READS]:
            try:
                listed = await backfills_of(counter, export["id"])
            except OverBudget:
                break
            result.running.update({str(b.get("id")): b for b in capacity.running(listed)})
            counted += 1
        result.uncounted = len(others) - counted
    result.tally = {k: v for k, v in tally.items() if v}
    result.requests = counter.sent
    return result


async def _read(
    counter: Counting,
    params: GapsParams,
    selected: list[dict[str, Any]],
    result: Scan,
    tally: dict[str, int],
    backfills_read: set[str],
    bound: int,
    now: datetime,
) -> tuple[int, str | None]:
    """Read the selected exports from `params.offset` within `bound`: the index where it stopped, and why
    when the key's request budget stopped it first (that export is read again by the next call)."""
    index = params.offset
    while index < len(selected):
        try:
            step = await _read_one(counter, params, selected[index], index, result, tally, backfills_read, bound, now)
        except OverBudget as spent:
            return index, spent.detail
        if step == "stop":
            return index, None
        index += 1
        if index % 10 == 0:
            await progress.report(index, len(selected), f"looked at {index} of {len(selected)} exports")
    return index, None


async def _read_one(
    counter: Counting,
    params: GapsParams,
    export: dict[str, Any],
    index: int,
    result: Scan,
    tally: dict[str, int],
    backfills_read: set[str],
    bound: int,
    now: datetime,
) -> str:
    """Read one export's gaps: "next", or "stop" where the request bound leaves it to the next call."""
    start, end = result.start, result.end
    export_id = export.get("id")
    latest = [r for r in export.get("latest_runs") or [] if isinstance(r, dict)]
    runs = latest
    gaps = find_ranges(export, latest, [], start, end, now, seen_since=_oldest_seen(latest, end))
    if gaps is None:
        result.too_long.append(export)  # an interval this code cannot step
        return "next"
    if gaps.unknown:
        left = bound - counter.sent
        pages = _pages_for(gaps, start, end)
        if pages > REQUEST_BOUND:
            result.too_long.append(export)
            return "next"
        if pages > left:
            return "stop"  # the bound: the next call starts with this export
        runs, whole = await runs_in(counter, export_id, start, end, max_pages=left)
        if not whole:
            if index == params.offset:
                result.too_long.append(export)
                return "next"
            return "stop"
        tally["runs_read"] += 1
        read = find_ranges(export, runs, [], start, end, now)
        if read is None:
            return "next"
        gaps = read
    else:
        tally["decided_by_latest_runs"] += 1
    backfills: list[dict[str, Any]] | None = None
    # An export's backfills are read when its latest runs show one at work (it may cover ranges, and PostHog
    # counts it), or for one export asked for: a request per export with gaps would double the scan, and a
    # backfill started since the plan is what each write's re-check looks for (tools/answers/gaps.py).
    if capacity.backfill_at_work(export) or (gaps.ranges and params.batch_export_id is not None):
        if counter.sent >= bound:
            return "stop"
        backfills = await backfills_of(counter, export_id)
        backfills_read.add(str(export_id))
        at_work = capacity.running(backfills)
        result.running.update({str(b.get("id")): b for b in at_work})
        if gaps.ranges and at_work:
            seen_since = None if runs is not latest else _oldest_seen(latest, end)
            again = find_ranges(export, runs, covered_by(at_work, now), start, end, now, seen_since=seen_since)
            gaps = again or gaps
    if gaps.ranges:
        tally["with_gaps"] += 1
    if gaps.ranges or params.batch_export_id is not None:  # one export: its tally is the answer too
        result.found.append(Found(export, gaps, backfills))
    return "next"
