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
