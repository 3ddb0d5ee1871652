"""The fleet-scale scenes of the large seed (docs/sandbox.md, "Scenes"), and the oracle that tells them.

`large_seed.py` gives every export one of the base patterns (healthy, failing since a date, failing now and then,
failing then paused, paused). This module picks, among those, the exports that play the scenes a fleet shows
and that the base patterns do not: silent failures (runs still Completed, with 0 records, on an export whose own
history exports records), an export that never exported a record, Completed runs that report failed records,
a failure long past the 10 runs an export embeds, an export paused by PostHog after failing (as the workers
mark it) beside ones a person paused, and a window when the whole project was over its billing limit (every
run then `FailedBilling`). The choices come from their own random stream, so the base patterns and their
proportions stay what they were for the same N.

Everything is written into each export's history profile (`history.py` reads it), so the oracle reads the
same facts back from the stored exports: `describe()` answers `GET /_sandbox/scenes`.
"""

from __future__ import annotations

import math
import random
from datetime import datetime, timedelta
from typing import Any

from .history import HISTORY, History
from .store import Store
from .timeutil import INTERVALS, drf, floor_to_interval, from_db, to_db

# PostHog's run finish pauses an export once its last runs hold enough failures (docs/posthog-api.md, "Runs"):
# the seed pauses an auto-paused export right after its 10th consecutive Failed run, which meets the
# threshold under every check window the source shows for the intervals it picks (hourly, every 5 minutes).
AUTO_PAUSE_FAILURES = 10
AUTO_PAUSE_INTERVALS = ("hour", "every 5 minutes")
LONG_FAILURE_DAYS = 12
# The project's billing window: from this many hours before now, for this many hours.
BILLING_STARTS_HOURS_AGO = 52
BILLING_HOURS = 9
SILENT_INTERVALS = ("hour", "every 5 minutes", "every 15 minutes")


def _share(n: int, fraction: float) -> int:
    """How many exports play a scene: a fraction of N, and at least one once the project has 20."""
    return max(round(n * fraction), 1 if n >= 20 else 0)


def apply(exports: list[dict[str, Any]], n: int, now: datetime) -> None:
    """Give the scenes to some of the large seed's exports (before they are stored); the same N, the same
    choices."""
    rng = random.Random(f"posthog-sandbox-scenes-{n}")
    by_pattern: dict[str, list[dict[str, Any]]] = {}
    for export in exports:
        by_pattern.setdefault(export[HISTORY]["pattern"], []).append(export)

    # the whole project over its billing limit for a few hours, two days ago: every run then FailedBilling
    billing_start = (now - timedelta(hours=BILLING_STARTS_HOURS_AGO)).replace(minute=0, second=0, microsecond=0)
    billing = [to_db(billing_start), to_db(billing_start + timedelta(hours=BILLING_HOURS))]
    for export in exports:
        export[HISTORY]["billing"] = billing

    # zero records: silent since a date (their own past exported records), or never anything at all
    old_enough = now - timedelta(days=10)
    healthy = [
        e
        for e in by_pattern.get("healthy", [])
        if e["interval"] in SILENT_INTERVALS and from_db(e[HISTORY]["from"]) <= old_enough
    ]
    rng.shuffle(healthy)
    silent = healthy[: _share(n, 0.02)]
    never = healthy[len(silent) : len(silent) + _share(n, 0.01)]
    with_failed_records = healthy[len(silent) + len(never) : len(silent) + len(never) + _share(n, 0.01)]
    for export in silent:
        hours = rng.uniform(30, 96)
        since = floor_to_interval(now - timedelta(hours=hours), export["interval"], export["interval_offset"])
        export[HISTORY]["silent_since"] = to_db(since)
        export["_outcome"] = {**export["_outcome"], "records": 0}  # the runs the simulation makes find none too
    for export in never:
        export[HISTORY]["never"] = True
        export["_outcome"] = {**export["_outcome"], "records": 0}
    for export in with_failed_records:
        export[HISTORY]["records_failed"] = True

    # long failures: a third of the exports failing since a date (weekly ones aside: 12 days is two runs for
    # them) have failed every run for 12 days and more, more runs than the 10 an export embeds
    failing = [
        e
        for e in by_pattern.get("failing_since", [])
        if e["interval"] != "week" and from_db(e[HISTORY]["from"]) <= now - timedelta(days=13)
    ]
    for export in failing[: math.ceil(len(failing) / 3)]:
        since = now - timedelta(days=LONG_FAILURE_DAYS, hours=rng.uniform(0, 20))
        export[HISTORY]["failing_since"] = to_db(since)
        export[HISTORY]["long"] = True

    # who paused: PostHog (after the failure that crossed its threshold) or a person
    for export in by_pattern.get("paused", []):
        export[HISTORY]["paused_by"] = "person"
    for export in by_pattern.get("failing_then_paused", []):
        if export["interval"] in AUTO_PAUSE_INTERVALS:
            _auto_pause(export)
        else:
            export[HISTORY]["paused_by"] = "person"


