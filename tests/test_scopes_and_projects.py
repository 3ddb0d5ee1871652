"""Scope discovery hides what the key cannot do; a pinned project cannot be escaped."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from server.config import ConfigError
from tests.support import SandboxControl, connect, data, running_app, settings_for, text

READ_ONLY_TOOLS = {
    "batch-export-list",
    "batch-export-get",
    "batch-export-logs",
    "batch-export-runs-list",
    "batch-export-run-get",
    "batch-export-backfills-list",
    "batch-export-backfill-get",
    "batch-export-test-steps",
    "batch-export-health",
    "batch-export-errors",
    "batch-export-gaps",
    "batch-export-wait",
    "batch-export-projects",
    "batch-export-changes",
}


async def _listed(base_url: str, key: str, tmp_path: Path, **overrides: Any) -> set[str]:
    async with running_app(settings_for(base_url, key, tmp_path, **overrides)) as app, connect(app) as client:
        return {t.name for t in (await client.list_tools()).tools}


@pytest.mark.parametrize(
    ("scopes", "expect_writes"),
    [(["batch_export:read"], False), (["batch_export:write"], True), (["*"], True), ([], True)],
    ids=["read", "write-implies-read", "star", "legacy-unscoped"],
)
async def test_key_scopes_decide_the_listing(
    make_sandbox: Any, tmp_path: Path, scopes: list[str], expect_writes: bool
) -> None:
    from posthog_sandbox import SandboxKey

    sandbox = make_sandbox(keys=[SandboxKey("phx_scoped_key", scopes)])
    listed = await _listed(sandbox.base_url, "phx_scoped_key", tmp_path)
    assert READ_ONLY_TOOLS <= listed
    assert ("batch-export-delete" in listed) == expect_writes
    assert (listed == READ_ONLY_TOOLS) == (not expect_writes)


async def test_hidden_write_is_refused_by_name_without_a_request(make_sandbox: Any, tmp_path: Path) -> None:
    from posthog_sandbox import SandboxKey
    from tests.support import SandboxControl

    sandbox = make_sandbox(keys=[SandboxKey("phx_reader", ["batch_export:read"])])
    control = SandboxControl(sandbox.base_url, "phx_reader")
    export_id = control.export_id("Hourly events to S3")
    async with running_app(settings_for(sandbox.base_url, "phx_reader", tmp_path)) as app, connect(app) as client:
        control.clear_requests()
        result = await client.call_tool("batch-export-pause", {"project_id": 1, "batch_export_id": export_id})
    assert result.is_error and "lacks the scope batch_export:write" in text(result)
    assert control.requests() == []
    control.close()


async def test_failed_discovery_lists_everything_and_posthog_refuses(make_sandbox: Any, tmp_path: Path) -> None:
    """Older PostHog needs personal_api_key:read to describe a key; then the API itself is the judge."""
    from posthog_sandbox import SandboxKey
    from tests.support import SandboxControl

    sandbox = make_sandbox(keys=[SandboxKey("phx_reader", ["batch_export:read"])], current_key_requires_scope=True)
    control = SandboxControl(sandbox.base_url, "phx_reader")
    export_id = control.export_id("Hourly events to S3")
    settings = settings_for(sandbox.base_url, "phx_reader", tmp_path, confirm="never")
    async with running_app(settings) as app, connect(app) as client:
        assert "batch-export-delete" in {t.name for t in (await client.list_tools()).tools}
        result = await client.call_tool("batch-export-pause", {"project_id": 1, "batch_export_id": export_id})
    assert result.is_error
    message = text(result)
    assert (
        "HTTP 403" in message and "batch_export:write" in message and "give the personal API key the scope" in message
    )
    control.close()


async def test_scoped_teams_excluding_the_pinned_project_stops_start_up(make_sandbox: Any, tmp_path: Path) -> None:
    from posthog_sandbox import SandboxKey

    sandbox = make_sandbox(keys=[SandboxKey("phx_p1", ["*"], scoped_teams=[1])])
    with pytest.raises(ConfigError, match="limited to project"):
        async with running_app(settings_for(sandbox.base_url, "phx_p1", tmp_path, project_id=2)):
            pass
    assert await _listed(sandbox.base_url, "phx_p1", tmp_path, project_id=1)


async def test_pinned_project_is_the_only_reachable_one(make_sandbox: Any, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox = make_sandbox()
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, project_id=2)
    async with running_app(settings) as app, connect(app) as client:
        names = {e["name"] for e in data(await client.call_tool("batch-export-list", {}))["results"]}
        assert names == {"Project 2 events to HTTP"}
        escaped = await client.call_tool("batch-export-list", {"project_id": 1})
        assert escaped.is_error and "pinned to project 2" in text(escaped)


async def test_key_scoped_to_one_project_gets_a_clear_403_elsewhere(make_sandbox: Any, tmp_path: Path) -> None:
    from posthog_sandbox import SandboxKey

    sandbox = make_sandbox(keys=[SandboxKey("phx_p1", ["batch_export:read"], scoped_teams=[1])])
    async with running_app(settings_for(sandbox.base_url, "phx_p1", tmp_path)) as app, connect(app) as client:
        other = await client.call_tool("batch-export-list", {"project_id": 2})
        foreign = await client.call_tool("batch-export-list", {"project_id": 3})
    assert other.is_error and "HTTP 403" in text(other) and "project" in text(other)
    assert foreign.is_error and "HTTP 403" in text(foreign)


async def test_unknown_tool_names_in_allow_list_stop_start_up(make_sandbox: Any, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox = make_sandbox()
    with pytest.raises(ConfigError, match="batch-export-nope"):
        async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, tools=("batch-export-nope",))):
            pass


async def test_allow_and_exclude_lists(make_sandbox: Any, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox = make_sandbox()
    listed = await _listed(
        sandbox.base_url,
        DEFAULT_API_KEY,
        tmp_path,
        tools=("batch-export-list", "batch-export-get", "batch-export-delete"),
        exclude_tools=("batch-export-delete",),
    )
    assert listed == {"batch-export-list", "batch-export-get"}


async def test_default_toolsets_leave_out_what_an_answer_does_and_say_which(make_sandbox: Any, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY
    from tools.catalog import DONE_BY, TOOLSETS

    sandbox = make_sandbox()
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    export = control.export_id("Hourly events to S3")
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, toolsets=())
    async with running_app(settings) as app, connect(app) as client:
        listed = {t.name for t in (await client.list_tools()).tools}
        control.clear_requests()
        refused = await client.call_tool("batch-export-logs", {"project_id": 1, "batch_export_id": export})
        assert control.requests() == [], "a tool that is not listed sends nothing"
        answered = await client.call_tool("batch-export-errors", {"project_id": 1, "batch_export_id": export})
    left_out = {spec.name for name in DONE_BY for spec in TOOLSETS[name]}
    assert left_out == {"batch-export-logs", "batch-export-test-steps", "batch-export-test-step"} | {
        "batch-export-test-step-new"
    }
    assert not listed & left_out and set(DONE_BY.values()) <= listed
    message = text(refused)
    assert refused.is_error and "logs toolset" in message and "batch-export-errors" in message
    assert "POSTHOG_MCP_TOOLSETS=default,logs" in message
    assert not answered.is_error
    control.close()


@pytest.mark.parametrize(
    ("toolsets", "expected"),
    [
        (("default", "logs"), {"batch-export-logs"}),
        (("tests",), {"batch-export-test-steps", "batch-export-test-step", "batch-export-test-step-new"}),
        (("all",), {"batch-export-logs", "batch-export-test-step"}),
    ],
    ids=["default-plus-logs", "tests-only", "all"],
)
async def test_toolsets_choose_the_listing(
    make_sandbox: Any, tmp_path: Path, toolsets: tuple[str, ...], expected: set[str]
) -> None:
    from posthog_sandbox import DEFAULT_API_KEY
    from tools.catalog import TOOLSET_OF, TOOLSETS

    sandbox = make_sandbox()
    listed = await _listed(sandbox.base_url, DEFAULT_API_KEY, tmp_path, toolsets=toolsets)
    assert expected <= listed
    chosen = set(TOOLSETS) if "all" in toolsets else set(toolsets) - {"default"}
    if "default" in toolsets:
        chosen |= {"exports", "runs", "backfills", "answers", "integrations"}
    # The integrations toolset's tools need integration scopes, which the default key lacks.
    assert {TOOLSET_OF[name] for name in listed} == chosen - {"integrations"}


async def test_tool_allow_list_replaces_the_toolsets_and_read_only_wins(make_sandbox: Any, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox = make_sandbox()
    named = ("batch-export-logs", "batch-export-pause")
    listed = await _listed(sandbox.base_url, DEFAULT_API_KEY, tmp_path, toolsets=(), tools=named)
    assert listed == set(named)
    read_only = await _listed(sandbox.base_url, DEFAULT_API_KEY, tmp_path, toolsets=("all",), read_only=True)
    assert read_only == READ_ONLY_TOOLS


async def test_unknown_toolset_stops_start_up(make_sandbox: Any, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox = make_sandbox()
    with pytest.raises(ConfigError, match=r"Unknown toolset\(s\).*loggs.*exports, runs"):
        async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, toolsets=("loggs",))):
            pass
