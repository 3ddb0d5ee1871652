"""batch-export-health: how every export of a project is doing, in one call at any size.

PostHog pages exports 100 at a time and embeds each export's 10 newest runs, so the state of
500 exports costs 5 requests. The newest run of each data interval decides it (tools/answers/intervals.py);
an export is failing when its newest decided interval failed, degraded when an older one in view
still stands failed, paused when paused. Results stay inside a byte budget and say what they cut.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from tools.answers import progress
from tools.answers.intervals import cell_status, deciding_runs, grid, iso, moment, short_error
from tools.backfills import INTERVAL_SECONDS
from tools.declaration import READ, ToolSpec
from tools.destinations import DestinationType
from tools.params import Params
from tools.upstream import Upstream, path_for

HealthState = Literal["failing", "paused", "healthy", "all"]
STATE_ORDER = ("failing", "degraded", "paused", "healthy")
_SELECTS = {"failing": ("failing", "degraded"), "paused": ("paused",), "healthy": ("healthy",), "all": STATE_ORDER}
PAGE_SIZE = 100
MAX_PAGES = 200  # 20,000 exports: a bound on the loop, far past any real project
BUDGET_BYTES = 16_000  # what a model's context pays for one answer
BUDGET_BYTES_WITH_CELLS = 60_000  # interval cells are asked for by the health app, not by a model
ERROR_FULL = 240  # a latest error as stored for dedup; each export shows a shorter cut of it
ERROR_CUTS = (120, 80, 56, 40)  # tried in turn until the listed exports fit the budget
RUNS_PATH = "batch_exports/{batch_export_id}/runs/"
HEALTH_VIEW = "ui://posthog-batch-exports/health.html"  # the health view a host with MCP Apps renders this in


class HealthParams(Params):
    state: HealthState = Field("failing", description="Which to list (failing includes degraded).")
    destination_type: DestinationType | None = Field(None, description="Only this destination type.")
    name_contains: str | None = Field(None, min_length=1, max_length=200, description="Name contains (any case).")
    intervals: int = Field(0, ge=0, le=48, description="Recent intervals per export, as cells.")
    offset: int = Field(0, ge=0, le=100_000, description="Skip this many (see omitted.call).")


class HealthAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    project_id: int
    counts: dict[str, int]
    exports: list[dict[str, Any]]
    omitted: dict[str, Any] | None = None


def assess(export: dict[str, Any]) -> dict[str, Any]:
    """One export's entry: who it is and, when it is not simply healthy, what is wrong since when."""
    destination = export.get("destination") or {}
    entry: dict[str, Any] = {
        "batch_export_id": export.get("id"),
        "name": export.get("name"),
        "destination_type": destination.get("type"),
        "interval": export.get("interval"),
    }
    decided = deciding_runs(r for r in export.get("latest_runs") or [] if isinstance(r, dict))
    newest_first = [decided[start] for start in sorted(decided, reverse=True)]
    finished = [r for r in newest_first if cell_status(r) in ("completed", "failed")]
    streak = []
    for run in finished:
        if cell_status(run) != "failed":
            break
        streak.append(run)
    failed = [r for r in finished if cell_status(r) == "failed"]
    last_success = next((r for r in finished if cell_status(r) == "completed"), None)
    if export.get("paused"):
        state = "paused"
    elif streak:
        state = "failing"
    elif failed:
        state = "degraded"
    else:
        state = "healthy"
    entry["state"] = state
    if export.get("paused"):
        entry["paused"] = True
    if state == "healthy":
        return entry
    if streak:
        entry["failing_since"] = streak[-1].get("data_interval_start")
        entry["consecutive_failures"] = len(streak)
        if len(streak) == len(finished) and len(export.get("latest_runs") or []) >= 10:
            entry["failing_before_that"] = True  # every run in view failed: the streak may be longer
    if last_success is not None:
        entry["last_success"] = last_success.get("data_interval_end")
    error = short_error(failed[0].get("latest_error"), ERROR_FULL) if failed else None
    if error:
        entry["latest_error"] = error
    return {k: v for k, v in entry.items() if v is not None}


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
    """The export's `count` most recent whole data intervals, oldest first, each with its status."""
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
            if status == "failed" and short_error(run.get("latest_error"), 80):
                cell["error"] = short_error(run.get("latest_error"), 80)
        cells.append(cell)
    return cells


