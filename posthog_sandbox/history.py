"""Thirty days of past runs and their log lines, computed instead of stored (the large seed, docs/sandbox.md).

A project of real size has hundreds of thousands of past runs; writing them at start-up would take far
longer than the few seconds a sandbox may take to start. An export seeded with a history profile (the
`_history` field) instead has every run up to the profile's `until` instant defined by a pure function of the
export and the schedule tick: the same ids, statuses, record counts, errors and log lines on every call and
every start. Runs after `until` are made and stored by the simulation as for any export, so the two never
overlap. Past runs are finished, so nothing ever needs to change them: a retry makes a new backfill, and a
cancel or a delete only touches runs that are still active.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from .destinations import HISTORY_ERRORS, INTERMITTENT_ERRORS
from .timeutil import INTERVALS, floor_to_interval, from_db, str_range_bound

HISTORY = "_history"
# Recently computed runs (export id, tick) -> run: list pages and log reads meet the same runs again and again.
_RUNS: OrderedDict[tuple[str, int, datetime, str, datetime], dict[str, Any]] = OrderedDict()
_RUNS_KEPT = 50_000
PATTERNS = ("healthy", "failing_since", "intermittent", "failing_then_paused", "paused")
INTERMITTENT_FAILURE_PERCENT = 25


def profile(export: dict[str, Any]) -> dict[str, Any] | None:
    return export.get(HISTORY)


def _mix(*parts: int) -> int:
    """A well-spread non-negative value from integers, the same in every process: Python hashes tuples of
    ints without the per-process salt it gives strings."""
    return hash(parts) & 0xFFFFFFFFFFFFFFFF


def _uuid(seed: int, tick: int, salt: int) -> str:
    """A UUIDv7-shaped id: the run's creation milliseconds, then bits only this run has."""
    high, low = _mix(seed, tick, salt), _mix(salt, seed, tick)
    ms = tick * 1000
    value = (ms << 80) | (0x7 << 76) | ((high & 0xFFF) << 64) | (0b10 << 62) | (low & ((1 << 62) - 1))
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


