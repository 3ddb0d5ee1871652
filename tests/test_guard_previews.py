"""What a person is shown before a write: built from live state, short, and without secret values.

Each preview is read twice, as a client without elicitation sees it (the `confirmation_required`
result) and as a person sees it (the elicitation message), in both protocol eras.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from posthog_sandbox import DEFAULT_API_KEY
from tests.support import (
    MODES,
    SECRET_CANARY,
    SandboxControl,
    answering,
    assert_output_valid,
    connect,
    guarded_arguments,
    running_app,
    settings_for,
    text,
    tools_by_name,
)
from tools.times import to_instant


async def shown(app: Any, mode: str, name: str, arguments: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """The token channel's preview and the elicitation message for one call; neither changes anything."""
    async with connect(app, mode) as client:
        listed = await tools_by_name(client)
        result = await client.call_tool(name, arguments)
        assert_output_valid(listed[name], result)
        body = result.structured_content
        assert body["status"] == "confirmation_required", text(result)
    asked: list[Any] = []
    async with connect(app, mode, elicitation_callback=answering("decline", asked=asked)) as client:
        declined = await client.call_tool(name, arguments)
        assert declined.structured_content["status"] == "declined"
    assert len(asked) == 1
    for seen in (text(result), asked[0].message, json.dumps(declined.structured_content)):
        assert SECRET_CANARY not in seen
        assert DEFAULT_API_KEY not in seen
    return body["preview"], asked[0].message


@pytest.fixture
async def app(sandbox: Any, tmp_path: Any) -> Any:
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as running:
        yield running


@pytest.mark.parametrize("mode", MODES)
async def test_update_shows_a_diff_and_secrets_only_as_changed(
    app: Any, control: SandboxControl, generation: int, mode: str
) -> None:
    postgres = control.export_id("Paused events to Postgres")
    arguments = {
        "project_id": 1,
        "batch_export_id": postgres,
        "name": "Postgres, renamed",
        "destination": {
            "type": "Postgres",
            "config": {"password": f"{SECRET_CANARY}-new-password", "user": f"{SECRET_CANARY}-user", "port": 5433},
        },
    }
    preview, message = await shown(app, mode, "batch-export-update", arguments)
    changes = preview["changes"]
    assert changes["name"] == {"from": "Paused events to Postgres", "to": "Postgres, renamed"}
    assert changes["destination.config.password"] == "(secret, changed)"
    assert changes["destination.config.user"] == "(secret, changed)"
    assert changes["destination.config.port"] == {"from": 5432, "to": 5433}
    assert "destination.type" not in changes
    assert "(secret, changed)" in message and "Postgres, renamed" in message
    assert preview["export"]["name"] == "Paused events to Postgres"


@pytest.mark.parametrize("mode", MODES)
async def test_update_masks_secrets_nested_inside_a_changed_key(make_sandbox: Any, mode: str, tmp_path: Any) -> None:
    sandbox = make_sandbox(generation=1)  # Gen-1 keeps inline credentials, the nested-secret case
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    created = control.api(
        "POST",
        "1/batch_exports/",
        json={
            "name": "Redshift export",
            "interval": "hour",
            "destination": {
                "type": "Redshift",
                "config": {"database": "dev", "host": "redshift.example.com", "user": "u", "password": "p"},
            },
        },
    )
    created.raise_for_status()
    copy_inputs = {
        "authorization": {"aws_access_key_id": f"{SECRET_CANARY}-id", "aws_secret_access_key": f"{SECRET_CANARY}-k"}
    }
    arguments = {
        "project_id": 1,
        "batch_export_id": created.json()["id"],
        "destination": {"type": "Redshift", "config": {"copy_inputs": copy_inputs}},
    }
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        preview, _ = await shown(app, mode, "batch-export-update", arguments)
    assert preview["changes"]["destination.config.copy_inputs"]["to"] == {
        "authorization": {"aws_access_key_id": "(secret, changed)", "aws_secret_access_key": "(secret, changed)"}
    }
    control.close()


@pytest.mark.parametrize("mode", MODES)
async def test_delete_shows_what_is_lost(app: Any, control: SandboxControl, generation: int, mode: str) -> None:
    arguments = guarded_arguments(control)["batch-export-delete"]
    preview, message = await shown(app, mode, "batch-export-delete", arguments)
    assert preview["export"] == {
        "id": arguments["batch_export_id"],
        "name": "Paused events to Postgres",
        "destination_type": "Postgres",
        "interval": "hour",
        "paused": True,
    }
    summary = preview["summary"]
    for part in (
        "'Paused events to Postgres'",
        "Postgres",
        "hour",
        "paused",
        "running backfills and runs will be cancelled",
    ):
        assert part in summary, part
    assert summary in message
    assert "Type the export's name (Paused events to Postgres)" in message


