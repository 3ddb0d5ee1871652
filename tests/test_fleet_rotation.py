"""Issue 20: credentials changed where PostHog keeps them.

On today's PostHog every Snowflake export of the 500-export project shares one integration: reading
who shares it, creating a new one and moving every export to it takes a few calls and two
confirmations. On older PostHog (inline credentials) one secret is set on every Snowflake export with
one confirmation. A key PostHog keeps in an integration is refused before anything is previewed, naming
the integration. Through a real MCP client against the sandbox, checked against its stored state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from posthog_sandbox import DEFAULT_API_KEY, SandboxKey
from posthog_sandbox.control import SandboxControl
from tests.support import MODES, answering, connect, data, running_app, settings_for, text

SCOPES = ["batch_export:read", "batch_export:write", "integration:read", "integration:write"]
NEW_SECRET = "sandbox-canary-rotated-password"


class Session:
    def __init__(self, client: Any, elicits: bool) -> None:
        self.client = client
        self.elicits = elicits
        self.calls: list[str] = []
        self.confirmations = 0

    async def read(self, name: str, arguments: dict[str, Any]) -> Any:
        self.calls.append(name)
        return data(await self.client.call_tool(name, arguments))

    async def write(self, name: str, arguments: dict[str, Any]) -> Any:
        """A guarded call as a person confirms it: asked once (elicitation), or a preview and its token."""
        self.calls.append(name)
        first = data(await self.client.call_tool(name, arguments))
        self.confirmations += 1
        if self.elicits:
            assert first["status"] == "executed", first
            return first["result"]
        assert first["status"] == "confirmation_required", first
        self.calls.append(name)
        second = data(
            await self.client.call_tool(name, {**arguments, "confirmation_token": first["confirmation_token"]})
        )
        assert second["status"] == "executed", second
        return second["result"]


def snowflake(control: SandboxControl) -> list[dict[str, Any]]:
    return [e for e in control.state()["exports"] if e["destination"]["type"] == "Snowflake" and not e["deleted"]]


@pytest.mark.parametrize("elicits", [False, True], ids=["token", "elicitation"])
@pytest.mark.parametrize("mode", MODES)
async def test_every_snowflake_export_moves_to_a_new_integration_in_few_calls_and_two_confirmations(
    make_sandbox: Any, mode: str, elicits: bool, tmp_path: Path
) -> None:
    sandbox = make_sandbox(exports=500, keys=[SandboxKey(DEFAULT_API_KEY, SCOPES)], throttle=True)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    before = snowflake(control)
    old = {e["destination"]["integration"] for e in before}
    assert len(before) >= 40 and len(old) == 1, "every Snowflake export shares one integration"
    (shared,) = old
    extra = {"elicitation_callback": answering("accept", {"confirm": True})} if elicits else {}
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, toolsets=())
    async with running_app(settings) as app, connect(app, mode, **extra) as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        assert {"batch-export-integrations", "batch-export-integration-create"} <= listed
        session = Session(client, elicits)
        seen = await session.read("batch-export-integrations", {"project_id": 1, "destination_type": "Snowflake"})
        radius = next(i for i in seen["integrations"] if i["id"] == shared)
        assert radius["used_by"] == len(before) and radius["kind"] == "snowflake" and radius["display_name"]
        config = {
            "name": "acme-snowflake-rotated",
            "account": "acme-xy12345",
            "user": "posthog",
            "password": NEW_SECRET,
        }
        control.clear_requests()
        created = await session.write(
            "batch-export-integration-create", {"project_id": 1, "kind": "snowflake", "integration_config": config}
        )
        fresh = created["id"]
        moved = await session.write(
            "batch-export-update",
            {
                "project_id": 1,
                "on_integration": shared,
                "destination": {"type": "Snowflake", "config": {}, "integration_id": fresh},
            },
        )
    assert len(session.calls) <= 6 and session.confirmations == 2, (session.calls, session.confirmations)
    after = snowflake(control)
    assert {e["destination"]["integration"] for e in after} == {fresh}
    assert len(moved["started"]) == len(before) and "skipped" not in moved and "failed" not in moved
    writes = [r for r in control.requests() if r["method"] in ("POST", "PATCH")]
    patches = [r for r in writes if r["method"] == "PATCH"]
    assert len(patches) == len(before) and all(r["status"] == 200 for r in patches)
    assert [r["status"] for r in writes if r["path"].endswith("/integrations/")] == [201]
    assert NEW_SECRET not in json.dumps(moved) + json.dumps(created)
    audit = (tmp_path / "audit.jsonl").read_text()
    assert NEW_SECRET not in audit


async def test_a_credential_posthog_keeps_in_an_integration_is_refused_before_the_preview(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sandbox = make_sandbox(exports=500, keys=[SandboxKey(DEFAULT_API_KEY, SCOPES)])
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    exports = snowflake(control)
    one, shared = exports[0]["id"], exports[0]["destination"]["integration"]
    password = {"type": "Snowflake", "config": {"password": NEW_SECRET}}
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app, connect(app) as client:
        control.clear_requests()
        for arguments in (
            {"project_id": 1, "batch_export_id": one, "destination": password},
            {"project_id": 1, "on_integration": shared, "destination": password},
        ):
            result = await client.call_tool("batch-export-update", arguments)
            message = text(result)
            assert result.is_error and "Nothing was changed" in message, message
            assert f"integration {shared} (acme-snowflake-a" in message and f"{len(exports)} export(s) share" in message
            assert "batch-export-integration-create" in message and "on_integration" in message
            assert NEW_SECRET not in message
    assert control.writes() == []
    lines = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [line["decision"] for line in lines] == ["refused", "refused"]  # refused before any preview


async def test_a_key_without_integration_scopes_still_hears_which_integration(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sandbox = make_sandbox(exports=100)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    one = snowflake(control)[0]
    arguments = {
        "project_id": 1,
        "batch_export_id": one["id"],
        "destination": {"type": "Snowflake", "config": {"user": "x"}},
    }
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, toolsets=())) as app:
        async with connect(app) as client:
            listed = {t.name for t in (await client.list_tools()).tools}
            assert not {"batch-export-integrations", "batch-export-integration-create"} & listed
            result = await client.call_tool("batch-export-update", arguments)
    assert result.is_error and f"integration {one['destination']['integration']}," in text(result), text(result)


@pytest.mark.parametrize("elicits", [False, True], ids=["token", "elicitation"])
async def test_older_posthog_one_secret_on_every_snowflake_export_with_one_confirmation(
    make_sandbox: Any, elicits: bool, tmp_path: Path
) -> None:
    sandbox = make_sandbox(generation=1, exports=500, throttle=True)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    before = snowflake(control)
    assert len(before) >= 40 and all(e["destination"]["config"].get("password") for e in before)
    extra = {"elicitation_callback": answering("accept", {"confirm": True})} if elicits else {}
    arguments = {
        "project_id": 1,
        "all_of_type": True,
        "destination": {"type": "Snowflake", "config": {"password": NEW_SECRET}},
    }
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, toolsets=())) as app:
        async with connect(app, **extra) as client:
            session = Session(client, elicits)
            control.clear_requests()
            receipt = await session.write("batch-export-update", arguments)
    assert session.confirmations == 1 and len(session.calls) <= 2
    after = snowflake(control)
    assert all(e["destination"]["config"]["password"] == NEW_SECRET for e in after)
    assert len(receipt["started"]) == len(before) and "deferred" not in receipt
    # Everything else each export had is still there (PostHog merges the config).
    kept = {e["id"]: {k: v for k, v in e["destination"]["config"].items() if k != "password"} for e in before}
    assert kept == {e["id"]: {k: v for k, v in e["destination"]["config"].items() if k != "password"} for e in after}
    assert NEW_SECRET not in json.dumps(receipt) and NEW_SECRET not in (tmp_path / "audit.jsonl").read_text()


async def test_moving_to_an_integration_whose_test_steps_fail_is_refused_before_anyone_is_asked(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sandbox = make_sandbox(exports=100, keys=[SandboxKey(DEFAULT_API_KEY, SCOPES)])
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    exports = snowflake(control)
    for export in exports:  # Snowflake answers nobody, whatever the credentials
        control.set_outcome(export["id"], "fail", error="250001: Could not connect to Snowflake backend")
    shared = exports[0]["destination"]["integration"]
    other = next(
        i["id"]
        for i in control.state()["integrations"]
        if i["kind"] == "snowflake" and i["id"] != shared and i["team_id"] == 1
    )
    arguments = {
        "project_id": 1,
        "on_integration": shared,
        "destination": {"type": "Snowflake", "config": {}, "integration_id": other},  # acme-snowflake-b
    }
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app, connect(app) as client:
        control.clear_requests()
        result = await client.call_tool("batch-export-update", arguments)
    message = text(result)
    assert result.is_error and "test steps fail" in message and "250001" in message, message
    assert [r for r in control.writes() if not r["path"].endswith("run_test_step/")] == []