class History:
    """The computed past of one export (see the module docstring)."""

    def __init__(self, export: dict[str, Any]) -> None:
        h = export[HISTORY]
        self.export = export
        self.seed = int(h["seed"])
        self.pattern = h["pattern"]
        self.interval = export["interval"]
        self.step = INTERVALS[self.interval]
        self.first = from_db(h["from"])
        self.until = from_db(h["until"])
        self.failing_since = _parse(h.get("failing_since"))
        paused = _parse(h.get("paused_at"))
        self.last_tick = floor_to_interval(min(self.until, paused) if paused else self.until, self.interval)
        self.rate = float(h["rate"])  # records per hour at the daily average
        self.error = h.get("error")
        self.destination = export["destination"]["type"]

    # ------------------------------------------------------------------------------------------ ticks

    def ticks_desc(self, lo: datetime | None = None, hi: datetime | None = None) -> Iterator[datetime]:
        """Ticks (run creation instants) within [lo, hi] and the history, newest first."""
        tick = self.last_tick if hi is None or hi >= self.last_tick else floor_to_interval(hi, self.interval)
        bottom = self.first if lo is None or lo < self.first else lo
        while tick >= bottom:
            yield tick
            tick -= self.step

    def count(self) -> int:
        if self.last_tick < self.first:
            return 0
        return int((self.last_tick - self.first) / self.step) + 1

    # ------------------------------------------------------------------------------------------ runs

    def _status(self, tick: datetime, t: int) -> tuple[str, str | None]:
        failing = self.pattern in ("failing_since", "failing_then_paused")
        if failing and self.failing_since is not None and tick >= self.failing_since:
            return "Failed", self.error or HISTORY_ERRORS[self.destination][0]
        if self.pattern == "intermittent" and _mix(self.seed, t, 11) % 100 < INTERMITTENT_FAILURE_PERCENT:
            errors = INTERMITTENT_ERRORS.get(self.destination) or HISTORY_ERRORS[self.destination]
            return "Failed", errors[_mix(self.seed, t, 12) % len(errors)]
        return "Completed", None

    def _records(self, start: datetime, t: int) -> int:
        hours = self.step / timedelta(hours=1)
        # traffic follows the day: quiet at night (UTC), busy in the afternoon
        daily = 0.35 + 0.65 * (1 - abs(((start.hour + 9) % 24) - 12) / 12) if hours < 24 else 1.0
        jitter = 0.8 + (_mix(self.seed, t, 13) % 4000) / 10000
        return max(0, int(self.rate * hours * daily * jitter))

    def run(self, tick: datetime) -> dict[str, Any]:
        """The run created at `tick` (callers never change it: the same dict may be handed out again)."""
        # everything a run depends on: two sandboxes in one process may share an export id, not a history
        key = (self.export["id"], self.seed, self.until, self.destination, tick)
        cached = _RUNS.get(key)
        if cached is None:
            cached = _RUNS[key] = self._make_run(tick)
            if len(_RUNS) > _RUNS_KEPT:
                _RUNS.popitem(last=False)
        else:
            _RUNS.move_to_end(key)
        return cached

    def _make_run(self, tick: datetime) -> dict[str, Any]:
        t = int(tick.timestamp())
        start = tick - self.step
        status, error = self._status(tick, t)
        records = self._records(start, t)
        duration = self._duration(t)
        finished = tick + duration
        return {
            "id": _uuid(self.seed, t, 1),
            "status": status,
            "records_completed": records if status == "Completed" else None,
            "records_failed": None,
            "latest_error": error,
            "data_interval_start": start,
            "data_interval_end": tick,
            "cursor": None,
            "created_at": tick,
            "finished_at": finished,
            "last_updated_at": finished,
            "records_total_count": records,
            "bytes_exported": records * (150 + _mix(self.seed, 14) % 250) if status == "Completed" else None,
            "batch_export": self.export["id"],
            "batch_export_on_demand": None,
            "backfill": None,
            "_instance_id": _uuid(self.seed, t, 2),
        }

    def _duration(self, t: int) -> timedelta:
        # shorter than the interval, so each run's log lines come before the next run's
        longest = min(1800.0, self.step.total_seconds() - 60)
        return timedelta(seconds=40 + _mix(self.seed, t, 15) % int(longest - 40))

    def runs(
        self, lo: datetime | None = None, hi: datetime | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Runs created within [lo, hi], newest first (at most `limit`)."""
        return [self.run(tick) for tick in itertools.islice(self.ticks_desc(lo, hi), limit)]

    # ------------------------------------------------------------------------------------------ logs

    def logs_desc(self, lo: datetime | None = None, hi: datetime | None = None) -> Iterator[dict[str, Any]]:
        """Log rows with a timestamp within [lo, hi], newest first (two per run: start and finish)."""
        first_tick = None if lo is None else lo - timedelta(seconds=1800)
        for tick in self.ticks_desc(first_tick, hi):
            run = self.run(tick)
            rng = f"{str_range_bound(run['data_interval_start'])} - {str_range_bound(run['data_interval_end'])}"
            if run["status"] == "Completed":
                level = "INFO"
                message = f"Batch export for range {rng} finished successfully with {run['records_completed']} records exported"
            else:
                level = "ERROR"
                message = f"Batch export for range {rng} failed with a non-recoverable error: {run['latest_error']}"
            started = tick + timedelta(seconds=30)
            for timestamp, row_level, row_message in (
                (run["finished_at"], level, message),
                (started, "INFO", f"Starting batch export for range {rng}"),
            ):
                if (hi is None or timestamp <= hi) and (lo is None or timestamp >= lo):
                    yield {
                        "log_source_id": self.export["id"],
                        "instance_id": run["_instance_id"],
                        "timestamp": timestamp,
                        "level": row_level,
                        "message": row_message,
                    }
            if lo is not None and started < lo:
                return


def _parse(value: str | None) -> datetime | None:
    return from_db(value) if value else None


def of(export: dict[str, Any]) -> History | None:
    return History(export) if export.get(HISTORY) else None
