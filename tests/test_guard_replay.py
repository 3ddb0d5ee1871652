"""A spent token replayed on another replica (same POSTHOG_MCP_CONFIRM_SECRET) must not write twice.

"Usable once" is remembered per process; what stops a replay elsewhere is the re-check: every
confirmation is bound to a version of its target, and for writes that add to a collection (create,
backfill, retry) that version includes the collection's newest member, which the write changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.support import SandboxControl, connect, data, running_app, settings_for, text

SECRET = b"shared-between-two-replicas-for-tests"


def _count(state: dict[str, Any], kind: str) -> int:
    # a started backfill counts before the workflow writes its row (docs/posthog-api.md, "Backfills")
    return len(state[kind]) + (len(state["pending_backfills"]) if kind == "backfills" else 0)


@pytest.mark.parametrize("tool", ["batch-export-create", "batch-export-backfill-create", "batch-export-run-retry"])
async def test_replayed_token_on_another_replica_is_refused(make_sandbox: Any, tmp_path: Path, tool: str) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    failing = control.export_id("Daily events to Snowflake")
    hourly = control.export_id("Hourly events to S3")
    runs = control.api("GET", f"1/batch_exports/{failing}/runs/", params={"after": "-30d"}).json()["results"]
    arguments = {
        "batch-export-create": {
            "name": "Replay probe",
            "interval": "hour",
            "destination": {
                "type": "HTTP",
                "config": {"url": "https://us.i.posthog.com/batch/", "token": "sandbox-canary-replay"},
            },
        },
        "batch-export-backfill-create": {
            "batch_export_id": hourly,
            "start_at": "2026-11-01T00:00:00+00:00",
            "end_at": "2026-11-01T03:00:00+00:00",
        },
        "batch-export-run-retry": {"batch_export_id": failing, "run_id": runs[-1]["id"]},
    }[tool]
    arguments = {"project_id": 1, **arguments}
    kind = {
        "batch-export-create": "exports",
        "batch-export-backfill-create": "backfills",
        "batch-export-run-retry": "backfills",
    }[tool]
    one = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path / "a", confirm_secret=SECRET)
    two = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path / "b", confirm_secret=SECRET)
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir()
    before = _count(control.state(), kind)
    async with running_app(one) as first, running_app(two) as second:
        async with connect(first) as client:
            preview = data(await client.call_tool(tool, arguments))
            token = preview["confirmation_token"]
            done = data(await client.call_tool(tool, {**arguments, "confirmation_token": token}))
            assert done["status"] == "executed"
        # The backfill's row is written a moment after PostHog answers; the replay comes once it is there.
        # (A replay within that moment is not caught by binding to the newest member: a follow-up for the guard.)
        control.advance(5)
        control.clear_requests()
        async with connect(second) as client:
            replay = await client.call_tool(tool, {**arguments, "confirmation_token": token})
    assert replay.is_error and "changed since the preview" in text(replay)
    assert control.writes() == []
    assert _count(control.state(), kind) == before + 1
    control.close()
