"""POSTHOG_MCP_CONFIRM: which writes the guard stands in front of (always, destructive, never)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from posthog_sandbox import DEFAULT_API_KEY
from server.config import ConfigError, Settings
from tests.support import (
    GUARDED_TOOLS,
    MODES,
    SandboxControl,
    assert_output_valid,
    connect,
    guarded_arguments,
    reviewed_catalog,
    running_app,
    settings_for,
    text,
    tools_by_name,
)
from tools.catalog import CATALOG

ROOT = Path(__file__).resolve().parent.parent
# From the reviewed snapshot, so the catalog is checked against it rather than against itself.
DESTRUCTIVE = {
    name
    for name, entry in reviewed_catalog()["tools"].items()
    if entry["definitions"]["default"]["annotations"].get("destructiveHint")
}
TEST_STEPS = {"batch-export-test-step", "batch-export-test-step-new", "batch-export-destination-check"}


def guarded_in_schemas(listed: dict[str, Any]) -> set[str]:
    return {name for name, tool in listed.items() if "confirmation_token" in tool.input_schema["properties"]}


def test_the_destructive_set_is_what_the_catalog_says() -> None:
    assert {spec.name for spec in CATALOG if spec.destructive} == DESTRUCTIVE
    writes = {spec.name for spec in CATALOG if not spec.read_only}
    # The integrations' write is guarded too; the default key cannot list it (tests/test_fleet_rotation.py).
    assert writes - TEST_STEPS == {*GUARDED_TOOLS, "batch-export-backfill-legacy", "batch-export-integration-create"}


@pytest.mark.parametrize("mode", MODES)
async def test_always_guards_every_write_but_the_destination_tests(
    make_sandbox: Any, mode: str, tmp_path: Path
) -> None:
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    arguments = guarded_arguments(control)
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, include_deprecated=True)
    assert settings.confirm == "always"
    control.clear_requests()
    async with running_app(settings) as app, connect(app, mode) as client:
        listed = await tools_by_name(client)
        assert guarded_in_schemas(listed) == {*GUARDED_TOOLS, "batch-export-backfill-legacy"}
        for name in GUARDED_TOOLS:
            result = await client.call_tool(name, arguments[name])
            assert result.structured_content["status"] == "confirmation_required", name
    assert control.writes() == []
    control.close()


@pytest.mark.parametrize("mode", MODES)
async def test_destructive_guards_only_destructive_tools(make_sandbox: Any, mode: str, tmp_path: Path) -> None:
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    arguments = guarded_arguments(control)
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, confirm="destructive")
    async with running_app(settings) as app, connect(app, mode) as client:
        listed = await tools_by_name(client)
        assert guarded_in_schemas(listed) == DESTRUCTIVE
        assert listed["batch-export-pause"].output_schema.get("required") == ["paused"]

        control.clear_requests()
        paused = await client.call_tool("batch-export-pause", arguments["batch-export-pause"])
        assert_output_valid(listed["batch-export-pause"], paused)
        assert paused.structured_content == {"paused": True}
        assert [w["path"].endswith("/pause/") for w in control.writes()] == [True]

        control.clear_requests()
        deleting = await client.call_tool("batch-export-delete", arguments["batch-export-delete"])
        assert_output_valid(listed["batch-export-delete"], deleting)
        assert deleting.structured_content["status"] == "confirmation_required"
        assert control.writes() == []
    control.close()


@pytest.mark.parametrize("mode", MODES)
async def test_never_turns_the_guard_off_and_warns_at_start(
    make_sandbox: Any, mode: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    arguments = guarded_arguments(control)
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, confirm="never")
    with caplog.at_level(logging.WARNING):
        async with running_app(settings) as app, connect(app, mode) as client:
            warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
            assert any("POSTHOG_MCP_CONFIRM=never" in r.getMessage() for r in warnings)
            listed = await tools_by_name(client)
            assert guarded_in_schemas(listed) == set()

            control.clear_requests()
            refused = await client.call_tool(
                "batch-export-pause", {**arguments["batch-export-pause"], "confirmation_token": "x.y"}
            )
            assert refused.is_error and "unknown parameter 'confirmation_token'" in text(refused)
            assert control.requests() == []

            paused = await client.call_tool("batch-export-pause", arguments["batch-export-pause"])
            assert_output_valid(listed["batch-export-pause"], paused)
            assert paused.structured_content == {"paused": True}
    control.close()


def test_never_warns_on_stderr_when_served(make_sandbox: Any, tmp_path: Path) -> None:
    sandbox = make_sandbox(generation=3)
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTHOG_")}
    env.update(
        POSTHOG_PERSONAL_API_KEY=DEFAULT_API_KEY,
        POSTHOG_HOST=sandbox.base_url,
        POSTHOG_MCP_CONFIRM="never",
        POSTHOG_MCP_AUDIT_LOG=str(tmp_path / "audit.jsonl"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "server"], input="", capture_output=True, text=True, timeout=60, env=env, cwd=ROOT
    )
    assert "POSTHOG_MCP_CONFIRM=never: writes run without any confirmation." in done.stderr
    assert done.stdout == ""
    assert DEFAULT_API_KEY not in done.stderr


@pytest.mark.parametrize(
    ("value", "expected"),
    [("always", "always"), ("Destructive", "destructive"), (" never ", "never"), ("", "always")],
)
def test_policy_comes_from_the_environment(value: str, expected: str) -> None:
    assert Settings.from_env({"POSTHOG_MCP_CONFIRM": value}).confirm == expected


def test_an_unknown_policy_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="POSTHOG_MCP_CONFIRM must be always, destructive or never, not 'sometimes'"):
        Settings.from_env({"POSTHOG_MCP_CONFIRM": "sometimes"})
