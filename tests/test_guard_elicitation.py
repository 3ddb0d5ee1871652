"""The guard's elicitation channel, through a real MCP client in both protocol eras against the sandbox.

In the handshake era (mode="legacy") the server asks mid-call with `elicitation/create`; in the
2026-07-28 era (mode="auto") it answers `InputRequiredResult` and the client retries with the
user's answer. Either way: accept executes exactly one write, decline and cancel change nothing.
"""

from __future__ import annotations

from typing import Any

import mcp.types as types
import pytest

from posthog_sandbox import DEFAULT_API_KEY
from tests.support import (
    GUARDED_TOOLS,
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

# The one write each guarded tool sends upstream: method and the end of its path.
EXPECTED_WRITE = {
    "batch-export-create": ("POST", "/batch_exports/"),
    "batch-export-update": ("PATCH", "/"),
    "batch-export-pause": ("POST", "/pause/"),
    "batch-export-unpause": ("POST", "/unpause/"),
    "batch-export-backfill-create": ("POST", "/backfills/"),
    "batch-export-backfill-legacy": ("POST", "/backfill/"),
    "batch-export-gaps-backfill": ("POST", "/backfills/"),  # the seed's failing export has one gap range
    "batch-export-run-retry": ("POST", "/retry/"),
    "batch-export-run-cancel": ("POST", "/cancel/"),
    "batch-export-backfill-cancel": ("POST", "/cancel/"),
    "batch-export-delete": ("DELETE", "/"),
}


def accepting(names: dict[str, str], asked: list[Any]) -> Any:
    """Accept every question: type the export's name when asked for it, else say yes."""

    async def callback(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params)
        schema = params.requested_schema  # type: ignore[union-attr]
        if "name" in schema["properties"]:
            wanted = next(name for name in names.values() if f"({name})" in params.message)
            return types.ElicitResult(action="accept", content={"name": wanted})
        return types.ElicitResult(action="accept", content={"confirm": True})

    return callback


def export_names(control: SandboxControl) -> dict[str, str]:
    return {e["id"]: e["name"] for e in control.state()["exports"]}


def effect_seen(name: str, arguments: dict[str, Any], before: dict[str, Any], after: dict[str, Any]) -> bool:
    """Whether the sandbox's state shows the write the tool was asked for."""
    exports = {e["id"]: e for e in after["exports"]}
    target = arguments.get("batch_export_id")
    # a started backfill counts before the workflow writes its row (docs/posthog-api.md, "Backfills")
    backfills_for = lambda state: [  # noqa: E731
        b for b in [*state["backfills"], *state["pending_backfills"]] if b["batch_export"] == target
    ]
    if name == "batch-export-create":
        return any(e["name"] == arguments["name"] for e in after["exports"])
    if name == "batch-export-update":
        return exports[target]["name"] == arguments["name"]
    if name == "batch-export-pause":
        return exports[target]["paused"] is True
    if name == "batch-export-unpause":
        return exports[target]["paused"] is False and len(backfills_for(after)) == len(backfills_for(before)) + 1
    if name in (
        "batch-export-backfill-create",
        "batch-export-backfill-legacy",
        "batch-export-run-retry",
        "batch-export-gaps-backfill",
    ):
        return len(backfills_for(after)) == len(backfills_for(before)) + 1
    if name == "batch-export-run-cancel":
        return next(r for r in after["runs"] if r["id"] == arguments["run_id"])["status"] == "Cancelled"
    if name == "batch-export-backfill-cancel":
        return next(b for b in after["backfills"] if b["id"] == arguments["backfill_id"])["status"] == "Cancelled"
    if name == "batch-export-delete":
        return exports[target]["deleted"] is True
    raise AssertionError(f"no effect check for {name}")


@pytest.mark.parametrize("mode", MODES)
async def test_accept_executes_every_guarded_tool_once(
    sandbox: Any, control: SandboxControl, generation: int, mode: str, tmp_path: Any
) -> None:
    arguments = guarded_arguments(control)
    names = export_names(control)
    tools = list(GUARDED_TOOLS)
    if generation == 1:
        tools.insert(tools.index("batch-export-run-retry"), "batch-export-backfill-legacy")
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, include_deprecated=True)
    asked: list[Any] = []
    async with running_app(settings) as app, connect(app, mode, elicitation_callback=accepting(names, asked)) as client:
        listed = await tools_by_name(client)
        for name in tools:
            before = control.state()
            control.clear_requests()
            questions = len(asked)
            result = await client.call_tool(name, arguments[name])
            assert_output_valid(listed[name], result)
            assert result.structured_content["status"] == "executed", (name, text(result))
            assert len(asked) == questions + 1, f"{name} did not ask the user exactly once"
            writes = control.writes()
            method, suffix = EXPECTED_WRITE[name]
            assert [(w["method"], w["path"].endswith(suffix)) for w in writes] == [(method, True)], (name, writes)
            assert writes[0]["status"] < 300, (name, writes)
            assert effect_seen(name, arguments[name], before, control.state()), name
    assert all(SECRET_CANARY not in question.message for question in asked)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("action", ["decline", "cancel"])
