"""Every tool through a real MCP client, against the sandbox over loopback HTTP,
in both sandbox generations (3 = newest, 1 = the seed docs) and both protocol eras."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support import (
    EVERY_TOOL_SCOPES,
    MODES,
    confirm_with_token,
    connect,
    data,
    guarded_arguments,
    running_app,
    settings_for,
    text,
)

CANARY = "sandbox-canary"
LEGACY_KEY = "phx_legacy_unscoped_key"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def _no_secret(result: Any) -> None:
    assert CANARY not in text(result), "a secret config value reached the model"


@pytest.mark.parametrize("mode", MODES)
async def test_every_tool_end_to_end(make_sandbox: Any, generation: int, mode: str, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY, SandboxKey

    # Gen-1 serves logs to no scoped key (not even `*`) and the destination tests only to `*` or
    # legacy keys, so that generation runs with a legacy unscoped key.
    key = LEGACY_KEY if generation == 1 else DEFAULT_API_KEY
    sandbox = make_sandbox(
        generation=generation,
        keys=[SandboxKey(DEFAULT_API_KEY, list(EVERY_TOOL_SCOPES)), SandboxKey(LEGACY_KEY, [])],
    )
    from tests.support import SandboxControl

    control = SandboxControl(sandbox.base_url, key)
    settings = settings_for(sandbox.base_url, key, tmp_path, include_deprecated=True)
    seen: set[str] = set()

    async with running_app(settings) as app, connect(app, mode) as client:

        async def call(tool: str, /, **arguments: Any) -> Any:
            seen.add(tool)
            result = await client.call_tool(tool, {"project_id": 1, **arguments})
            _no_secret(result)
            return data(result)

        async def write(tool: str, /, **arguments: Any) -> Any:
            seen.add(tool)
            return await confirm_with_token(client, tool, {"project_id": 1, **arguments})

        listed = {t.name for t in (await client.list_tools()).tools}
        guarded = guarded_arguments(control)  # taken first, while each target is in the state its tool needs
        assert "batch-export-backfill-legacy" in listed

        exports = {e["name"]: e for e in (await call("batch-export-list", limit=50))["results"]}
        assert {"Hourly events to S3", "Daily events to Snowflake", "Paused events to Postgres"} <= set(exports)
        failing = await call("batch-export-get", batch_export_id=exports["Daily events to Snowflake"]["id"])
        assert failing["destination"]["type"] == "Snowflake"
        assert "password" not in failing["destination"].get("config", {})

        runs = (await call("batch-export-runs-list", batch_export_id=failing["id"], after="-30d"))["results"]
        failed = [r for r in runs if r["status"] == "Failed"]
        assert failed and failed[0]["latest_error"]
        oldest = min(runs, key=lambda r: r["created_at"])
        assert datetime.fromisoformat(oldest["created_at"].replace("Z", "+00:00")) < (
            datetime.now(UTC) - timedelta(days=7)
        ), "the seed should hold runs older than PostHog's 7-day window"
        assert (await call("batch-export-run-get", batch_export_id=failing["id"], run_id=oldest["id"]))["id"] == oldest[
            "id"
        ]

        errors = await call("batch-export-logs", batch_export_id=failing["id"], level=["ERROR"], limit=20)
        assert errors["results"] and all(row["level"] == "ERROR" for row in errors["results"])
        narrowed = await call("batch-export-logs", batch_export_id=failing["id"], run_id=failed[0]["id"])
        assert narrowed["results"], "a failed run has log rows in its window"
        assert any(failed[0]["data_interval_start"][:10] in row["message"] for row in narrowed["results"])

        retried = await write("batch-export-run-retry", batch_export_id=failing["id"], run_id=failed[0]["id"])
        assert retried["backfill_id"].startswith(failing["id"])
        control.advance(300)
        after = (await call("batch-export-runs-list", batch_export_id=failing["id"], after="-1d"))["results"]
        again = [
            r
            for r in after
            if r["data_interval_start"] == failed[0]["data_interval_start"] and r["id"] != failed[0]["id"]
        ]
        assert len(again) == 1 and again[0]["status"] in ("Completed", "Failed")

        hourly = exports["Hourly events to S3"]["id"]
        clock = control.now()
        end = clock.replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
        started = await write(
            "batch-export-backfill-create",
            batch_export_id=hourly,
            start_at=_iso(end - timedelta(hours=3)),
            end_at=_iso(end),
        )
        assert started["backfill_id"]
        control.advance(5)  # the workflow writes the backfill's row a moment after the answer
        backfills = (await call("batch-export-backfills-list", batch_export_id=hourly))["results"]
        newest = max(backfills, key=lambda b: b["created_at"])
        assert (await call("batch-export-backfill-get", batch_export_id=hourly, backfill_id=newest["id"]))[
            "status"
        ] in ("Starting", "Running")
        control.advance(55)  # the backfill's first run is now Running
        active = [
            r
            for r in (await call("batch-export-runs-list", batch_export_id=hourly, after="-1d"))["results"]
            if r["status"] in ("Running", "Starting")
        ]
        assert active
        assert (await write("batch-export-run-cancel", batch_export_id=hourly, run_id=active[0]["id"]))["cancelled"]
        assert (await write("batch-export-backfill-cancel", batch_export_id=hourly, backfill_id=newest["id"]))[
            "cancelled"
        ]
        cancelled = await call("batch-export-backfill-get", batch_export_id=hourly, backfill_id=newest["id"])
        assert cancelled["status"] == "Cancelled"

        destination = {"type": "HTTP", "config": {"url": "https://us.i.posthog.com/batch/", "token": f"{CANARY}-new"}}
        created = await write("batch-export-create", name="Created by MCP", interval="hour", destination=destination)
        assert created["name"] == "Created by MCP" and "token" not in created["destination"].get("config", {})
        new_id = created["id"]
        assert (await write("batch-export-update", batch_export_id=new_id, name="Renamed by MCP"))[
            "name"
        ] == "Renamed by MCP"
        assert (await write("batch-export-pause", batch_export_id=new_id))["paused"] is True
        assert (await write("batch-export-unpause", batch_export_id=new_id, backfill=True))["paused"] is False

        steps = await call("batch-export-test-steps", destination="BigQuery")
        assert steps["steps"] and all("name" in s for s in steps["steps"])
        bigquery = exports["Events to BigQuery (backfilling)"]
        step = await call("batch-export-test-step", batch_export_id=bigquery["id"], step=0)
        assert step["result"]["status"] in ("Passed", "Failed")
        tried = await call(
            "batch-export-test-step",
            batch_export_id=bigquery["id"],
            destination={"type": "BigQuery", "config": {"dataset_id": "other"}},
        )
        assert tried["result"]["status"] in ("Passed", "Failed")
        bq_new = {
            "type": "BigQuery",
            "config": {
                "dataset_id": "d",
                "project_id": "p",
                "private_key": f"{CANARY}-k",
                "private_key_id": "i",
                "token_uri": "https://t",
                "client_email": "e@x",
            },
        }
        if generation == 3:
            bq_new["integration_id"] = 104
        new_step = await call("batch-export-test-step-new", name="probe", interval="hour", destination=bq_new)
        assert "result" in new_step

        if generation == 1:
            legacy = await write(
                "batch-export-backfill-legacy",
                batch_export_id=hourly,
                start_at=_iso(end - timedelta(hours=2)),
                end_at=_iso(end),
            )
            assert legacy["backfill_id"]
        else:
            seen.add("batch-export-backfill-legacy")  # the route does not exist on newer PostHog (checked below)

        # The answers (issue 11), on the same sandbox.
        health = await call("batch-export-health", state="all")
        assert {e["name"] for e in health["exports"]} == {e["name"] for e in exports.values()} | {"Renamed by MCP"}
        assert any(e["state"] == "failing" for e in health["exports"])
        errors = await call("batch-export-errors", after="-7d")
        assert errors["total"] >= 1 and errors["exports"][0]["count"] >= 1
        check = await call("batch-export-destination-check", batch_export_id=bigquery["id"])
        assert check["steps"] and check["steps"][0]["status"] in ("passed", "failed")
        gaps = await call("batch-export-gaps", batch_export_id=failing["id"])
        assert gaps["ranges"], gaps
        filled = await write("batch-export-gaps-backfill", batch_export_id=failing["id"])
        assert len(filled["started"]) == len(gaps["ranges"])
        waited = await call(
            "batch-export-wait", batch_export_id=failing["id"], run_id=failed[0]["id"], timeout_seconds=1
        )
        assert waited["done"] is True and waited["status"] == "Failed"
        projects = await client.call_tool("batch-export-projects", {})
        seen.add("batch-export-projects")
        assert not projects.is_error and "projects" in data(projects)

        # A tool no step above exercises (a new endpoint, say) is still called: a read with ids from the seed.
        snowflake = exports["Daily events to Snowflake"]["id"]
        a_run = (await call("batch-export-runs-list", batch_export_id=snowflake, after="-30d"))["results"][0]
        seeded = {"batch_export_id": snowflake, "run_id": a_run["id"], "destination": "Snowflake"}
        for tool in (await client.list_tools()).tools:
            if tool.name in seen:
                continue
            if tool.name in guarded:
                # A guarded write no step above exercises: its preview must work from live state, and
                # the confirmed call must answer plainly (its target may have moved since).
                seen.add(tool.name)
                preview = data(await client.call_tool(tool.name, guarded[tool.name]))
                assert preview["status"] == "confirmation_required", preview
                token = {"confirmation_token": preview["confirmation_token"]}
                done = await client.call_tool(tool.name, {**guarded[tool.name], **token})
                assert "inside the MCP server" not in text(done), text(done)
                continue
            if not (tool.annotations and tool.annotations.read_only_hint):
                continue
            properties = tool.input_schema.get("properties", {})
            missing = [n for n in tool.input_schema.get("required", []) if n not in seeded and n != "project_id"]
            assert not missing, f"{tool.name}: no seed value for {missing}; give it a step above"
            await call(tool.name, **{n: v for n, v in seeded.items() if n in properties})

        deleted = await write("batch-export-delete", batch_export_id=new_id)
        assert deleted == {"deleted": True, "id": new_id}
        gone = await client.call_tool("batch-export-get", {"project_id": 1, "batch_export_id": new_id})
        assert gone.is_error and "HTTP 404" in text(gone)

    assert seen == listed, f"tools not exercised: {listed - seen}"
    control.close()


async def test_legacy_backfill_route_is_gone_on_newer_posthog(make_sandbox: Any, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox = make_sandbox(generation=3)
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, include_deprecated=True, confirm="never")
    async with running_app(settings) as app, connect(app) as client:
        exports = data(await client.call_tool("batch-export-list", {"project_id": 1}))["results"]
        result = await client.call_tool(
            "batch-export-backfill-legacy",
            {
                "project_id": 1,
                "batch_export_id": exports[0]["id"],
                "start_at": "2025-01-01T00:00:00Z",
                "end_at": "2025-01-01T05:00:00Z",
            },
        )
    assert result.is_error and "HTTP 404" in text(result)


async def test_gen1_explains_what_scoped_keys_cannot_do(make_sandbox: Any, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox = make_sandbox(generation=1)
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)
    async with running_app(settings) as app, connect(app) as client:
        exports = data(await client.call_tool("batch-export-list", {"project_id": 1}))["results"]
        logs = await client.call_tool("batch-export-logs", {"project_id": 1, "batch_export_id": exports[0]["id"]})
        assert logs.is_error and "HTTP 403" in text(logs) and "legacy" in text(logs)
        steps = await client.call_tool("batch-export-test-steps", {"project_id": 1, "destination": "AwsS3"})
        assert steps.is_error and "INTERNAL" in text(steps)
