"""batch-export-gaps and batch-export-gaps-backfill: find the data intervals that were not exported, and fill them.

An interval is a gap when the newest run for it failed or no run exists, unless it lies in a
running backfill's range (already being filled) or in the time the export has been paused (an
unpause with backfill is the tool for that). Contiguous gaps are merged into ranges, so the repair
is one backfill per range, at most BACKFILLS_PER_CALL at a time (PostHog caps concurrent backfills).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from tools.answers.intervals import RUNNING, cell_status, deciding_runs, grid, iso, moment
from tools.backfills import effective_bounds
from tools.declaration import READ, WRITE, NotPossible, Preview, ToolSpec
from tools.exports import export_summary, read_export
from tools.paging import cursor_of
from tools.params import Params
from tools.times import TIME_FILTER, check_filter, to_instant
from tools.upstream import Upstream, path_for
from tools.versions import export_version, newest_id

RUNS_PATH = "batch_exports/{batch_export_id}/runs/"
BACKFILLS_PATH = "batch_exports/{batch_export_id}/backfills/"
# PostHog refuses a backfill while a project has its limit running (its own tests set 2); staying
# at that lets every range of one call start, rather than half of them.
BACKFILLS_PER_CALL = 2
MAX_RANGE = timedelta(days=93)
# A run is created a moment after its interval ends: an interval younger than this without a run is
# not a gap yet (one whose run already failed is).
_SETTLE = timedelta(minutes=15)
_MAX_PAGES = 100


class GapsParams(Params):
    batch_export_id: UUID
    start: str = Field("-7d", pattern=TIME_FILTER, description="From: ISO date/time or -7d.")
    end: str | None = Field(None, pattern=TIME_FILTER, description="Until (default now).")

    @field_validator("start", "end")
    @classmethod
    def _real_times(cls, value: str | None) -> str | None:
        return check_filter(value)

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


class GapsAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    batch_export_id: str
    ranges: list[dict[str, Any]]


class BackfilledGaps(BaseModel):
    model_config = ConfigDict(extra="allow")

    backfills: list[dict[str, Any]]


async def _runs_in(upstream: Upstream, export_id: UUID, start: datetime, end: datetime) -> list[dict[str, Any]]:
    path = path_for(RUNS_PATH, batch_export_id=export_id)
    query: dict[str, Any] = {"ordering": "data_interval_start", "start": iso(start), "end": iso(end)}
    runs: list[dict[str, Any]] = []
    for _ in range(_MAX_PAGES):
        page = await upstream.request("GET", path, query=query)
        runs += [r for r in (page or {}).get("results") or [] if isinstance(r, dict)]
        following = (page or {}).get("next")
        if not following:
            break
        query = {**query, "cursor": cursor_of(str(following))}
    return runs


async def _running_backfills(upstream: Upstream, export_id: UUID) -> list[dict[str, Any]]:
    page = await upstream.request("GET", path_for(BACKFILLS_PATH, batch_export_id=export_id))
    return [b for b in (page or {}).get("results") or [] if isinstance(b, dict) and b.get("status") in RUNNING]


async def find_gaps(upstream: Upstream, params: GapsParams, *, now: datetime | None = None) -> dict[str, Any]:
    """The gaps of one export in the window, merged into ranges, with what was left out and why."""
    now = now or datetime.now(UTC)
    start, end = params.window(now)
    export = await read_export(upstream, params)
    runs = await _runs_in(upstream, params.batch_export_id, start, end)
    backfills = await _running_backfills(upstream, params.batch_export_id)
    shape = grid(export, runs, start, end)  # end is never past now (GapsParams.window)
    if shape is None:
        raise NotPossible(f"Interval {export.get('interval')!r} is not one this server can step through.")
    decided = deciding_runs(runs)
    settled = now - _SETTLE
    points = [p for p in shape.starts if p in decided or p + shape.step <= settled]
    covering = [(moment(b.get("start_at")), moment(b.get("end_at")) or now) for b in backfills]
    paused_since = moment(export.get("last_paused_at")) if export.get("paused") else None
    tally = {"checked": len(points), "completed": 0, "running": 0, "in_running_backfill": 0, "while_paused": 0}
    gaps: list[tuple[datetime, str]] = []
    for point in points:
        run = decided.get(point)
        status = cell_status(run)
        if status in ("completed", "running"):
            tally[status] += 1
        elif any((s is None or s <= point) and point + shape.step <= e for s, e in covering):
            tally["in_running_backfill"] += 1
        elif run is None and export.get("paused") and (paused_since is None or point + shape.step > paused_since):
            tally["while_paused"] += 1
        else:
            gaps.append((point, status))
    ranges: list[dict[str, Any]] = []
    for point, status in gaps:
        last = ranges[-1] if ranges else None
        if last is not None and last["_end"] == point:
            last["_end"] = point + shape.step
        else:
            last = {"_start": point, "_end": point + shape.step, "runs": 0, "failed": 0, "missing": 0}
            ranges.append(last)
        last["runs"] += 1
        last[status] += 1
    shaped = [
        {"start_at": iso(r["_start"]), "end_at": iso(r["_end"])}
        | {k: r[k] for k in ("runs", "failed", "missing") if r[k]}
        for r in ranges
    ]
    return {
        "batch_export_id": str(params.batch_export_id),
        "name": export.get("name"),
        "interval": export.get("interval"),
        "window": {"start": iso(start), "end": iso(end)},
        "intervals": {k: v for k, v in tally.items() if v},
        "ranges": shaped,
        "_export": export,
        "_backfills": backfills,
    }


def _public(found: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in found.items() if not k.startswith("_")}


async def gaps(upstream: Upstream, params: GapsParams, request: Any = None) -> dict[str, Any]:
    found = _public(await find_gaps(upstream, params))
    if found["ranges"]:
        arguments = params.model_dump(mode="json", exclude_none=True)
        runs = sum(r.get("runs", 0) for r in found["ranges"])
        found["next"] = {
            "tool": "batch-export-gaps-backfill",
            "arguments": arguments,
            "does": f"backfills these {len(found['ranges'])} range(s), {runs} run(s), after a confirmation",
        }
    else:
        found["note"] = "No failed or missing intervals in this window."
    return found


def _plan(found: dict[str, Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    if not found["ranges"]:
        raise NotPossible(
            f"Export {found['name']!r} has no failed or missing intervals between {found['window']['start']} and "
            f"{found['window']['end']}: nothing to backfill."
        )
    running = len(found["_backfills"])
    room = BACKFILLS_PER_CALL - running
    if room <= 0:
        raise NotPossible(
            f"{running} backfill(s) of this export are still running; PostHog limits concurrent backfills. "
            "Wait for them (batch-export-wait), then call again: what they cover is left out."
        )
    export = found["_export"]
    sendable = []
    for planned in found["ranges"][:room]:
        start_at, end_at = effective_bounds(export, planned["start_at"], planned["end_at"])
        sendable.append({**planned, "start_at": start_at, "end_at": end_at})
    return sendable, found["ranges"][room:]


async def preview_gaps_backfill(upstream: Upstream, params: GapsParams) -> Preview:
    found = await find_gaps(upstream, params)
    now_ranges, later = _plan(found)
    export = found["_export"]
    runs = sum(r.get("runs", 0) for r in now_ranges)
    summary = (
        f"Backfill {len(now_ranges)} range(s) of export {export.get('name')!r} ({export.get('interval')}): "
        f"{runs} run(s), exactly the failed or missing intervals."
    )
    if later:
        summary += f" {len(later)} more range(s) stay for a later call (at most {BACKFILLS_PER_CALL} at a time)."
    plan = json.dumps(now_ranges, sort_keys=True)
    backfills = path_for(BACKFILLS_PATH, batch_export_id=params.batch_export_id)
    version = f"{export_version(export)}|{await newest_id(upstream, backfills)}|{hashlib.sha256(plan.encode()).hexdigest()[:12]}"
    details: dict[str, Any] = {"export": export_summary(export), "ranges": now_ranges, "runs": runs}
    # The window the gaps were looked for in, as the caller gave it: the person sees what was asked too.
    details["searched"] = {"start": params.start, "end": params.end or "now"}
    if later:
        details["left_for_later"] = later
    return Preview(summary=summary, details=details, version=version, target_id=str(params.batch_export_id))


async def backfill_gaps(upstream: Upstream, params: GapsParams, request: Any = None) -> dict[str, Any]:
    found = await find_gaps(upstream, params)
    now_ranges, later = _plan(found)
    path = path_for(BACKFILLS_PATH, batch_export_id=params.batch_export_id)
    started: list[dict[str, Any]] = []
    for index, planned in enumerate(now_ranges):
        start_at, end_at = planned["start_at"], planned["end_at"]
        try:
            answer = await upstream.request("POST", path, json={"start_at": start_at, "end_at": end_at})
        except Exception as error:
            if not started:
                raise
            # Some ranges started and PostHog refused the next one: say exactly which.
            return {
                "backfills": started,
                "not_started": now_ranges[index:] + later,
                "stopped": f"PostHog refused the next backfill: {error}",
            }
        started.append({"backfill_id": (answer or {}).get("backfill_id"), "start_at": start_at, "end_at": end_at})
        started[-1]["runs"] = planned.get("runs")
    result: dict[str, Any] = {"backfills": started}
    if later:
        result["not_started"] = later
        result["next"] = "Call batch-export-gaps-backfill again once these finish (batch-export-wait)."
    else:
        result["next"] = "Follow them with batch-export-wait (backfill_id)."
    return result


TOOLS = [
    ToolSpec(
        name="batch-export-gaps",
        title="Find missing intervals",
        description="An export's failed or never-run data intervals (default last 7 days) not since re-run, as ranges.",
        method="GET",
        path=RUNS_PATH,
        scope=READ,
        params=GapsParams,
        output=GapsAnswer,
        handler=gaps,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    ToolSpec(
        name="batch-export-gaps-backfill",
        title="Backfill missing intervals",
        description=f"Backfill exactly what batch-export-gaps finds (same arguments), {BACKFILLS_PER_CALL} ranges a call.",
        method="POST",
        path=BACKFILLS_PATH,
        scope=WRITE,
        params=GapsParams,
        output=BackfilledGaps,
        handler=backfill_gaps,
        preview=preview_gaps_backfill,
        read_only=False,
        destructive=False,
        idempotent=False,
    ),
]
