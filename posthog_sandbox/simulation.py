"""The simulated workers: scheduled runs, backfills and their log rows, advanced by the sandbox clock.

Everything is a closed-form function of time, so catching up after any clock jump is deterministic:

- A run created at `c` is `Starting`, becomes `Running` at `c + 30 s` (INFO "Starting batch export ...")
  and finishes at `c + 120 s` as `Completed`, `Failed` or `FailedRetryable` depending on its export's
  outcome (docs/posthog-api.md, "Runs").
- A scheduled run is created at each schedule tick (the interval end) of an unpaused, non-deleted export.
- A backfill created at `T` is `Starting`, becomes `Running` at `T + 10 s`, then creates the run of its
  k-th whole interval at `T + 10 s + k × 120 s` (one at a time, in order), and is `Completed` at
  `T + 10 s + N × 120 s` for N intervals (docs/posthog-api.md, "Backfills").
"""

from __future__ import annotations

import math
import time
import uuid
import zlib
from datetime import datetime, timedelta
from typing import Any

from . import outages
from .destinations import DEFAULT_ERRORS, DEFAULT_RETRYABLE_ERROR, INTERMITTENT_ERRORS
from .store import Store
from .timeutil import INTERVALS, floor_to_interval, step, str_range_bound

RUN_RUNNING_AFTER = timedelta(seconds=30)
RUN_DURATION = timedelta(seconds=120)
BACKFILL_START_DELAY = timedelta(seconds=10)
MAX_CATCHUP_TICKS = 1000
FINISHED_RUN_STATUSES = ("Completed", "Failed")


class Clock:
    """Frozen when `speed == 0`; otherwise runs `speed` times real time. Never goes backwards."""

    def __init__(self, start: datetime, speed: float):
        self.speed = speed
        self._base = start
        self._real = time.monotonic()

    def now(self) -> datetime:
        if not self.speed:
            return self._base
        return self._base + timedelta(seconds=(time.monotonic() - self._real) * self.speed)

    def set(self, value: datetime) -> None:
        self._base = max(value, self.now())
        self._real = time.monotonic()


# ---------------------------------------------------------------------------------------------- outcomes


def default_outcome() -> dict[str, Any]:
    return {"outcome": "succeed", "error": None, "records": None}


def records_for(export: dict[str, Any], start: datetime | None) -> int:
    """A fake data source: a stable record count per export and interval."""
    override = export["_outcome"].get("records")
    if override is not None:
        return int(override)
    key = f"{export['id']}|{start.isoformat() if start else 'START'}"
    base = 200 + zlib.crc32(key.encode()) % 4800
    return base * (24 if export["interval"] == "day" else 168 if export["interval"] == "week" else 1)


# ---------------------------------------------------------------------------------------------- creation


def next_tick_after(export: dict[str, Any], moment: datetime) -> datetime:
    interval = export["interval"]
    tick = floor_to_interval(moment, interval, export.get("interval_offset"), export.get("timezone") or "UTC")
    return step(tick, interval, export.get("timezone") or "UTC")


def new_run(
    store: Store,
    export: dict[str, Any],
    start: datetime | None,
    end: datetime,
    created_at: datetime,
    backfill_id: str | None = None,
) -> dict[str, Any]:
    run = {
        "id": str(uuid.uuid4()),
        "status": "Starting",
        "records_completed": None,
        "records_failed": None,
        "latest_error": None,
        "data_interval_start": start,
        "data_interval_end": end,
        "cursor": None,
        "created_at": created_at,
        "finished_at": None,
        "last_updated_at": created_at,
        "records_total_count": None,
        "bytes_exported": None,
        "batch_export": export["id"],
        "batch_export_on_demand": None,
        "backfill": backfill_id,
        "_instance_id": str(uuid.uuid4()),
    }
    store.put_run(run)
    return run


def new_backfill(
    store: Store,
    export: dict[str, Any],
    start: datetime | None,
    end: datetime | None,
    now: datetime,
    backfill_id: str | None = None,
) -> dict[str, Any]:
    backfill = {
        "id": backfill_id or str(uuid.uuid4()),
        "start_at": start,
        "end_at": end,
        "status": "Starting",
        "created_at": now,
        "finished_at": None,
        "last_updated_at": now,
        "total_records_count": None,
        "adjusted_start_at": None,
        "team": export["team_id"],
        "batch_export": export["id"],
        "_next_index": 0,
        "_running_at": None,
        "_effective_end": None,
    }
    store.put_backfill(backfill)
    return backfill


def backfill_intervals(backfill: dict[str, Any], export: dict[str, Any]) -> list[tuple[datetime, datetime]]:
    """Whole intervals of `[start, end)`; a trailing partial interval is dropped."""
    start = backfill["adjusted_start_at"] or backfill["start_at"]
    end = backfill["end_at"] or backfill["_effective_end"]
    if start is None or end is None:
        return []
    tz = export.get("timezone") or "UTC"
    out: list[tuple[datetime, datetime]] = []
    cursor = start
    while True:
        nxt = step(cursor, export["interval"], tz)
        if nxt > end:
            return out
        out.append((cursor, nxt))
        cursor = nxt


