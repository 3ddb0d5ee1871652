"""Prompts and resources through a real MCP client (both protocol eras), against the sandbox."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import MCPError

from tests.support import MODES, SandboxControl, connect, running_app, settings_for

PROMPT_NAMES = {
    "diagnose-failing-export",
    "find-and-fill-gaps",
    "weekly-health-report",
    "rotate-destination-credentials",
}


@pytest.fixture
def seeded(make_sandbox: Any) -> Any:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox = make_sandbox()
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    yield sandbox, control
    control.close()


@pytest.mark.parametrize("mode", MODES)
async def test_prompts_listed_and_fetched(seeded: Any, mode: str, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox, control = seeded
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            assert client.server_capabilities is not None and client.server_capabilities.prompts is not None
            prompts = {p.name: p for p in (await client.list_prompts()).prompts}
            assert set(prompts) == PROMPT_NAMES
            tools = {t.name for t in (await client.list_tools()).tools}
            for prompt in prompts.values():
                assert prompt.title and prompt.description
                arguments = {a.name: a for a in prompt.arguments or []}
                assert arguments["project_id"].required
                given = {name: "1" if name == "project_id" else "Daily events to Snowflake" for name in arguments}
                got = await client.get_prompt(prompt.name, given)
                body = got.messages[0].content.text  # type: ignore[union-attr]
                assert got.messages[0].role == "user"
                assert "project 1" in body
                named = {word.strip(".,;:()'") for word in body.split() if word.startswith("batch-export-")}
                assert named, f"{prompt.name} names no tool"
                assert named <= tools, f"{prompt.name} names tools this server does not list: {named - tools}"
            diagnose = await client.get_prompt(
                "diagnose-failing-export", {"project_id": "1", "batch_export": "Daily events to Snowflake"}
            )
            assert "Daily events to Snowflake" in diagnose.messages[0].content.text  # type: ignore[union-attr]

            with pytest.raises(MCPError) as missing:
                await client.get_prompt("diagnose-failing-export", {"project_id": "1"})
            assert missing.value.error.code == -32602 and "batch_export" in missing.value.error.message
            with pytest.raises(MCPError) as unknown:
                await client.get_prompt("fix-everything", {})
            assert "weekly-health-report" in unknown.value.error.message
            with pytest.raises(MCPError) as bad_project:
                await client.get_prompt("weekly-health-report", {"project_id": "my project"})
            assert "project_id must be a number" in bad_project.value.error.message
    assert control.writes() == []  # a prompt only describes the work


async def test_prompts_follow_what_is_listed(seeded: Any, tmp_path: Path) -> None:
    """Read-only mode hides the update tool, so the credentials prompt is not offered; a pinned
    project is filled in and no longer asked for."""
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox, _ = seeded
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, read_only=True, project_id=1)
    async with running_app(settings) as app, connect(app, "auto") as client:
        prompts = {p.name: p for p in (await client.list_prompts()).prompts}
        assert set(prompts) == PROMPT_NAMES - {"rotate-destination-credentials"}
        assert [a.name for a in prompts["weekly-health-report"].arguments or []] == []
        got = await client.get_prompt("weekly-health-report", {})
        body = got.messages[0].content.text  # type: ignore[union-attr]
        assert "project 1" in body and "batch-export-run-retry" not in body
        find = (await client.get_prompt("find-and-fill-gaps", {"batch_export": "x"})).messages[0].content.text  # type: ignore[union-attr]
        # The backfill step names only guarded writes, which read-only mode does not list: it is left out.
        assert "backfill-create" not in find and "gaps-backfill" not in find and "Follow the backfill" not in find
        assert "batch-export-gaps" in find or "batch-export-runs-list" in find


@pytest.mark.parametrize("mode", MODES)
async def test_export_configuration_resource(seeded: Any, mode: str, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox, control = seeded
    export_id = control.export_id("Hourly events to S3")
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            templates = (await client.list_resource_templates()).resource_templates
            assert [t.uri_template for t in templates] == [
                "posthog://projects/{project_id}/batch-exports/{batch_export_id}"
            ]
            uri = f"posthog://projects/1/batch-exports/{export_id}"
            read = await client.read_resource(uri)
            (content,) = read.contents
            assert content.mime_type == "application/json" and str(content.uri) == uri
            export = json.loads(content.text)  # type: ignore[union-attr]
            assert export["id"] == export_id and export["name"] == "Hourly events to S3"
            assert export["destination"]["type"] == "AwsS3"
            config = export["destination"]["config"]
            assert "bucket_name" in config
            assert not {"aws_access_key_id", "aws_secret_access_key"} & set(config)
            assert DEFAULT_API_KEY not in content.text  # type: ignore[union-attr]

            for missing in (
                "posthog://projects/1/batch-exports/00000000-0000-0000-0000-000000000000",
                "posthog://projects/1/nothing-here",
                "https://example.com/",
            ):
                with pytest.raises(MCPError) as refused:
                    await client.read_resource(missing)
                assert refused.value.error.code == -32602, refused.value.error
                assert missing in refused.value.error.message
    assert control.writes() == []


async def test_pinned_server_offers_only_its_project(seeded: Any, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox, control = seeded
    export_id = control.export_id("Hourly events to S3")
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, project_id=1)
    async with running_app(settings) as app, connect(app, "legacy") as client:
        (template,) = (await client.list_resource_templates()).resource_templates
        assert template.uri_template == "posthog://projects/1/batch-exports/{batch_export_id}"
        with pytest.raises(MCPError) as other:
            await client.read_resource(f"posthog://projects/2/batch-exports/{export_id}")
        assert "pinned to project 1" in other.value.error.message
        assert (await client.read_resource(f"posthog://projects/1/batch-exports/{export_id}")).contents


@pytest.mark.parametrize(
    "segment",
    ["..", ".", "%2e%2e", "..%2F..", "not-an-id", "00000000-0000-0000-0000-00000000000g"],
)
async def test_n2_a_resource_uri_names_an_export_by_its_id_only(seeded: Any, tmp_path: Path, segment: str) -> None:
    """A URI segment is an id, never a path step: `..` would make the server read the project itself
    (`GET /api/projects/1/`, which holds the project's secret token) with its own key."""
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox, control = seeded
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, "legacy") as client:
            control.clear_requests()
            uri = f"posthog://projects/1/batch-exports/{segment}"
            with pytest.raises(MCPError) as refused:
                await client.read_resource(uri)
    assert refused.value.error.code == -32602
    assert "batch_export_id" in refused.value.error.message and "UUID" in refused.value.error.message
    assert control.requests() == []  # nothing was asked of PostHog