def _auto_pause(export: dict[str, Any]) -> None:
    """Pause the export a second after its 10th Failed run finished, as PostHog's run finish does (runs of the
    billing window are FailedBilling, which the count leaves out)."""
    profile = export[HISTORY]
    step = INTERVALS[export["interval"]]
    tick = _first_tick_at_or_after(from_db(profile["failing_since"]), export)
    until = from_db(profile["until"])
    profile.pop("paused_at", None)
    past = History(export)
    failed = 0
    while tick <= until:
        run = past.run(tick)
        failed += run["status"] == "Failed"
        if failed == AUTO_PAUSE_FAILURES:
            paused_at = run["finished_at"] + timedelta(seconds=1)
            profile.update(paused_at=to_db(paused_at), paused_by="posthog")
            export.update(paused=True, last_paused_at=paused_at, last_updated_at=paused_at)
            return
        tick += step
    # not enough runs before the computed past ends: a person paused it, where the seed said
    profile.update(paused_at=to_db(export["last_paused_at"]), paused_by="person")


def _first_tick_at_or_after(moment: datetime, export: dict[str, Any]) -> datetime:
    interval = export["interval"]
    tick = floor_to_interval(moment, interval, export.get("interval_offset"))
    return tick if tick >= moment else tick + INTERVALS[interval]


# ------------------------------------------------------------------------------------------- the oracle


def describe(store: Store, now: datetime, backfill_limit: int) -> dict[str, Any]:
    """Which exports play which scene, from the stored profiles (the sandbox's own truth, for tests)."""
    out: dict[str, Any] = {
        "now": drf(now),
        "billing_window": None,
        "failed_billing": [],
        "failing": [],
        "long_failures": [],
        "intermittent": [],
        "silent": [],
        "never_exported": [],
        "records_failed": [],
        "paused": [],
        "outages": [],
    }
    for export in store.list_exports():
        profile = export.get(HISTORY)
        past = History(export) if profile else None
        if export.get("_outages"):
            out["outages"].append(
                {"id": export["id"], "windows": [{k: o[k] for k in ("id", "start", "end")} for o in export["_outages"]]}
            )
        if profile is None or past is None:
            continue
        ident = export["id"]
        if past.billing is not None:
            start, end = past.billing
            out["billing_window"] = {"start": drf(start), "end": drf(end)}
            if next(past.ticks_desc(start, end - timedelta(microseconds=1)), None) is not None:
                out["failed_billing"].append(ident)
        pattern = profile["pattern"]
        if pattern in ("failing_since", "failing_then_paused"):
            since = past.failing_since
            first = _first_tick_at_or_after(since, export) if since else None
            out["failing"].append(
                {
                    "id": ident,
                    "since": drf(since),
                    "first_failed_run_at": drf(first),
                    "error": profile.get("error"),
                    "long": bool(profile.get("long")),
                    "paused": bool(export["paused"]),
                }
            )
            if profile.get("long"):
                out["long_failures"].append(ident)
        elif pattern == "intermittent":
            out["intermittent"].append(ident)
        if profile.get("silent_since"):
            out["silent"].append({"id": ident, "since": drf(from_db(profile["silent_since"]))})
        if profile.get("never"):
            out["never_exported"].append(ident)
        if profile.get("records_failed"):
            out["records_failed"].append(ident)
        if profile.get("paused_by") and export["paused"]:
            out["paused"].append(
                {"id": ident, "paused_at": drf(export.get("last_paused_at")), "by": profile["paused_by"]}
            )
    active = store.list_backfills(team_id=1, active_only=True, written_by=now)
    out["running_backfills"] = [{"id": b["id"], "batch_export": b["batch_export"]} for b in active]
    out["backfill_limit"] = backfill_limit
    return out
