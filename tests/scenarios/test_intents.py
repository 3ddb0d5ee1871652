"""The scenario suite: operator intents through mcp.Client against the sandbox, both protocol eras,
with and without elicitation, on the seeded project and a larger one; targets of issue 11."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from posthog_sandbox.control import SandboxControl
from tests.scenarios.intents import (
    BACKFILL_INTENT,
    INTENTS,
    OUTAGE_INTENT,
    TARGETS,
    Played,
    Recorder,
    backfill_target,
    backfill_what_failed_last_week,
    grow_project,
    repair_an_outage,
)
from tests.support import MODES, answering, connect, running_app, settings_for

SIZES = ("seed", "large")


def _large(make_sandbox: Any) -> tuple[Any, SandboxControl]:
    from posthog_sandbox import DEFAULT_API_KEY, SandboxConfig

    if "exports" in SandboxConfig.__dataclass_fields__:
        from posthog_sandbox import SandboxKey

        # A key that may use the Query API: across 500 exports, one query instead of 500 logs reads.
        scopes = ["batch_export:read", "batch_export:write", "query:read"]
        sandbox = make_sandbox(exports=500, keys=[SandboxKey(DEFAULT_API_KEY, scopes)])
        return sandbox, SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    sandbox = make_sandbox()  # until the sandbox seeds a large project: a stand-in
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    grow_project(control, 60)
    return sandbox, control


def _sandbox(make_sandbox: Any, size: str) -> tuple[Any, SandboxControl]:
    from posthog_sandbox import DEFAULT_API_KEY

    if size == "large":
        return _large(make_sandbox)
    sandbox = make_sandbox()
    return sandbox, SandboxControl(sandbox.base_url, DEFAULT_API_KEY)


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("mode", MODES)
async def test_read_intents_meet_their_targets(make_sandbox: Any, mode: str, size: str, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox, control = _sandbox(make_sandbox, size)
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, toolsets=())) as app:
        async with connect(app, mode) as client:
            for intent, play in INTENTS.items():
                played = Played(intent)
                await play(Recorder(client, played), control)
                most_calls, most_bytes = TARGETS[intent]
                assert played.right, f"{intent}: {played.why}"
                assert len(played.calls) <= most_calls, f"{intent}: {played.calls}"
                if most_bytes is not None:
                    assert played.largest_result <= most_bytes, f"{intent}: {played.largest_result} bytes"


@pytest.mark.parametrize("elicits", [False, True], ids=["token", "elicitation"])
@pytest.mark.parametrize("mode", MODES)
async def test_backfill_what_failed_last_week(make_sandbox: Any, mode: str, elicits: bool, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox, control = _sandbox(make_sandbox, "seed")
    extra = {"elicitation_callback": answering("accept", {"confirm": True})} if elicits else {}
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, toolsets=())) as app:
        async with connect(app, mode, **extra) as client:
            played = Played(BACKFILL_INTENT)
            await backfill_what_failed_last_week(Recorder(client, played), control, elicits)
    assert played.right, played.why
    assert len(played.calls) == backfill_target(elicits), played.calls
    writes = [c for c in played.calls if c == "batch-export-gaps-backfill"]
    assert len(writes) == len(played.calls) - 1


@pytest.mark.parametrize("elicits", [False, True], ids=["token", "elicitation"])
@pytest.mark.parametrize("mode", MODES)
async def test_repair_an_outage_across_the_project(make_sandbox: Any, mode: str, elicits: bool, tmp_path: Path) -> None:
    """Issue 20's target: an outage across 40+ of 500 exports found and repaired in at most 4 calls and one
    confirmation, on a PostHog that lets a project run 100 backfills at once."""
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox = make_sandbox(exports=500, max_concurrent_backfills=100)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    extra = {"elicitation_callback": answering("accept", {"confirm": True})} if elicits else {}
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, toolsets=(), backfill_limit=100)
    async with running_app(settings) as app, connect(app, mode, **extra) as client:
        played = Played(OUTAGE_INTENT)
        await repair_an_outage(Recorder(client, played), control, elicits)
    assert played.right, played.why
    assert len(played.calls) <= (3 if elicits else 4), played.calls
    assert played.largest_result <= 16_000, played.largest_result