@pytest.mark.parametrize("mode", MODES)
async def test_backfill_shows_range_interval_and_run_count(
    app: Any, control: SandboxControl, generation: int, mode: str
) -> None:
    arguments = guarded_arguments(control)["batch-export-backfill-create"]  # six hours of an hourly export
    preview, message = await shown(app, mode, "batch-export-backfill-create", arguments)
    # The preview shows the bounds exactly as they will be sent (normalised to ISO with an offset).
    start, end = (to_instant(arguments[k]).isoformat() for k in ("start_at", "end_at"))
    assert preview["start_at"] == start and preview["end_at"] == end
    assert preview["runs"] == 6
    assert preview["export"]["interval"] == "hour"
    assert f"from {start} to {end}: 6 run(s)" in message

    daily = control.export_id("Daily events to Snowflake")
    bounds = (
        {"start_at": "2026-11-10", "end_at": "2026-11-13"}
        if generation == 3
        else {
            "start_at": "2026-11-10T00:00:00Z",
            "end_at": "2026-11-13T00:00:00Z",
        }
    )
    preview, _ = await shown(
        app, mode, "batch-export-backfill-create", {"project_id": 1, "batch_export_id": daily, **bounds}
    )
    assert preview["runs"] == 3 and preview["export"]["interval"] == "day"


@pytest.mark.parametrize("mode", MODES)
async def test_pause_and_unpause_show_the_current_state_and_the_backfill_range(
    app: Any, control: SandboxControl, mode: str
) -> None:
    arguments = guarded_arguments(control)
    preview, _ = await shown(app, mode, "batch-export-pause", arguments["batch-export-pause"])
    assert preview["export"]["paused"] is False and preview["summary"].startswith("Pause export 'Hourly events to S3'")

    postgres = next(e for e in control.state()["exports"] if e["name"] == "Paused events to Postgres")
    preview, message = await shown(app, mode, "batch-export-unpause", arguments["batch-export-unpause"])
    assert preview["export"]["paused"] is True
    assert preview["backfill_range"] == {"start_at": postgres["last_paused_at"], "end_at": "now"}
    assert f"backfill from {postgres['last_paused_at']}" in message

    already = await shown(app, mode, "batch-export-pause", {"project_id": 1, "batch_export_id": postgres["id"]})
    assert "already paused; pausing again changes nothing" in already[0]["summary"]


@pytest.mark.parametrize("mode", MODES)
async def test_retry_and_cancels_show_the_target_status(app: Any, control: SandboxControl, mode: str) -> None:
    arguments = guarded_arguments(control)
    state = control.state()
    failed = next(r for r in state["runs"] if r["id"] == arguments["batch-export-run-retry"]["run_id"])
    preview, message = await shown(app, mode, "batch-export-run-retry", arguments["batch-export-run-retry"])
    assert preview["run"]["status"] == "Failed"
    assert preview["run"]["data_interval_start"] == failed["data_interval_start"]
    assert preview["run"]["data_interval_end"] == failed["data_interval_end"]
    assert f"Retry the Failed run for {failed['data_interval_start']} - {failed['data_interval_end']}" in message

    preview, _ = await shown(app, mode, "batch-export-run-cancel", arguments["batch-export-run-cancel"])
    assert preview["run"]["status"] == "Running" and preview["summary"].startswith("Cancel the Running run")

    preview, _ = await shown(app, mode, "batch-export-backfill-cancel", arguments["batch-export-backfill-cancel"])
    assert preview["backfill"]["status"] == "Running" and preview["summary"].startswith("Cancel the Running backfill")

    # A cancel PostHog would refuse is refused here, before any preview to approve or token.
    completed = next(r for r in state["runs"] if r["status"] == "Completed")
    not_running = {"project_id": 1, "batch_export_id": completed["batch_export"], "run_id": completed["id"]}
    async with connect(app, mode) as client:
        refused = await client.call_tool("batch-export-run-cancel", not_running)
    assert refused.is_error and "The run is Completed" in text(refused) and "Nothing was changed" in text(refused)


@pytest.mark.parametrize("mode", MODES)
async def test_create_shows_the_export_and_which_secrets_are_set(app: Any, control: SandboxControl, mode: str) -> None:
    arguments = guarded_arguments(control)["batch-export-create"]
    preview, message = await shown(app, mode, "batch-export-create", arguments)
    assert preview["name"] == "Guarded HTTP export" and preview["interval"] == "hour"
    assert preview["destination_type"] == "HTTP" and preview["paused"] is False
    assert preview["destination_config"] == {"url": "https://us.i.posthog.com/batch/", "token": "(secret, set)"}
    assert "Create active hourly export 'Guarded HTTP export' of events to HTTP in project 1." in message