def _fitting(entries: list[dict[str, Any]], room: int) -> list[dict[str, Any]]:
    """The longest prefix of `entries` whose JSON fits in `room` bytes."""
    kept = []
    for entry in entries:
        cost = _size(entry) + 1
        if cost > room:
            break
        room -= cost
        kept.append(entry)
    return kept


async def _with_cells(upstream: Upstream, listed: list[Any], count: int, room: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    kept = []
    for index, (entry, export) in enumerate(listed):
        entry = _with_error_cut({**entry, "intervals": await interval_cells(upstream, export, count, now)}, 120)
        await progress.report(index + 1, len(listed), f"read the intervals of {index + 1} of {len(listed)}")
        cost = _size(entry) + 1
        if cost > room:
            break
        room -= cost
        kept.append(entry)
    return kept


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode())


def _matches(export: dict[str, Any], params: HealthParams) -> bool:
    if params.destination_type and (export.get("destination") or {}).get("type") != params.destination_type:
        return False
    return not params.name_contains or params.name_contains.lower() in str(export.get("name") or "").lower()


async def health(upstream: Upstream, params: HealthParams, request: Any = None) -> dict[str, Any]:
    path = getattr(request, "path", None) or "batch_exports/"
    exports = await all_exports(upstream, path)
    entries = [(assess(e), e) for e in exports]
    counts = {"total": len(entries)} | {s: 0 for s in STATE_ORDER}
    for entry, _ in entries:
        counts[entry["state"]] += 1
    chosen = [(entry, e) for entry, e in entries if entry["state"] in _SELECTS[params.state] and _matches(e, params)]
    chosen.sort(key=lambda pair: (STATE_ORDER.index(pair[0]["state"]), str(pair[0].get("name")).lower()))
    answer: dict[str, Any] = {"project_id": params.project_id, "counts": counts, "exports": []}
    if params.destination_type or params.name_contains:
        answer["matching"] = len(chosen)
    budget = BUDGET_BYTES_WITH_CELLS if params.intervals else BUDGET_BYTES
    room = budget - _size(answer) - 600  # the omitted note, if one is needed
    listed = chosen[params.offset :]
    if params.intervals:
        answer["exports"] = await _with_cells(upstream, listed, params.intervals, room)
    else:
        # Shorter errors before fewer exports: every export the filter selects should be named.
        full = [entry for entry, _ in listed]
        for cut in ERROR_CUTS:
            shaped = _fitting([_with_error_cut(e, cut) for e in full], room)
            if len(shaped) == len(full):
                break
        answer["exports"] = shaped
        if cut < ERROR_CUTS[0]:
            errors = distinct_errors(full[: len(shaped)])
            while errors and _size(answer) + _size(errors) > budget - 600:
                errors.pop()  # the rarest go first; each export still shows the start of its own
            if errors:
                answer["errors"] = errors
    shown = len(answer["exports"])
    if shown < len(listed):
        left = len(listed) - shown
        arguments = params.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        arguments |= {"project_id": params.project_id, "offset": params.offset + shown}
        answer["omitted"] = {
            "count": left,
            "reason": f"{shown} of {len(listed)} listed exports fit the {budget // 1000} KB answer budget; "
            f"the other {left} ({', '.join(sorted({e['state'] for e, _ in listed[shown:]}))}) are left out.",
            "call": {"tool": "batch-export-health", "arguments": arguments},
        }
    elif params.offset and params.offset > len(chosen):
        answer["note"] = f"offset {params.offset} is past the {len(chosen)} exports this call lists."
    return answer


TOOLS = [
    ToolSpec(
        name="batch-export-health",
        title="Batch export health",
        description="Every export's state in one call: counts, then failing/degraded ones with since, last success, error.",
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
