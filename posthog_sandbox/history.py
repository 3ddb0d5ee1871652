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
_RUNS: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
_RUNS_KEPT = 50_000
PATTERNS = ("healthy", "failing_since", "intermittent", "failing_then_paused", "paused")
INTERMITTENT_FAILURE_PERCENT = 25
# A few Completed runs of an export with the `records_failed` scene report failed records (one run in three).
RECORDS_FAILED_ONE_IN = 3
# The workers' own lines (docs/posthog-api.md, "Runs": auto-pause and billing).
AUTO_PAUSED_MESSAGE = (
    "Batch export was automatically paused due to exceeding failure threshold and exhausting all automated "
    "retries.The batch export can be unpaused after addressing any errors."
)
BILLING_MESSAGE = "Batch export run failed due to exceeding billing limits. No data has been exported."


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
        self.offset = export.get("interval_offset")  # a daily export's offset_hour, in seconds
        self.last_tick = floor_to_interval(
            min(self.until, paused) if paused else self.until, self.interval, self.offset
        )
        self.rate = float(h["rate"])  # records per hour at the daily average
        self.error = h.get("error")
        self.destination = export["destination"]["type"]
        # The scenes (posthog_sandbox/scenes.py): zero records since a date or always, failed records on
        # some Completed runs, the project's billing window, and who paused the export.
        self.silent_since = _parse(h.get("silent_since"))
        self.never = bool(h.get("never"))
        self.records_failed = bool(h.get("records_failed"))
        billing = h.get("billing")
        self.billing = (from_db(billing[0]), from_db(billing[1])) if billing else None
        self.paused_by = h.get("paused_by")
        self.paused_at = paused
        # Outage windows of its destination (posthog_sandbox/outages.py): part of what a run depends on.
        self.outages = tuple(
            (from_db(o["start"]), from_db(o["end"]), str(o["error"])) for o in export.get("_outages") or ()
        )
        # everything else a run depends on, for the cache key
        self.variant = (
            self.pattern,
            self.error,
            self.failing_since,
            self.rate,
            self.silent_since,
            self.never,
            self.records_failed,
            self.billing,
            self.outages,
        )

    # ------------------------------------------------------------------------------------------ ticks

    def ticks_desc(self, lo: datetime | None = None, hi: datetime | None = None) -> Iterator[datetime]:
        """Ticks (run creation instants) within [lo, hi] and the history, newest first."""
        tick = (
            self.last_tick if hi is None or hi >= self.last_tick else floor_to_interval(hi, self.interval, self.offset)
        )
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
        # PostHog checks the team's billing first, when the run starts: nothing else happens then.
        if self.billing is not None and self.billing[0] <= tick < self.billing[1]:
            return "FailedBilling", None
        for start, end, error in self.outages:
            if start <= tick < end:
                return "Failed", error
        failing = self.pattern in ("failing_since", "failing_then_paused")
        if failing and self.failing_since is not None and tick >= self.failing_since:
            return "Failed", self.error or HISTORY_ERRORS[self.destination][0]
        if self.pattern == "intermittent" and _mix(self.seed, t, 11) % 100 < INTERMITTENT_FAILURE_PERCENT:
            errors = INTERMITTENT_ERRORS.get(self.destination) or HISTORY_ERRORS[self.destination]
            return "Failed", errors[_mix(self.seed, t, 12) % len(errors)]
        return "Completed", None

    def _records(self, start: datetime, t: int) -> int:
        if self.never or (self.silent_since is not None and start + self.step >= self.silent_since):
            return 0  # the source had nothing for it: the run still completes (a silent failure)
        hours = self.step / timedelta(hours=1)
        # traffic follows the day: quiet at night (UTC), busy in the afternoon
        daily = 0.35 + 0.65 * (1 - abs(((start.hour + 9) % 24) - 12) / 12) if hours < 24 else 1.0
        jitter = 0.8 + (_mix(self.seed, t, 13) % 4000) / 10000
        return max(0, int(self.rate * hours * daily * jitter))

    def run(self, tick: datetime) -> dict[str, Any]:
        """The run created at `tick` (callers never change it: the same dict may be handed out again)."""
        # everything a run depends on: two sandboxes in one process may share an export id, not a history
        key = (self.export["id"], self.seed, self.until, self.destination, self.variant, tick)
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
        finished: datetime | None = tick + duration
        completed = records_failed = total = bytes_exported = None
        if status == "Completed":
            total, completed = records, records
            if self.records_failed and records and _mix(self.seed, t, 16) % RECORDS_FAILED_ONE_IN == 0:
                records_failed = max(1, records * (1 + _mix(self.seed, t, 17) % 15) // 100)
                completed = records - records_failed
            bytes_exported = completed * (150 + _mix(self.seed, 14) % 250)
        elif status == "FailedBilling":
            finished = None  # the run is made already failed; nothing finishes it
        else:
            total = records
        return {
            "id": _uuid(self.seed, t, 1),
            "status": status,
            "records_completed": completed,
            "records_failed": records_failed,
            "latest_error": error,
            "data_interval_start": start,
            "data_interval_end": tick,
            "cursor": None,
            "created_at": tick,
            "finished_at": finished,
            "last_updated_at": finished or tick,
            "records_total_count": total,
            "bytes_exported": bytes_exported,
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
        """Log rows with a timestamp within [lo, hi], newest first (two per run: start and finish; the
        auto-pause warning after the run that tipped it)."""
        first_tick = None if lo is None else lo - timedelta(seconds=1800)
        for tick in self.ticks_desc(first_tick, hi):
            run = self.run(tick)
            rng = f"{str_range_bound(run['data_interval_start'])} - {str_range_bound(run['data_interval_end'])}"
            started = tick + timedelta(seconds=30)
            rows: list[tuple[datetime, str, str]] = []
            if self.paused_by == "posthog" and tick == self.last_tick and self.paused_at is not None:
                rows.append((self.paused_at, "WARNING", AUTO_PAUSED_MESSAGE))
            if run["status"] == "Completed":
                message = f"Batch export for range {rng} finished successfully with {run['records_completed']} records exported"
                rows.append((run["finished_at"], "INFO", message))
            elif run["status"] == "FailedBilling":
                rows.append((started + timedelta(seconds=1), "WARNING", BILLING_MESSAGE))
            else:
                message = f"Batch export for range {rng} failed with a non-recoverable error: {run['latest_error']}"
                rows.append((run["finished_at"], "ERROR", message))
            rows.append((started, "INFO", f"Starting batch export for range {rng}"))
            for timestamp, row_level, row_message in rows:
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