# ---------------------------------------------------------------------------------------------- cancel


def cancel_run(store: Store, run: dict[str, Any], now: datetime) -> None:
    run["status"] = "Cancelled"
    run["last_updated_at"] = now
    store.put_run(run)
    store.add_log(
        run["batch_export"],
        now,
        "INFO",
        f"Batch export for range {str_range_bound(run['data_interval_start'])} - "
        f"{str_range_bound(run['data_interval_end'])} was cancelled",
        run["_instance_id"],
    )


def cancel_backfill(store: Store, backfill: dict[str, Any], now: datetime, cancel_runs: bool) -> None:
    backfill["status"] = "Cancelled"
    backfill["finished_at"] = now
    backfill["last_updated_at"] = now
    store.put_backfill(backfill)
    if cancel_runs:
        for run in store.list_runs(backfill_id=backfill["id"], active_only=True):
            cancel_run(store, run, now)


# ---------------------------------------------------------------------------------------------- catch up


def catch_up(store: Store, now: datetime, generation: int, earliest_data: datetime) -> None:
    """Bring every export, run and backfill to the state they have at `now`."""
    exports: dict[str, dict[str, Any]] = {}
    for export in store.exports_due(now):
        _schedule(store, export, now)
        exports[export["id"]] = export

    def export_of(export_id: str) -> dict[str, Any]:
        if export_id not in exports:
            found = store.get_export(export_id)
            assert found is not None, export_id
            exports[export_id] = found
        return exports[export_id]

    active_backfills = store.list_backfills(active_only=True)
    for backfill in active_backfills:
        _advance_backfill(store, backfill, export_of(backfill["batch_export"]), now, generation, earliest_data)
    for run in store.list_runs(active_only=True):
        _advance_run(store, run, export_of(run["batch_export"]), now)
    for backfill in active_backfills:
        if backfill["status"] == "Running":
            _maybe_finish_backfill(store, backfill, export_of(backfill["batch_export"]), now, generation)


def _schedule(store: Store, export: dict[str, Any], now: datetime) -> None:
    tick = export.get("next_tick")
    if tick is None or tick > now:
        return
    interval, tz = export["interval"], export.get("timezone") or "UTC"
    if export.get("deleted") or export["paused"]:
        export["next_tick"] = next_tick_after(export, now)
        store.put_export(export)
        return
    oldest = now - MAX_CATCHUP_TICKS * INTERVALS[interval]
    if tick < oldest:
        tick = next_tick_after(export, oldest)
    while tick <= now:
        end_at, start_at = export.get("end_at"), export.get("start_at")
        if (start_at is None or tick >= start_at) and (end_at is None or tick <= end_at):
            start = floor_to_interval(tick - timedelta(microseconds=1), interval, export.get("interval_offset"), tz)
            new_run(store, export, start, tick, tick)
        tick = step(tick, interval, tz)
    export["next_tick"] = tick
    store.put_export(export)


def _advance_run(store: Store, run: dict[str, Any], export: dict[str, Any], now: datetime) -> None:
    running_at = run["created_at"] + RUN_RUNNING_AFTER
    finish_at = run["created_at"] + RUN_DURATION
    rng = f"{str_range_bound(run['data_interval_start'])} - {str_range_bound(run['data_interval_end'])}"
    changed = False
    if run["status"] == "Starting" and running_at <= now:
        run["status"] = "Running"
        run["last_updated_at"] = running_at
        store.add_log(export["id"], running_at, "INFO", f"Starting batch export for range {rng}", run["_instance_id"])
        changed = True
    if run["status"] == "Running" and finish_at <= now:
        outcome = export["_outcome"]
        records = records_for(export, run["data_interval_start"])
        run["records_total_count"] = records
        run["finished_at"] = finish_at
        run["last_updated_at"] = finish_at
        destination = export["destination"]["type"]
        # a destination outage (posthog_sandbox/outages.py) on when the run started decides before the outcome
        outage_error = outages.error_at(export, run["created_at"])
        if outage_error is not None:
            outcome = {"outcome": "fail", "error": outage_error, "records": outcome.get("records")}
        failing = outcome["outcome"] == "fail" or (
            outcome["outcome"] == "intermittent" and zlib.crc32(f"{export['id']}|{rng}".encode()) % 4 == 0
        )
        if failing:
            error = outcome.get("error") or (
                INTERMITTENT_ERRORS.get(destination, [DEFAULT_RETRYABLE_ERROR])[0]
                if outcome["outcome"] == "intermittent"
                else DEFAULT_ERRORS.get(destination, "Unknown error")
            )
            run.update(status="Failed", latest_error=error)
            store.add_log(
                export["id"],
                finish_at,
                "ERROR",
                f"Batch export for range {rng} failed with a non-recoverable error: {error}",
                run["_instance_id"],
            )
        elif outcome["outcome"] == "fail_retryable":
            error = outcome.get("error") or DEFAULT_RETRYABLE_ERROR
            run.update(status="FailedRetryable", latest_error=error)
            store.add_log(
                export["id"],
                finish_at,
                "WARNING",
                f"Batch export for range {rng} failed with an error that can be retried: {error}",
                run["_instance_id"],
            )
        else:
            run.update(status="Completed", records_completed=records, bytes_exported=records * 212)
            store.add_log(
                export["id"],
                finish_at,
                "INFO",
                f"Batch export for range {rng} finished successfully with {records} records exported",
                run["_instance_id"],
            )
        changed = True
    if changed:
        store.put_run(run)


