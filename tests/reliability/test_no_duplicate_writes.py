"""No write is sent twice: when a create, a backfill or a run retry fails ambiguously (a 502, a
dropped connection, or an answer that comes after the timeout while PostHog still does the work),
the tool says so and the sandbox shows exactly one POST and at most one new object.

The MCP server talks to the sandbox through a relay (late_answers.py) in every case, so the one
case that needs it (the write is done, the answer is lost) runs on the same path as the others."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest

from posthog_sandbox import DEFAULT_API_KEY
from tests.reliability.late_answers import late_answers
from tests.support import SandboxControl, connect, data, running_app, settings_for, text

AMBIGUOUS = "may or may not have been applied"
TIMEOUT = 0.5

LATE = 1.5  # seconds an answer is held back: past the client's whole budget of 2 * TIMEOUT

# fault name -> (sandbox fault rule, how many objects the write leaves behind)
FAULTS: dict[str, tuple[dict[str, Any] | None, int]] = {
    "bad-gateway": ({"status": 502}, 0),
    "dropped": ({"drop_connection": True}, 0),
    "slow-upstream": ({"latency_ms": int(LATE * 1000)}, 1),  # the sandbox reads the request, then is slow
    "answer-lost-after-the-write": (None, 1),  # see late_answers.py
}


def posts(control: SandboxControl, path_part: str) -> list[dict[str, Any]]:
    return [r for r in control.requests() if r["method"] == "POST" and r["path"].endswith(path_part)]


def wait_for_posts(control: SandboxControl, path_part: str, settle: float = 3.0) -> list[dict[str, Any]]:
    """The POSTs the sandbox logged once it is done with any still sleeping in it (bounded wait)."""
    deadline = time.monotonic() + settle
    seen, quiet_since = posts(control, path_part), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = posts(control, path_part)
        if len(now) != len(seen):
            seen, quiet_since = now, time.monotonic()
        elif seen and time.monotonic() - quiet_since > 0.4:
            break
    return seen


def sandbox_now(control: SandboxControl) -> datetime:
    return control.now()


def create_case(control: SandboxControl) -> tuple[str, dict[str, Any], str, Callable[[dict], int]]:
    name = "No duplicates, please"
    arguments = {
        "project_id": 1,
        "name": name,
        "interval": "hour",
        "destination": {"type": "HTTP", "config": {"url": "https://us.i.posthog.com/batch/", "token": "t-123456"}},
    }
    return "batch-export-create", arguments, "/1/batch_exports/", lambda s: sum(e["name"] == name for e in s["exports"])


def backfill_case(control: SandboxControl) -> tuple[str, dict[str, Any], str, Callable[[dict], int]]:
    export_id = control.export_id("Hourly events to S3")
    end = sandbox_now(control).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)
    arguments = {
        "project_id": 1,
        "batch_export_id": export_id,
        "start_at": (end - timedelta(hours=3)).isoformat(),
        "end_at": end.isoformat(),
    }
    count = lambda s: sum(b["batch_export"] == export_id for b in [*s["backfills"], *s["pending_backfills"]])  # noqa: E731
    return "batch-export-backfill-create", arguments, f"/{export_id}/backfills/", count


def retry_case(control: SandboxControl) -> tuple[str, dict[str, Any], str, Callable[[dict], int]]:
    export_id = control.export_id("Daily events to Snowflake")
    runs = control.api("GET", f"1/batch_exports/{export_id}/runs/").json()["results"]
    run = next(r for r in runs if r["status"] == "Failed")
    arguments = {"project_id": 1, "batch_export_id": export_id, "run_id": run["id"]}
    count = lambda s: sum(b["batch_export"] == export_id for b in [*s["backfills"], *s["pending_backfills"]])  # noqa: E731
    return "batch-export-run-retry", arguments, f"/runs/{run['id']}/retry/", count


CASES = {"create": create_case, "backfill": backfill_case, "retry": retry_case}


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("case", list(CASES))
async def test_an_ambiguous_write_is_reported_and_never_resent(live: Any, mode: str, case: str, fault: str) -> None:
    sandbox, control = live
    rule, leaves = FAULTS[fault]
    tool, arguments, post_path, count = CASES[case](control)
    before = count(control.state())
    async with late_answers(sandbox.base_url, LATE) as relay:
        settings = settings_for(relay.base_url, DEFAULT_API_KEY, timeout=TIMEOUT)
        async with running_app(settings) as app, connect(app, mode) as client:
            preview = data(await client.call_tool(tool, arguments))
            assert preview["status"] == "confirmation_required", preview
            control.clear_requests()
            if rule is None:
                relay.hold_post_paths = (post_path,)
            else:
                control.fault(method="POST", path_contains=post_path, count=-1, **rule)
            started = time.monotonic()
            result = await client.call_tool(tool, {**arguments, "confirmation_token": preview["confirmation_token"]})
            elapsed = time.monotonic() - started

    assert result.is_error, text(result)
    message = text(result)
    assert AMBIGUOUS in message and "\n" not in message, message
    assert elapsed < 2 * TIMEOUT + 1.0
    sent = wait_for_posts(control, post_path)
    control.clear_faults()
    assert len(sent) == 1, f"the write was sent {len(sent)} times: {sent}"
    created = count(control.state()) - before
    assert created == leaves, f"{created} objects came of one ambiguous {tool}, expected {leaves}"
