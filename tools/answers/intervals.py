"""Data intervals of an export: the grid its schedule defines, and what its runs made of each one.

Health cells and gap finding both need the same answer to "what happened to the interval starting
at T": the newest run created for it decides (a successful retry or backfill run replaces a failure).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from tools.backfills import INTERVAL_SECONDS
from tools.times import to_instant

FAILED = frozenset({"Failed", "FailedRetryable", "FailedBilling", "Terminated", "TimedOut"})
RUNNING = frozenset({"Running", "Starting"})
COMPLETED = frozenset({"Completed"})


def moment(value: Any) -> datetime | None:
    """A PostHog timestamp as an aware datetime, or None when absent or unreadable."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return to_instant(value)
    except ValueError:
        return None


def iso(value: datetime) -> str:
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def cell_status(run: dict[str, Any] | None) -> str:
    """One interval's status from the run that decides it: completed, failed, running or missing."""
    if run is None:
        return "missing"
    status = run.get("status")
    if status in COMPLETED:
        return "completed"
    if status in FAILED:
        return "failed"
    if status in RUNNING:
        return "running"
    return "missing"  # Cancelled (or a status this code does not know): nothing was exported


def deciding_runs(runs: Iterable[dict[str, Any]]) -> dict[datetime, dict[str, Any]]:
    """For each data interval start, the newest run created for it."""
    chosen: dict[datetime, dict[str, Any]] = {}
    for run in runs:
        start = moment(run.get("data_interval_start"))
        if start is None:
            continue
        held = chosen.get(start)
        if held is None or str(run.get("created_at") or "") > str(held.get("created_at") or ""):
            chosen[start] = run
    return chosen


@dataclass(frozen=True)
class Grid:
    """Interval starts, oldest first, of one export between two moments."""

    step: timedelta
    starts: tuple[datetime, ...]


def grid(export: dict[str, Any], runs: Iterable[dict[str, Any]], start: datetime, end: datetime) -> Grid | None:
    """The whole data intervals of `export` inside [start, end), aligned like its runs.

    Alignment comes from a run PostHog made (daily exports start at their offset hour in their
    timezone); without any run, from the epoch plus `offset_hour`. None for an interval this code
    cannot step (none today).
    """
    seconds = INTERVAL_SECONDS.get(str(export.get("interval")))
    if not seconds:
        return None
    step = timedelta(seconds=seconds)
    anchor = next((m for m in (moment(r.get("data_interval_start")) for r in runs) if m is not None), None)
    if anchor is None:
        anchor = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(hours=int(export.get("offset_hour") or 0))
    # First grid point at or after start.
    first = anchor + step * -((anchor - start) // step)
    if first < start:
        first += step
    created = moment(export.get("start_at")) or moment(export.get("created_at"))
    starts = []
    point = first
    while point + step <= end:
        if created is None or point + step > created:
            starts.append(point)
        point += step
    return Grid(step=step, starts=tuple(starts))


def short_error(text: Any, limit: int = 120) -> str | None:
    """An error message on one line, cut to `limit` characters."""
    if not isinstance(text, str) or not text.strip():
        return None
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


# A run is created a moment after its interval ends: an interval younger than this without a run is
# not a gap yet (one whose run already failed is).
SETTLE = timedelta(minutes=15)


@dataclass
class Gaps:
    """What the runs made of an export's intervals in a window: the gaps merged into ranges (oldest
    first, each `{"start", "end", "runs", "failed", "missing"}` with datetimes), a tally of the
    intervals looked at, and the interval starts the runs seen could not decide (`unknown`)."""

    step: timedelta
    ranges: list[dict[str, Any]]
    tally: dict[str, int]
    unknown: list[datetime]


def find_ranges(
    export: dict[str, Any],
    runs: list[dict[str, Any]],
    covering: list[tuple[datetime | None, datetime]],
    start: datetime,
    end: datetime,
    now: datetime,
    *,
    seen_since: datetime | None = None,
) -> Gaps | None:
    """The gap rule (docs/posthog-api.md, "Runs"): an interval is a gap when the newest run made for it
    failed, or no run was made and it settled, unless a running backfill covers it (`covering`) or the
    export has been paused since before it ended (an unpause with backfill is the tool for that).

    `seen_since`, when the runs are only those created since then (an export's embedded latest runs),
    leaves undecided each interval whose run, if one exists, was made before it: those are `unknown`.
    None for an interval this code cannot step.
    """
    shape = grid(export, runs, start, end)
    if shape is None:
        return None
    decided = deciding_runs(runs)
    settled = now - SETTLE
    points = [p for p in shape.starts if p in decided or p + shape.step <= settled]
    paused_since = moment(export.get("last_paused_at")) if export.get("paused") else None
    tally = {"checked": 0, "completed": 0, "running": 0, "in_running_backfill": 0, "while_paused": 0}
    gaps: list[tuple[datetime, str]] = []
    unknown: list[datetime] = []
    for point in points:
        run = decided.get(point)
        paused_then = (
            run is None and export.get("paused") and (paused_since is None or point + shape.step > paused_since)
        )
        if run is None and not paused_then and seen_since is not None and point + shape.step <= seen_since:
            unknown.append(point)  # its run, if it has one, is older than the runs in view
            continue
        tally["checked"] += 1
        status = cell_status(run)
        if status in ("completed", "running"):
            tally[status] += 1
        elif any((s is None or s <= point) and point + shape.step <= e for s, e in covering):
            tally["in_running_backfill"] += 1
        elif paused_then:
            tally["while_paused"] += 1
        else:
            gaps.append((point, status))
    ranges: list[dict[str, Any]] = []
    for point, status in gaps:
        last = ranges[-1] if ranges else None
        if last is not None and last["end"] == point:
            last["end"] = point + shape.step
        else:
            last = {"start": point, "end": point + shape.step, "runs": 0, "failed": 0, "missing": 0}
            ranges.append(last)
        last["runs"] += 1
        last[status] += 1
    return Gaps(step=shape.step, ranges=ranges, tally={k: v for k, v in tally.items() if v}, unknown=unknown)


def covered_by(backfills: list[dict[str, Any]], now: datetime) -> list[tuple[datetime | None, datetime]]:
    """The ranges running backfills are filling (an open end runs to now)."""
    return [(moment(b.get("start_at")), moment(b.get("end_at")) or now) for b in backfills]