async def test_decline_and_cancel_change_nothing(
    sandbox: Any, control: SandboxControl, generation: int, mode: str, action: str, tmp_path: Any
) -> None:
    arguments = guarded_arguments(control)
    tools = [*GUARDED_TOOLS, *(["batch-export-backfill-legacy"] if generation == 1 else [])]
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, include_deprecated=True)
    asked: list[Any] = []
    before = control.state()
    control.clear_requests()
    async with (
        running_app(settings) as app,
        connect(app, mode, elicitation_callback=answering(action, asked=asked)) as client,
    ):
        listed = await tools_by_name(client)
        for name in tools:
            result = await client.call_tool(name, arguments[name])
            assert_output_valid(listed[name], result)
            body = result.structured_content
            expected = "cancelled" if action == "cancel" else "declined"
            assert body["status"] == expected, (name, body)
            assert "nothing changed" in body["message"]
            assert body["preview"]["summary"]
    assert len(asked) == len(tools)
    assert control.writes() == []
    assert control.state() == before


@pytest.mark.parametrize("mode", MODES)
async def test_accept_without_saying_yes_is_a_decline(
    sandbox: Any, control: SandboxControl, mode: str, tmp_path: Any
) -> None:
    arguments = guarded_arguments(control)["batch-export-pause"]
    before = control.state()
    control.clear_requests()
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)
    callback = answering("accept", {"confirm": False})
    async with running_app(settings) as app, connect(app, mode, elicitation_callback=callback) as client:
        result = await client.call_tool("batch-export-pause", arguments)
    assert result.structured_content["status"] == "declined"
    assert control.writes() == []
    assert control.state() == before


@pytest.mark.parametrize("mode", MODES)
async def test_delete_asks_for_the_name_and_a_wrong_name_deletes_nothing(
    sandbox: Any, control: SandboxControl, generation: int, mode: str, tmp_path: Any
) -> None:
    arguments = guarded_arguments(control)["batch-export-delete"]
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)
    before = control.state()
    control.clear_requests()
    asked: list[Any] = []
    wrong = answering("accept", {"name": "Paused events to Postgre"}, asked)
    async with running_app(settings) as app, connect(app, mode, elicitation_callback=wrong) as client:
        listed = await tools_by_name(client)
        result = await client.call_tool("batch-export-delete", arguments)
        assert_output_valid(listed["batch-export-delete"], result)
    question = asked[0]
    assert "Type the export's name (Paused events to Postgres) to confirm." in question.message
    assert list(question.requested_schema["properties"]) == ["name"]
    assert question.requested_schema["properties"]["name"]["type"] == "string"
    assert result.structured_content["status"] == "declined"
    assert "typed name did not match" in result.structured_content["message"]
    assert control.writes() == []
    assert control.state() == before

    right = answering("accept", {"name": "Paused events to Postgres"})
    async with running_app(settings) as app, connect(app, mode, elicitation_callback=right) as client:
        result = await client.call_tool("batch-export-delete", arguments)
    assert result.structured_content["status"] == "executed", text(result)
    assert result.structured_content["result"] == {"deleted": True, "id": arguments["batch_export_id"]}
    deleted = next(e for e in control.state()["exports"] if e["id"] == arguments["batch_export_id"])
    assert deleted["deleted"] is True


@pytest.mark.parametrize("mode", MODES)
async def test_other_writes_ask_yes_or_no(sandbox: Any, control: SandboxControl, mode: str, tmp_path: Any) -> None:
    arguments = guarded_arguments(control)
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)
    asked: list[Any] = []
    async with (
        running_app(settings) as app,
        connect(app, mode, elicitation_callback=answering("decline", asked=asked)) as client,
    ):
        for name in GUARDED_TOOLS:
            if name != "batch-export-delete":
                await client.call_tool(name, arguments[name])
    for question in asked:
        assert question.requested_schema["properties"] == {
            "confirm": {"type": "boolean", "title": "Confirm", "description": "Yes, go ahead."}
        }
        assert question.message.endswith("Go ahead?")


