"""Read-only mode: only readOnlyHint tools are listed, any other call by name is refused before
anything reaches PostHog, and read-only wins over every allow-list."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from posthog_sandbox import DEFAULT_API_KEY
from server.cli.commands import build_parser, settings_from
from server.config import Settings
from tests.support import (
    MODES,
    SandboxControl,
    connect,
    guarded_arguments,
    running_app,
    settings_for,
    text,
    tools_by_name,
)
from tools.catalog import CATALOG

# What the sandbox's default key may list (batch_export scopes; the integration tools need their own).
READ_TOOLS = {
    spec.name for spec in CATALOG if spec.read_only and not spec.deprecated and spec.scope.startswith("batch_export:")
}
WRITE_TOOLS = {spec.name for spec in CATALOG if not spec.read_only}


def write_calls(control: SandboxControl) -> dict[str, dict[str, Any]]:
    """Valid arguments for every write tool, so a refusal can only come from read-only mode."""
    s3 = control.export_id("Hourly events to S3")
    step = {"project_id": 1, "name": "Probe", "interval": "hour", "step": 0}
    destination = {"type": "HTTP", "config": {"url": "https://us.i.posthog.com/batch/", "token": "t0ken-value"}}
    return {
        **guarded_arguments(control),
        "batch-export-test-step": {"project_id": 1, "step": 0, "batch_export_id": s3, "destination": destination},
        "batch-export-test-step-new": {**step, "destination": destination},
        "batch-export-destination-check": {"project_id": 1, "batch_export_id": s3},
    }


@pytest.mark.parametrize("mode", MODES)
async def test_read_only_lists_read_tools_and_refuses_every_write_by_name(
    sandbox: Any, control: SandboxControl, mode: str, tmp_path: Path
) -> None:
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, read_only=True, include_deprecated=True)
    calls = write_calls(control)
    assert set(calls) == WRITE_TOOLS
    before = control.state()
    async with running_app(settings) as app, connect(app, mode) as client:
        listed = await tools_by_name(client)
        assert set(listed) == READ_TOOLS
        assert all(tool.annotations.read_only_hint is True for tool in listed.values())
        assert all("confirmation_token" not in tool.input_schema["properties"] for tool in listed.values())
        control.clear_requests()
        for name in sorted(WRITE_TOOLS):
            result = await client.call_tool(name, calls[name])
            assert result.is_error, name
            message = text(result)
            assert f"{name} is not available here: the server runs in read-only mode" in message
            assert "Nothing was sent to PostHog." in message
        assert control.requests() == []  # not even a read to build a preview
        read = await client.call_tool("batch-export-list", {"project_id": 1})
        assert not read.is_error
    assert control.state() == before


@pytest.mark.parametrize("mode", MODES)
async def test_read_only_wins_over_the_allow_list(make_sandbox: Any, mode: str, tmp_path: Path) -> None:
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    delete = guarded_arguments(control)["batch-export-delete"]
    settings = settings_for(
        sandbox.base_url,
        DEFAULT_API_KEY,
        tmp_path,
        read_only=True,
        tools=("batch-export-delete", "batch-export-pause", "batch-export-get"),
    )
    async with running_app(settings) as app, connect(app, mode) as client:
        assert set(await tools_by_name(client)) == {"batch-export-get"}
        control.clear_requests()
        result = await client.call_tool("batch-export-delete", delete)
    assert result.is_error and "read-only mode" in text(result)
    assert control.requests() == []
    assert next(e for e in control.state()["exports"] if e["id"] == delete["batch_export_id"])["deleted"] is False
    control.close()


def test_read_only_from_the_environment_and_the_flag() -> None:
    assert Settings.from_env({"POSTHOG_MCP_READ_ONLY": "1"}).read_only is True
    assert Settings.from_env({"POSTHOG_MCP_READ_ONLY": "true"}).read_only is True
    assert Settings.from_env({"POSTHOG_MCP_READ_ONLY": "0"}).read_only is False
    assert Settings.from_env({}).read_only is False
    flagged = settings_from(build_parser().parse_args(["serve", "--read-only"]), env={})
    assert flagged.read_only is True
    unflagged = settings_from(build_parser().parse_args(["serve"]), env={"POSTHOG_MCP_READ_ONLY": "1"})
    assert unflagged.read_only is True