def _advance_backfill(
    store: Store,
    backfill: dict[str, Any],
    export: dict[str, Any],
    now: datetime,
    generation: int,
    earliest_data: datetime,
) -> None:
    if backfill["status"] == "Starting":
        running_at = backfill["created_at"] + BACKFILL_START_DELAY
        if running_at > now:
            return
        interval, tz = export["interval"], export.get("timezone") or "UTC"
        if backfill["end_at"] is None:
            backfill["_effective_end"] = floor_to_interval(
                backfill["created_at"], interval, export.get("interval_offset"), tz
            )
        earliest = floor_to_interval(earliest_data, interval, export.get("interval_offset"), tz)
        if backfill["start_at"] is None or backfill["start_at"] < earliest:
            if generation >= 3:
                backfill["adjusted_start_at"] = earliest
            elif backfill["start_at"] is None:
                backfill["start_at"] = earliest
        backfill["_running_at"] = running_at
        backfill["last_updated_at"] = running_at
        estimate = sum(records_for(export, s) for s, _ in backfill_intervals(backfill, export))
        if export["_outcome"].get("records") == 0:
            # No data in range: straight to Completed with no runs (docs/posthog-api.md, "Backfills").
            backfill.update(
                status="Completed", finished_at=running_at, total_records_count=0 if generation >= 3 else None
            )
            store.put_backfill(backfill)
            return
        backfill["status"] = "Running"
        if generation >= 3:
            backfill["total_records_count"] = estimate
    if backfill["status"] != "Running":
        return
    intervals = backfill_intervals(backfill, export)
    while backfill["_next_index"] < len(intervals):
        created = backfill["_running_at"] + backfill["_next_index"] * RUN_DURATION
        if created > now:
            break
        start, end = intervals[backfill["_next_index"]]
        new_run(store, export, start, end, created, backfill["id"])
        backfill["_next_index"] += 1
    store.put_backfill(backfill)


def _maybe_finish_backfill(
    store: Store, backfill: dict[str, Any], export: dict[str, Any], now: datetime, generation: int
) -> None:
    intervals = backfill_intervals(backfill, export)
    done_at = backfill["_running_at"] + len(intervals) * RUN_DURATION
    if backfill["_next_index"] < len(intervals) or done_at > now:
        return
    backfill.update(status="Completed", finished_at=done_at, last_updated_at=done_at)
    if generation >= 3:
        backfill["total_records_count"] = sum(
            (r["records_completed"] or 0) + (r["records_failed"] or 0)
            for r in store.list_runs(backfill_id=backfill["id"])
            if r["status"] == "Completed"
        )
    store.put_backfill(backfill)
    if backfill["end_at"] is None and export["paused"] and not export.get("deleted"):
        # An open-ended backfill unpauses its export once it has caught up (docs/posthog-api.md, "Backfills").
        export.update(paused=False, last_updated_at=done_at, next_tick=next_tick_after(export, done_at))
        store.put_export(export)


# ---------------------------------------------------------------------------------------------- progress


def progress(
    store: Store, backfill: dict[str, Any], export: dict[str, Any] | None, now: datetime
) -> dict[str, Any] | None:
    """`progress` as the API computes it (docs/posthog-api.md, "Backfills")."""
    status = backfill["status"]
    if status not in ("Completed", "Running", "Starting"):
        return None
    start = backfill.get("adjusted_start_at") or backfill["start_at"]
    if start is None:
        expected = 1
    elif backfill.get("total_records_count") == 0:
        expected = 0
    else:
        end = backfill["end_at"] or backfill["finished_at"] or now
        interval = INTERVALS[export["interval"]] if export else INTERVALS["hour"]
        expected = max(0, math.ceil((end - start) / interval))
    if status == "Completed":
        return {"total_runs": expected, "finished_runs": expected, "progress": 1.0}
    if start is None or not expected:
        return None
    finished = sum(1 for r in store.list_runs(backfill_id=backfill["id"]) if r["status"] in FINISHED_RUN_STATUSES)
    total = max(expected, finished)
    return {"total_runs": total, "finished_runs": finished, "progress": round(finished / total, 1)}