@pytest.mark.parametrize("mode", MODES)
async def test_target_changed_while_the_user_was_asked_is_refused(make_sandbox: Any, mode: str, tmp_path: Any) -> None:
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    arguments = guarded_arguments(control)["batch-export-pause"]
    export_path = f"1/batch_exports/{arguments['batch_export_id']}/"

    async def rename_then_accept(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        control.api("PATCH", export_path, json={"name": "Renamed by someone else"}).raise_for_status()
        control.clear_requests()
        return types.ElicitResult(action="accept", content={"confirm": True})

    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)
    async with running_app(settings) as app, connect(app, mode, elicitation_callback=rename_then_accept) as client:
        result = await client.call_tool("batch-export-pause", arguments)
    assert result.is_error
    assert "changed since the preview" in text(result)
    assert control.writes() == []
    assert control.api("GET", export_path).json()["paused"] is False
    control.close()


@pytest.mark.parametrize("mode", MODES)
async def test_destination_test_steps_are_not_guarded(make_sandbox: Any, mode: str, tmp_path: Any) -> None:
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    s3 = control.export_id("Hourly events to S3")
    asked: list[Any] = []
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)
    step_new = {
        "project_id": 1,
        "name": "Probe",
        "interval": "hour",
        "destination": {
            "type": "BigQuery",
            "config": {"dataset_id": "analytics", "table_id": "events"},
            "integration_id": 104,
        },
    }
    step_existing = {
        "project_id": 1,
        "batch_export_id": s3,
        # A key that keeps the destination where it is (moving it without credentials is refused, issue 13 item 8).
        "destination": {"type": "AwsS3", "config": {"prefix": "probe/"}},
    }
    async with (
        running_app(settings) as app,
        connect(app, mode, elicitation_callback=answering("decline", asked=asked)) as client,
    ):
        listed = await tools_by_name(client)
        for name, arguments in (
            ("batch-export-test-step-new", step_new),
            ("batch-export-test-step", step_existing),
        ):
            assert "confirmation_token" not in listed[name].input_schema["properties"]
            result = await client.call_tool(name, arguments)
            assert_output_valid(listed[name], result)
            assert "status" not in result.structured_content or result.structured_content["status"] not in (
                "declined",
                "confirmation_required",
            )
    assert asked == []
    control.close()


async def test_modern_request_state_is_single_use_and_bound_to_the_call(make_sandbox: Any, tmp_path: Any) -> None:
    """Drive the 2026-07-28 rounds by hand: the requestState answers one question, for one call, once."""
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    arguments = guarded_arguments(control)
    pause = arguments["batch-export-pause"]
    other = {"project_id": 1, "batch_export_id": control.export_id("Events to BigQuery (backfilling)")}
    yes = {"confirm": types.ElicitResult(action="accept", content={"confirm": True})}
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)
    async with running_app(settings) as app, connect(app, "auto", elicitation_callback=answering("decline")) as client:
        session = client.session
        asked = await session.call_tool("batch-export-pause", pause, allow_input_required=True)
        assert isinstance(asked, types.InputRequiredResult)
        state = asked.request_state
        assert "Pause export 'Hourly events to S3'" in asked.input_requests["confirm"].params.message

        control.clear_requests()
        moved = await session.call_tool("batch-export-pause", other, input_responses=yes, request_state=state)
        assert moved.is_error and "arguments differ" in text(moved)
        forged = await session.call_tool("batch-export-pause", pause, input_responses=yes, request_state=state[:-4])
        assert forged.is_error and "requestState is not valid" in text(forged)
        as_token = await session.call_tool("batch-export-pause", {**pause, "confirmation_token": state})
        assert as_token.is_error and "other confirmation channel" in text(as_token)
        assert control.writes() == []

        asked = await session.call_tool("batch-export-pause", pause, allow_input_required=True)
        state = asked.request_state
        done = await session.call_tool("batch-export-pause", pause, input_responses=yes, request_state=state)
        assert done.structured_content["status"] == "executed", text(done)
        control.clear_requests()
        again = await session.call_tool("batch-export-pause", pause, input_responses=yes, request_state=state)
        assert again.is_error and "requestState was already used" in text(again)
        assert control.writes() == []
    control.close()