async def test_n11_unknown_prompt_names_and_resource_uris_are_echoed_capped(seeded: Any, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox, _ = seeded
    name, uri = "p" * 100_000, "posthog://" + "u" * 200_000
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, "legacy") as client:
            with pytest.raises(MCPError) as prompt:
                await client.get_prompt(name, {})
            with pytest.raises(MCPError) as arguments:
                await client.get_prompt("weekly-health-report", {"project_id": "1", "a" * 50_000: "x"})
            with pytest.raises(MCPError) as resource:
                await client.read_resource(uri)
    for refused, length in ((prompt, len(name)), (arguments, 50_000), (resource, len(uri))):
        error = refused.value.error
        assert len(error.message) < 1_000, len(error.message)
        assert f"({length} characters)" in error.message
        assert len(json.dumps(error.data or {})) < 1_000
    assert "weekly-health-report" in prompt.value.error.message  # the advice stays


async def test_n12_the_configuration_resource_follows_the_tool_that_reads_it(seeded: Any, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox, control = seeded
    export_id = control.export_id("Hourly events to S3")
    uri = f"posthog://projects/1/batch-exports/{export_id}"
    hidden = settings_for(
        sandbox.base_url, DEFAULT_API_KEY, tmp_path, exclude_tools=("batch-export-get", "batch-export-list")
    )
    async with running_app(hidden) as app, connect(app, "legacy") as client:
        assert (await client.list_resource_templates()).resource_templates == []
        control.clear_requests()
        with pytest.raises(MCPError) as refused:
            await client.read_resource(uri)
        assert "POSTHOG_MCP_EXCLUDE_TOOLS" in refused.value.error.message
        assert control.requests() == []
    only_health = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, tools=("batch-export-health",))
    async with running_app(only_health) as app, connect(app, "legacy") as client:
        assert (await client.list_resource_templates()).resource_templates == []
        with pytest.raises(MCPError):
            await client.read_resource(uri)
    # Listed again, served again.
    shown = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, exclude_tools=("batch-export-list",))
    async with running_app(shown) as app, connect(app, "legacy") as client:
        assert len((await client.list_resource_templates()).resource_templates) == 1
        assert (await client.read_resource(uri)).contents
