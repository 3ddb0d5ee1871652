"""The `/_sandbox/` controls for fleet-scale scenes (docs/sandbox.md, "Scenes", "Outages", "Hostile text"):
the scenes oracle, destination outages, the hostile-text oracle, and running backfills up to a count.
Mounted by `controls.py` beside the other controls, with the same JSON handling."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from starlette.requests import Request
from starlette.routing import Route

from . import hostile, outages, scenes, serializers, simulation
from .errors import validation
from .state import Sandbox
from .timeutil import INTERVALS, floor_to_interval

# How far back a backfill started by `backfills/running` reaches: long enough to keep running for hours.
RUNNING_BACKFILL_DAYS = 20
MAX_RUNNING_BACKFILLS = 100
# Hourly exports first: 20 days of them keep a backfill running for 16 simulated hours, with few intervals
# for the simulation to walk on every request.
_PREFERRED = ("hour", "day", "week", "every 15 minutes", "every 5 minutes")


def scene_routes(json_route: Callable[[str, list[str]], Callable[[Any], Route]]) -> list[Route]:
    @json_route("/_sandbox/scenes", ["GET"])
    def get_scenes(sb: Sandbox, request: Request, body: Any) -> Any:
        with sb.transaction() as now:
            return scenes.describe(sb.store, now, sb.config.max_concurrent_backfills)

    @json_route("/_sandbox/outages", ["GET", "POST", "DELETE"])
    def outage_list(sb: Sandbox, request: Request, body: Any) -> Any:
        if request.method == "POST":
            outage = outages.parse(body)
            with sb.transaction():
                return 201, {"outage": outages.add(sb.store, outage)}
        with sb.transaction():
            if request.method == "DELETE":
                outages.clear(sb.store)
            return {"outages": outages.listed(sb.store)}

    @json_route("/_sandbox/hostile", ["GET"])
    def get_hostile(sb: Sandbox, request: Request, body: Any) -> Any:
        with sb.transaction():
            return hostile.describe(sb.store.list_exports(), sb.config.hostile)

    @json_route("/_sandbox/backfills/running", ["POST"])
    def running_backfills(sb: Sandbox, request: Request, body: Any) -> Any:
        count = body.get("count") if isinstance(body, dict) else None
        if isinstance(count, bool) or not isinstance(count, int) or not 0 <= count <= MAX_RUNNING_BACKFILLS:
            raise validation(f"'count' must be an integer from 0 to {MAX_RUNNING_BACKFILLS}.", "count")
        project = body.get("project", 1)
        if project not in (1, 2):
            raise validation("'project' must be 1 or 2.", "project")
        with sb.transaction() as now:
            return 201, _run_backfills(sb, project, count, now)

    return [get_scenes, outage_list, get_hostile, running_backfills]


def _run_backfills(sb: Sandbox, project: int, count: int, now: datetime) -> dict[str, Any]:
    """Start backfills on the project's unpaused exports (one each, hourly ones first) until `count`
    are active; their rows are written at once, so PostHog's concurrency cap counts them straight away."""
    store = sb.store
    active = store.list_backfills(team_id=project, active_only=True, written_by=now)
    busy = {b["batch_export"] for b in active}
    candidates = sorted(
        (e for e in store.list_exports(team_id=project) if not e["paused"] and e["id"] not in busy),
        key=lambda e: (_PREFERRED.index(e["interval"]), e["id"]),
    )
    started: list[dict[str, Any]] = []
    for export in candidates:
        if len(active) + len(started) >= count:
            break
        tz = export.get("timezone") or "UTC"
        end = floor_to_interval(now - timedelta(days=1), export["interval"], export.get("interval_offset"), tz)
        start = end - INTERVALS[export["interval"]] * _intervals(export["interval"])
        started.append(simulation.new_backfill(store, export, start, end, now))
    backfills = [*active, *started]
    by_id = {e["id"]: e for e in store.list_exports(team_id=project)}
    return {
        "limit": sb.config.max_concurrent_backfills,
        "active": len(backfills),
        "started": [b["id"] for b in started],
        "backfills": [
            serializers.backfill(b, 3, simulation.progress(store, b, by_id.get(b["batch_export"]), now))
            for b in backfills
        ],
    }


def _intervals(interval: str) -> int:
    """Whole intervals in the backfill's span (a week-long export still gets a few)."""
    return max(3, int(timedelta(days=RUNNING_BACKFILL_DAYS) / INTERVALS[interval]))
