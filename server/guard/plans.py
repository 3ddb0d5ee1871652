"""A confirmed plan applied: each write re-checked, held against copies of it, sent once, in order.

The guard (server/guard/decision.py) gets a plan confirmed once; this module is what happens next,
write by write (docs/guard.md, "Plans"):

1. hold the write's in-flight lock, named by what the write does (tool, project, target, action),
   so the same write from another plan or replica waits instead of going out twice;
2. read its target again: a target that moved since the preview, or is gone, is skipped;
3. send it once. PostHog refusing it (4xx) is a failure of that write; PostHog's limit of
   concurrent backfills (429 too_many_concurrent_backfills) or an answer that does not say whether
   it was applied (a timeout, a 5xx) stops the plan: what follows is not sent and is reported.

What happened goes back in order (`Applied`); each step is an audit line with the plan's id.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio

from server.caller import caller_name
from server.guard.shared_state import SharedState, StateUnavailable
from tools.answers import progress
from tools.declaration import MAX_PLAN_WRITES, Applied, Plan, PlannedWrite
from tools.upstream import OverBudget, UpstreamError

CONCURRENCY_CODE = "too_many_concurrent_backfills"


@dataclass
class PlanCall:
    """One call of a plan tool, its functions bound to the call's PostHog client and arguments."""

    make: Callable[[], Awaitable[Plan]]
    recheck: Callable[[PlannedWrite, Applied], Awaitable[str | None]]
    write: Callable[[PlannedWrite], Awaitable[dict[str, Any]]]
    receipt: Callable[[Plan, Applied], dict[str, Any]]


def digest_of(plan: Plan) -> str:
    """The writes a plan sends, as one short value: what a confirmation of it is bound to."""
    text = json.dumps([w.as_json() for w in plan.writes], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def kept(plan: Plan, plan_id: str) -> dict[str, Any]:
    """The plan as the shared state keeps it between the preview and the confirmation."""
    return {
        "id": plan_id,
        "summary": plan.summary,
        "details": plan.details,
        "writes": [w.as_json() for w in plan.writes],
    }


def restored(value: dict[str, Any]) -> Plan:
    writes = tuple(PlannedWrite.from_json(w) for w in value.get("writes") or [])
    return Plan(summary=str(value.get("summary") or ""), details=dict(value.get("details") or {}), writes=writes)


def check_size(plan: Plan) -> None:
    # The tools cut their plans at MAX_PLAN_WRITES; a plan past it is a bug, never a larger write.
    if len(plan.writes) > MAX_PLAN_WRITES:
        raise ValueError(f"a plan holds at most {MAX_PLAN_WRITES} writes, not {len(plan.writes)}")


def _refused_before_writing(error: UpstreamError) -> bool:
    """PostHog answered and the write did not happen (a 4xx; a throttled 429 was already retried)."""
    return error.status is not None and error.status < 500


Note = Callable[..., None]
"""Writes one audit line: note(decision, write_index, write, **fields)."""


class PlanApplier:
    """Applies one confirmed plan (see the module's docstring)."""

    def __init__(
        self, state: SharedState, lock_name: Callable[[PlannedWrite], str], note: Note, in_flight: int
    ) -> None:
        self.state = state
        self.lock_name = lock_name
        self.note = note
        self.in_flight = in_flight  # seconds a write's lock lives (the guard's, for its PostHog timeout)

    async def apply(self, plan: Plan, call: PlanCall) -> Applied:
        applied = Applied(started=[], skipped=[], failed=[], not_sent=[])
        stop: str | None = None
        total = len(plan.writes)
        for index, write in enumerate(plan.writes):
            if stop is not None:
                applied.not_sent.append((write, stop))
                continue
            stop = await self._one(index, write, call, applied)
            await progress.report(index + 1, total, f"{index + 1} of {total} writes")
        return applied

    async def _one(self, index: int, write: PlannedWrite, call: PlanCall, applied: Applied) -> str | None:
        """Apply one write; answers why the plan stops here, or None to go on."""
        name = self.lock_name(write)
        holder = {"caller": caller_name(), "since": int(time.time()), "id": secrets.token_hex(8)}
        try:
            found = await self.state.hold(name, holder, self.in_flight)
        except StateUnavailable as down:
            why = f"the confirmation ledger ({down}) could not be reached, so a write could not be held against copies"
            applied.not_sent.append((write, why))
            return why
        if found is not None:
            why = "the same write is in flight elsewhere (another plan or replica); it was not sent again"
            applied.skipped.append((write, why))
            self.note("skipped", index, write, reason=why)
            return None
        unknown = False
        try:
            try:
                current = await call.recheck(write, applied)
            except OverBudget as spent:
                # Not sent: the key's request budget (or the call's) has no room; nor has what follows.
                why = f"not sent: {spent.detail}"
                applied.not_sent.append((write, why))
                return why
            except UpstreamError as error:
                why = (
                    "its target is gone"
                    if error.status == 404
                    else f"its target could not be read again ({error.status or 'no answer'}: {error.detail})"
                )
                applied.skipped.append((write, why))
                self.note("skipped", index, write, reason=why, upstream_status=error.status)
                return None
            if current is None or current != write.version:
                why = "its target is gone" if current is None else "its target changed since the preview"
                applied.skipped.append((write, why))
                self.note("skipped", index, write, reason=why)
                return None
            unknown = True
            try:
                result = await call.write(write)
            except OverBudget as spent:
                unknown = False
                why = f"not sent: {spent.detail}"
                applied.not_sent.append((write, why))
                return why
            except UpstreamError as error:
                if not _refused_before_writing(error):
                    why = (
                        f"PostHog's answer to a write did not say whether it was applied ({error}); the plan stopped "
                        "there so nothing is sent twice: check that target before planning again"
                    )
                    applied.failed.append((write, f"may or may not have been applied: {error.detail}"))
                    self.note("failed", index, write, reason=str(error), upstream_status=error.status)
                    return why
                unknown = False
                applied.failed.append((write, f"PostHog refused it: {error.detail}"))
                self.note("failed", index, write, reason=str(error), upstream_status=error.status)
                if error.code == CONCURRENCY_CODE:
                    return f"PostHog refused a backfill: its limit of concurrent backfills was reached ({error.detail})"
                return None
            unknown = False
            applied.started.append((write, result))
            self.note("executed", index, write, result=result)
            return None
        finally:
            if not unknown:
                with anyio.CancelScope(shield=True):
                    try:
                        await self.state.release(name, holder)
                    except StateUnavailable:
                        pass  # it expires on its own
