"""batch-export-gaps and batch-export-gaps-backfill: the data intervals not exported, of one export or
of every export of a project, and the repair of exactly those, as one plan.

Reading is `tools/answers/gap_scan.py` (bounded at any project size); the rule is
`tools/answers/intervals.py` `find_ranges`. The repair is one backfill per range, planned within
PostHog's limit of concurrent backfills (`tools/answers/capacity.py`), at most MAX_PLAN_WRITES a plan;
the guard confirms the plan once and applies it write by write (docs/guard.md, "Plans"). What the plan
leaves for later is named in the preview, and the receipt gives the call that plans it.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from tools import continuation
from tools.answers import capacity
from tools.answers.gap_scan import (
    BACKFILLS_PATH,
    MAX_REQUESTS_READ,
    Found,
    GapsBackfillParams,
    GapsParams,
    Scan,
    backfills_of,
    scan,
)
from tools.answers.intervals import iso, moment
from tools.backfills import effective_bounds
from tools.declaration import (
    MAX_PLAN_WRITES,
    READ,
    WRITE,
    Applied,
    NotPossible,
    Plan,
    PlannedWrite,
    PlanSteps,
    ToolSpec,
)
from tools.exports import EXPORT_PATH
from tools.upstream import Upstream, path_for
from tools.versions import export_version

__all__ = ["TOOLS", "GapsParams", "find_gaps"]

ROWS_BYTES = 11_000  # the rows of a preview or receipt; the rest of the answer fits in what is left


class GapsAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    window: dict[str, Any]


class Receipt(BaseModel):
    model_config = ConfigDict(extra="allow")

    started: list[dict[str, Any]]


_size = continuation.size


def _range(found_range: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "start_at": iso(found_range["start"]),
        "end_at": iso(found_range["end"]),
        "runs": found_range["runs"],
    }
    return out | {k: found_range[k] for k in ("failed", "missing") if found_range[k]}


# --- one export ---------------------------------------------------------------------------------


async def find_gaps(upstream: Upstream, params: GapsParams, *, now: datetime | None = None) -> dict[str, Any]:
    """The gaps of the one export `params` names, merged into ranges, with what was left out and why."""
    assert params.batch_export_id is not None
    now = now or datetime.now(UTC)
    found = await scan(upstream, params, now=now, count_running=False)
    export = found.selected[0]
    if found.too_long:
        raise NotPossible(
            f"Export {export.get('name')!r} has more runs in this window than one call reads; narrow start/end."
        )
    gaps = found.found[0].gaps if found.found else None
    return {
        "batch_export_id": str(params.batch_export_id),
        "name": export.get("name"),
        "interval": export.get("interval"),
        "window": {"start": iso(found.start), "end": iso(found.end)},
        "intervals": gaps.tally if gaps else {},
        "ranges": [_range(r) for r in gaps.ranges] if gaps else [],
    }


# --- the project ---------------------------------------------------------------------------------


def _entry(found: Found) -> dict[str, Any]:
    export = found.export
    ranges = [_range(r) for r in found.gaps.ranges]
    return {
        "batch_export_id": export.get("id"),
        "name": export.get("name"),
        "destination_type": (export.get("destination") or {}).get("type"),
        "interval": export.get("interval"),
        "runs": sum(r["runs"] for r in ranges),
        "ranges": ranges,
    }


def _repair(params: GapsParams, found: Scan) -> dict[str, Any]:
    ranges = sum(len(f.gaps.ranges) for f in found.found)
    room = max(0, capacity.limit() - found.running_count)
    return {
        "backfills": ranges,
        "runs": sum(r["runs"] for f in found.found for r in f.gaps.ranges),
        "running_backfills": found.running_count,
        "posthog_allows": capacity.limit(),
        "can_start_now": min(ranges, room, MAX_PLAN_WRITES),
        "call": {"tool": "batch-export-gaps-backfill", "arguments": params.scope()},
    }


def _cut_ranges(entry: dict[str, Any], params: GapsParams, found: Scan, room: int) -> dict[str, Any]:
    """An export's entry cut to the ranges that fit `room`, with the call that lists the rest (the same
    export, from the first range left out)."""
    ranges = entry["ranges"]
    more_room = room - 600  # the note below
    kept = continuation.longest_fitting(ranges, lambda p: _size({**entry, "ranges": list(p)}) <= more_room)
    kept = max(kept, 1)
    rest = ranges[kept:]
    cut = {**entry, "ranges": ranges[:kept]}
    if rest:
        arguments = {
            "project_id": params.project_id,
            "batch_export_id": entry["batch_export_id"],
            "start": rest[0]["start_at"],
            "end": iso(found.end),
        }
        cut["more_ranges"] = continuation.omitted(
            "batch-export-gaps", arguments, f"{len(ranges)} ranges: more than the answer holds", len(rest)
        )
    return cut


async def gaps(upstream: Upstream, params: GapsParams, request: Any = None) -> dict[str, Any]:
    if params.batch_export_id is not None:
        one = await find_gaps(upstream, params)
        if continuation.size(one) > continuation.FIT - 1200:
            room = continuation.FIT - 1200 - continuation.size({**one, "ranges": []})
            kept = max(1, continuation.longest_fitting(one["ranges"], lambda p: _size(list(p)) <= room))
            rest = one["ranges"][kept:]
            one["ranges"] = one["ranges"][:kept]
            arguments = params.scope() | {"start": rest[0]["start_at"], "end": one["window"]["end"]}
            one["omitted"] = continuation.omitted(
                "batch-export-gaps", arguments, f"{kept} ranges fit the answer; the rest start later", len(rest)
            )
        if one["ranges"]:
            runs = sum(r.get("runs", 0) for r in one["ranges"])
            one["next"] = {
                "tool": "batch-export-gaps-backfill",
                "arguments": params.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
                | {"project_id": params.project_id},
                "does": f"backfills these {len(one['ranges'])} range(s), {runs} run(s), after a confirmation",
            }
        else:
            one["note"] = "No failed or missing intervals in this window."
        return one
    found = await scan(upstream, params, now=datetime.now(UTC), count_running=True)
    answer: dict[str, Any] = {
        "project_id": params.project_id,
        "window": {"start": iso(found.start), "end": iso(found.end)},
        "exports": found.tally | {"requests": found.requests},
        "gaps": [],
    }
    if found.too_long:
        answer["not_read"] = {
            "exports": [e.get("id") for e in found.too_long[:20]],
            "why": "more runs in this window than one call reads: ask for each with batch_export_id and a shorter window",
        }
    if found.found:
        answer["repair"] = _repair(params, found)
    room = continuation.FIT - _size(answer) - 700  # the omitted note
    shown = 0
    for item in found.found:
        entry = _entry(item)
        cost = _size(entry) + 1
        if cost > room and shown == 0:
            # One export with more ranges than the whole answer holds: its first ranges, and the exact call
            # for the rest of it, so every call makes progress and nothing is lost.
            entry = _cut_ranges(entry, params, found, room)
            cost = _size(entry) + 1
        if cost > room:
            break
        room -= cost
        answer["gaps"].append(entry)
        shown += 1
    # Where the next call starts: after the last export shown, or where the request bound stopped the scan.
    if shown < len(found.found):
        resume = found.selected.index(found.found[shown].export)
        why = f"{shown} of {len(found.found)} exports with gaps fit the {continuation.BUDGET // 1000} KB answer"
    elif not found.complete:
        resume = found.reached
        why = found.stopped or f"one call reads runs and backfills with at most {found.requests} PostHog requests"
    else:
        resume = None
    if resume is not None:
        left = len(found.selected) - resume
        answer["omitted"] = continuation.omitted(
            "batch-export-gaps",
            params.scope() | {"offset": resume},
            f"{why}; the {left} export(s) from the {resume + 1}th (oldest first) are not looked at here",
            left,
        )
    elif not found.found:
        answer["note"] = "No failed or missing intervals in this window, in any export selected."
    return answer


# --- the repair, as a plan ------------------------------------------------------------------------


def _round_robin(found: list[Found]) -> Iterator[tuple[Found, dict[str, Any]]]:
    """Each export's oldest range first, then each export's next: a limited plan repairs many exports,
    not many ranges of one."""
    depth = 0
    while True:
        any_left = False
        for item in found:
            if depth < len(item.gaps.ranges):
                any_left = True
                yield item, item.gaps.ranges[depth]
        if not any_left:
            return
        depth += 1


def _label(export: dict[str, Any], start_at: str, end_at: str, runs: int) -> str:
    return f"{export.get('name')} ({str(export.get('id'))[:8]}): {start_at} to {end_at}, {runs} run{'s' * (runs != 1)}"


def _fold(rows: list[Any], budget: int) -> tuple[list[Any], int]:
    """The rows that fit `budget` bytes, and how many were folded away."""
    kept: list[Any] = []
    room = budget
    for row in rows:
        cost = _size(row) + 1
        if cost > room:
            break
        room -= cost
        kept.append(row)
    return kept, len(rows) - len(kept)


class _Later:
    """What a plan will not do now, grouped by why."""

    def __init__(self) -> None:
        self.groups: dict[str, list[tuple[dict[str, Any], int]]] = {}

    def add(self, why: str, export: dict[str, Any], ranges: int = 1) -> None:
        self.groups.setdefault(why, []).append((export, ranges))

    def listed(self) -> list[dict[str, Any]]:
        out = []
        for why, items in self.groups.items():
            names = sorted({str(e.get("name")) for e, _ in items})
            shown, folded = _fold(names, 1200)
            entry: dict[str, Any] = {"why": why, "ranges": sum(n for _, n in items), "exports": len(names)}
            entry["names"] = shown + ([f"... and {folded} more"] if folded else [])
            out.append(entry)
        return out


# A backfill created this long before a plan counts as new when a write is re-checked: the margin covers the
# difference between this server's clock and PostHog's (a backfill PostHog dates a little before the plan).
NEW_BACKFILL_MARGIN = timedelta(minutes=2)
FILLING = {"Starting", "Running"}  # a backfill at work on a range (one that finished did before the plan was read)


async def plan_backfills(upstream: Upstream, params: GapsParams) -> Plan:
    now = datetime.now(UTC)
    found = await scan(upstream, params, now=now, count_running=True)
    # Each write's version: the export's state, and the moment since which a backfill of it counts as new.
    since = "since " + iso(now - NEW_BACKFILL_MARGIN)
    limit = capacity.limit()
    room = min(max(0, limit - found.running_count), MAX_PLAN_WRITES)
    later = _Later()
    writes: list[PlannedWrite] = []
    for item, found_range in _round_robin(found.found):
        export = item.export
        start_at, end_at = iso(found_range["start"]), iso(found_range["end"])
        if len(writes) >= room:
            if room < limit - found.running_count:
                later.add(f"a plan sends at most {MAX_PLAN_WRITES} writes: the next plan takes these", export)
            else:
                later.add(
                    f"PostHog runs at most {limit} backfills at once in a project and {found.running_count} are "
                    f"running{f'; this plan starts {len(writes)}' if writes else ''}: these wait until some finish",
                    export,
                )
            continue
        try:
            sent = effective_bounds(export, start_at, end_at)
        except NotPossible as reason:
            later.add(str(reason), export)
            continue
        writes.append(
            PlannedWrite(
                target=str(export.get("id")),
                label=_label(export, start_at, end_at, found_range["runs"]),
                version=f"{export_version(export)}|{since}",
                action={
                    "start_at": sent[0],
                    "end_at": sent[1],
                    "range": [start_at, end_at],
                    "runs": found_range["runs"],
                },
            )
        )
    for export in found.too_long:
        later.add("more runs in this window than one call reads: plan it alone with a shorter window", export, 0)
    if not found.complete:
        unread = found.selected[found.reached :]
        for export in unread:
            why = found.stopped or f"one call reads at most {found.requests} PostHog requests"
            later.add(f"not looked at yet ({why}): the next plan does", export, 0)
    window = {"start": iso(found.start), "end": iso(found.end)}
    # As the caller gave it, every argument: the person sees what was asked too.
    searched = params.model_dump(mode="json", exclude_none=True, exclude={"project_id"}) | {"end": params.end or "now"}
    if not writes:
        if not any(item.gaps.ranges for item in found.found):
            where = (
                f"Export {found.selected[0].get('name')!r} has"
                if params.batch_export_id is not None
                else f"None of the {len(found.selected)} exports selected has"
            )
            raise NotPossible(
                f"{where} no failed or missing intervals between {window['start']} and {window['end']}: "
                "nothing to backfill."
            )
        reasons = "; ".join(g["why"] for g in later.listed())
        raise NotPossible(
            f"Nothing can start now: {reasons}. Wait (batch-export-wait, batch-export-health), then call again."
        )
    runs = sum(int(w.action["runs"]) for w in writes)
    exports = len({w.target for w in writes})
    summary = (
        f"Backfill {len(writes)} range(s) across {exports} export(s): {runs} run(s), exactly the failed or never-run "
        f"intervals between {window['start']} and {window['end']}."
    )
    not_now = later.listed()
    if not_now:
        summary += (
            " Not now: "
            + "; ".join(
                f"{g['ranges'] or g['exports']} {'range' if g['ranges'] else 'export'}(s): {g['why']}" for g in not_now
            )
            + "."
        )
    rows, folded = _fold([w.label for w in writes], ROWS_BYTES)
    details: dict[str, Any] = {"searched": searched, "window": window, "writes": rows}
    if folded:
        details["folded"] = f"{folded} more write(s) not listed here to fit the preview; each is in the receipt"
    details["limit"] = {"posthog_allows": limit, "running_now": found.running_count, "this_plan_starts": len(writes)}
    if not_now:
        details["not_now"] = not_now
    return Plan(summary=summary, details=details, writes=tuple(writes))


def _is_ours(backfill: dict[str, Any], ours: list[tuple[PlannedWrite, dict[str, Any]]]) -> bool:
    """A backfill this plan started (older PostHog answers a workflow id, so its range tells it too)."""
    span = (moment(backfill.get("start_at")), moment(backfill.get("end_at")))
    for write, result in ours:
        if backfill.get("id") == result.get("backfill_id"):
            return True
        if span == (moment(write.action["range"][0]), moment(write.action["range"][1])):
            return True
    return False


async def recheck_backfill(upstream: Upstream, params: GapsParams, write: PlannedWrite, applied: Applied) -> str:
    """The export's state now, and "since <moment>" unless a backfill of this range, not this plan's, was made
    since the plan and is filling it or filled it (then its id): someone else took care of it."""
    export = await upstream.request("GET", path_for(EXPORT_PATH, batch_export_id=write.target))
    listed = await backfills_of(upstream, write.target)
    planned = write.version.rsplit("|", 1)[1]
    since = moment(planned.removeprefix("since "))
    start, end = (moment(v) for v in write.action["range"])
    ours = [(w, r) for w, r in applied.started if w.target == write.target]
    for backfill in listed:  # newest first
        made = moment(backfill.get("created_at"))
        if since is None or made is None or made < since:
            break
        if backfill.get("status") not in FILLING or _is_ours(backfill, ours):
            continue
        b_start, b_end = moment(backfill.get("start_at")), moment(backfill.get("end_at"))
        if start and end and (b_start is None or b_start < end) and (b_end is None or b_end > start):
            return f"{export_version(export)}|{backfill.get('id')}"
    return f"{export_version(export)}|{planned}"


async def send_backfill(upstream: Upstream, params: GapsParams, write: PlannedWrite) -> dict[str, Any]:
    body = {"start_at": write.action["start_at"], "end_at": write.action["end_at"]}
    answer = await upstream.request("POST", path_for(BACKFILLS_PATH, batch_export_id=write.target), json=body)
    return {"backfill_id": (answer or {}).get("backfill_id")}


def _row(write: PlannedWrite, **more: Any) -> dict[str, Any]:
    start_at, end_at = write.action["range"]
    return {"batch_export_id": write.target, "start_at": start_at, "end_at": end_at, **more}


def backfill_receipt(params: GapsParams, plan: Plan, applied: Applied) -> dict[str, Any]:
    started = [_row(w, runs=w.action["runs"], backfill_id=r.get("backfill_id")) for w, r in applied.started]
    sections = {
        "started": started,
        "skipped": [_row(w, why=why) for w, why in applied.skipped],
        "failed": [_row(w, why=why) for w, why in applied.failed],
        "not_sent": [_row(w, why=why) for w, why in applied.not_sent],
    }
    receipt: dict[str, Any] = {}
    room = ROWS_BYTES
    folded = 0
    kept_rows: dict[str, list[dict[str, Any]]] = {}
    # What did not happen first (each says why), then what started: the audit trail has every one.
    for name in ("skipped", "failed", "not_sent", "started"):
        kept, more = _fold(sections[name], room)
        room -= _size(kept)
        folded += more
        kept_rows[name] = kept
    for name, rows in sections.items():
        if rows or name == "started":
            receipt[name] = kept_rows[name]
    if folded:
        receipt["folded"] = f"{folded} row(s) left out to fit the answer; the audit trail has every write of this plan"
    deferred = plan.details.get("not_now") or []
    if deferred:
        receipt["deferred"] = deferred
    scope = params.scope()
    follow: dict[str, Any] = {"all": {"tool": "batch-export-gaps", "arguments": scope}}
    if applied.started:
        first, result = applied.started[0]
        backfill = result.get("backfill_id")
        if backfill:
            follow["one"] = {
                "tool": "batch-export-wait",
                "arguments": {
                    "project_id": params.project_id,
                    "batch_export_id": first.target,
                    "backfill_id": backfill,
                },
            }
        follow["health"] = {"tool": "batch-export-health", "arguments": {"project_id": params.project_id}}
    receipt["follow"] = follow
    if deferred or applied.not_sent or applied.failed:
        # Last: the exact call that plans what this one left.
        receipt["next"] = {
            "tool": "batch-export-gaps-backfill",
            "arguments": scope,
            "does": "plans what is still missing (ranges started here are left out while their backfills run); "
            "call it once running backfills finish",
        }
    return receipt


TOOLS = [
    ToolSpec(
        name="batch-export-gaps",
        title="Find missing intervals",
        description="Failed or never-run intervals, as ranges, of one export or all.",
        method="GET",
        path="batch_exports/",
        scope=READ,
        params=GapsParams,
        output=GapsAnswer,
        handler=gaps,
        max_requests=MAX_REQUESTS_READ,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    ToolSpec(
        name="batch-export-gaps-backfill",
        title="Backfill missing intervals",
        description="Backfill what batch-export-gaps finds (same arguments), as one plan.",
        method="POST",
        path="batch_exports/",
        scope=WRITE,
        params=GapsBackfillParams,
        output=Receipt,
        plan=PlanSteps(make=plan_backfills, recheck=recheck_backfill, write=send_backfill, receipt=backfill_receipt),
        # The scan (the read's bound) and, confirmed, up to MAX_PLAN_WRITES writes of 3 requests each.
        max_requests=MAX_REQUESTS_READ + 3 * MAX_PLAN_WRITES,
        read_only=False,
        destructive=False,
        idempotent=False,
    ),
]
