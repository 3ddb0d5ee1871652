"""Operator intents (issue 11): calls made and bytes of results returned to the model, per intent,
on the seeded project and a large one, with the targets next to them.

The intents themselves, and how each answer is checked against the sandbox's own state, are the
scenario suite's (tests/scenarios/intents.py); this module plays them once and reports.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from mcp import Client

from posthog_sandbox import DEFAULT_API_KEY, SandboxConfig, start_sandbox
from posthog_sandbox.control import SandboxControl
from server.app import open_app
from server.config import Settings
from tests.scenarios.intents import (
    BACKFILL_INTENT,
    INTENTS,
    TARGETS,
    Played,
    Recorder,
    backfill_target,
    backfill_what_failed_last_week,
    grow_project,
)

LARGE = 500


def _large_config() -> tuple[SandboxConfig, str]:
    if "exports" in SandboxConfig.__dataclass_fields__:
        from posthog_sandbox import SandboxKey

        key = SandboxKey(DEFAULT_API_KEY, ["batch_export:read", "batch_export:write", "query:read"])
        return SandboxConfig(exports=LARGE, keys=[key]), f"{LARGE} exports (--exports {LARGE}), key with query:read"
    return SandboxConfig(), "seed + 60 stand-in exports (the sandbox has no --exports yet)"


def _row(played: Played, project: str, most_calls: int, most_bytes: int | None, channel: str = "") -> dict[str, Any]:
    return {
        "intent": played.intent + (f" ({channel})" if channel else ""),
        "project": project,
        "calls": len(played.calls),
        "tools": played.calls,
        "result_bytes": played.result_bytes,
        "largest_result_bytes": played.largest_result,
        "right": played.right,
        "why": played.why,
        "target_calls": most_calls,
        "target_bytes": most_bytes,
        "meets_target": played.right
        and len(played.calls) <= most_calls
        and (most_bytes is None or played.largest_result <= most_bytes),
    }


async def _play_reads(config: SandboxConfig, project: str, grow: bool, audit: Path) -> list[dict[str, Any]]:
    sandbox = start_sandbox(config)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    try:
        if grow:
            grow_project(control, 60)
        settings = Settings(api_key=DEFAULT_API_KEY, host=sandbox.base_url, audit_log=audit)
        rows = []
        async with open_app(settings) as app, Client(app.server) as client:
            for intent, play in INTENTS.items():
                played = Played(intent)
                await play(Recorder(client, played), control)
                rows.append(_row(played, project, *TARGETS[intent]))
        return rows
    finally:
        control.close()
        sandbox.close()


async def _play_backfill(elicits: bool, audit: Path) -> dict[str, Any]:
    from tests.support import answering

    sandbox = start_sandbox(SandboxConfig())
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    try:
        settings = Settings(api_key=DEFAULT_API_KEY, host=sandbox.base_url, audit_log=audit)
        extra = {"elicitation_callback": answering("accept", {"confirm": True})} if elicits else {}
        async with open_app(settings) as app, Client(app.server, mode="legacy", **extra) as client:
            played = Played(BACKFILL_INTENT)
            await backfill_what_failed_last_week(Recorder(client, played), control, elicits)
        channel = "elicitation" if elicits else "confirmation token"
        return _row(played, "seed", backfill_target(elicits), None, channel)
    finally:
        control.close()
        sandbox.close()


async def run(sandbox: Any = None, settings_dir: Any = None) -> dict[str, Any]:
    folder = Path(settings_dir) if settings_dir else Path(tempfile.mkdtemp(prefix="pbe-scenarios-"))
    audit = folder / "scenarios-audit.jsonl"
    large_config, large_label = _large_config()
    rows = await _play_reads(SandboxConfig(), "seed (4 exports)", False, audit)
    rows += await _play_reads(large_config, large_label, "exports" not in SandboxConfig.__dataclass_fields__, audit)
    rows.append(await _play_backfill(False, audit))
    rows.append(await _play_backfill(True, audit))
    return {"intents": rows, "all_met": all(r["meets_target"] for r in rows)}
