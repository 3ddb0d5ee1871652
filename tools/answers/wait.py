"""batch-export-wait: follow a run or a backfill until it finishes or a bound passes.

Some clients give a call 5 s (the OpenAI Agents SDK's default), most 60 s: one call waits 4 s unless
told otherwise (at most 50 s), reports progress as it goes (clients that extend their timeout on
progress may be asked for longer waits), and, when the work is still going, says so and gives the
call that waits on.

The key's PostHog rate limit is everyone's (docs/posthog-api.md, "Rate limits"), and a run takes minutes,
so a wait looks less often the longer it waits (1, 2, 3, 5, 8, then every 10 s): at most MAX_REQUESTS
requests a call, however long. When the server's request budget is busy, it waits for the time the budget
names if that fits, and otherwise answers with what it last saw and the call that waits on.
"""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

import anyio
from pydantic import BaseModel, ConfigDict, Field, model_validator

from tools.answers import progress
from tools.answers.intervals import RUNNING
from tools.declaration import READ, ToolSpec
from tools.params import Params, RunParams
from tools.runs import compact_run, read_run
from tools.upstream import OverBudget, Upstream, UpstreamError, path_for, requests_left

BACKFILL_PATH = "batch_exports/{batch_export_id}/backfills/{backfill_id}/"
POLL_SECONDS = (1.0, 2.0, 3.0, 5.0, 8.0, 10.0)
"""The pause before each next look; the last one repeats."""
MAX_REQUESTS = 10
"""PostHog requests one wait may make: a 50 s wait looks 9 times, and one more when the budget was busy."""
# Under the 5 s that the shortest common client timeout allows, with room for the answer to travel.
DEFAULT_WAIT_SECONDS = 4


class WaitParams(Params):
    batch_export_id: UUID
    run_id: UUID | None = Field(None, description="Run to follow.")
    backfill_id: UUID | None = Field(None, description="Backfill to follow.")
    timeout_seconds: int = Field(DEFAULT_WAIT_SECONDS, ge=1, le=50, description="Longest wait, seconds.")

    @model_validator(mode="after")
    def _one_target(self) -> WaitParams:
        if (self.run_id is None) == (self.backfill_id is None):
            raise ValueError("give exactly one of run_id or backfill_id")
        return self


class WaitAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    status: str
    done: bool


def _is_missing(error: Exception) -> bool:
    return isinstance(error, UpstreamError) and error.status == 404


async def _look(upstream: Upstream, params: WaitParams) -> dict[str, Any] | None:
    """The target now, or None while PostHog has not written a new backfill's row yet."""
    if params.run_id is not None:
        one = RunParams(project_id=params.project_id, batch_export_id=params.batch_export_id, run_id=params.run_id)
        return await read_run(upstream, one)
    path = path_for(BACKFILL_PATH, batch_export_id=params.batch_export_id, backfill_id=params.backfill_id)
    try:
        backfill: dict[str, Any] = await upstream.request("GET", path)
        return backfill
    except Exception as error:
        if _is_missing(error):
            return None
        raise


def _fraction(target: dict[str, Any] | None) -> float | None:
    shown = (target or {}).get("progress")
    value = shown.get("progress") if isinstance(shown, dict) else None
    return float(value) if isinstance(value, (int, float)) else None


def _pause(looks: int) -> float:
    return POLL_SECONDS[min(looks - 1, len(POLL_SECONDS) - 1)]


async def wait(upstream: Upstream, params: WaitParams, request: Any = None) -> dict[str, Any]:
    kind = "run" if params.run_id is not None else "backfill"
    started = time.monotonic()
    deadline = started + params.timeout_seconds
    target = await _look(upstream, params)
    looks = 1
    stopped: str | None = None  # why the wait ended before the work did, if it did
    while True:
        status = (target or {}).get("status")
        if target is not None and status not in RUNNING:
            break
        pause = _pause(looks)
        if time.monotonic() + pause > deadline:
            break
        left = requests_left(upstream)
        if left is not None and left < 1:
            stopped = f"this wait made its {MAX_REQUESTS} PostHog requests"
            break
        elapsed = time.monotonic() - started
        fraction = _fraction(target)
        label = f"{kind} {status or 'not written yet'}"
        if fraction is not None:
            await progress.report(fraction * 100, 100, f"{label}, {fraction:.0%} done")
        else:
            await progress.report(elapsed, params.timeout_seconds, f"{label}, {elapsed:.0f} s waited")
        await anyio.sleep(pause)
        try:
            target = await _look(upstream, params)
        except OverBudget as spent:
            # The key's budget is busy: look once more when it has room, if that is within this call.
            room = (spent.retry_at or 0.0) - time.time()
            if spent.retry_at is None or time.monotonic() + room + 1.0 > deadline:
                stopped = "the server's PostHog request budget is busy"
                break
            await anyio.sleep(max(room, 0.0))
            try:
                target = await _look(upstream, params)
            except OverBudget:
                stopped = "the server's PostHog request budget is busy"
                break
        looks += 1
    waited = round(time.monotonic() - started, 1)
    status = (target or {}).get("status") or "not written yet"
    done = target is not None and status not in RUNNING
    answer: dict[str, Any] = {"status": status, "done": done, "waited_seconds": waited}
    if target is not None:
        answer[kind] = compact_run(target)
    arguments = params.model_dump(mode="json", exclude_none=True)
    if not done:
        why = f"still running ({stopped})" if stopped else "still running"
        answer["next"] = {"tool": "batch-export-wait", "arguments": arguments, "why": why}
    elif status != "Completed" and params.run_id is not None:
        # The run's own lines, from when it was created (batch-export-errors reads 24 h unless told).
        since = (target or {}).get("created_at")
        answer["next"] = {
            "tool": "batch-export-errors",
            "arguments": {k: arguments[k] for k in ("project_id", "batch_export_id", "run_id")}
            | {"after": since if isinstance(since, str) else "-7d"},
            "why": f"the run ended {status}",
        }
    elif status != "Completed":
        answer["next"] = {
            "tool": "batch-export-gaps",
            "arguments": {k: arguments[k] for k in ("project_id", "batch_export_id")},
            "why": f"the backfill ended {status}: see which intervals are still missing",
        }
    return answer


TOOLS = [
    ToolSpec(
        name="batch-export-wait",
        title="Wait for a run or backfill",
        description="Wait (4 s unless told, <= 50) for a run or backfill to finish; gives the state and, if unfinished, the next call.",
        method="GET",
        path="batch_exports/{batch_export_id}/",
        scope=READ,
        params=WaitParams,
        output=WaitAnswer,
        handler=wait,
        max_requests=MAX_REQUESTS,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
]
