"""What a strict converter's model sends, through a real MCP client against the sandbox, for the tools and
cases the framework tests do not reach; and every advertised definition (all tools, every configuration
the catalog snapshot holds) put through the OpenAI Agents SDK's strict conversion and google-genai's.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from agents.strict_schema import ensure_strict_json_schema
from google.genai import _mcp_utils
from mcp import types as mcp_types

from server.definitions import LISTED_FORMATS
from tests.compat.support import KEYS, gemini_problems, openai_strict_problems, strict_arguments
from tests.support import SandboxControl, connect, data, reviewed_catalog, running_app, settings_for, text
from tools.catalog import BY_NAME


def _definitions() -> list[tuple[str, str, dict[str, Any]]]:
    tools = reviewed_catalog()["tools"]
    return [
        (name, configuration, definition["inputSchema"])
        for name, entry in tools.items()
        for configuration, definition in entry["definitions"].items()
    ]


def _nodes(node: Any) -> Any:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from _nodes(value)


@pytest.mark.parametrize(("name", "configuration", "schema"), _definitions())
def test_every_definition_converts_for_strict_openai_and_gemini(
    name: str, configuration: str, schema: dict[str, Any]
) -> None:
    for node in _nodes(schema):
        assert node.get("format", "date-time") in LISTED_FORMATS, (name, node)
        assert not {"default", "additionalProperties"} & set(node), (name, node)
        if node.get("type") == "object" or "properties" in node:
            assert node.get("properties"), f"{name}: an object without properties"
    # The SDK refuses what is not strict-compatible (and then sends the tool non-strict): it must not here.
    strict = ensure_strict_json_schema(json.loads(json.dumps(schema)), _reject_open_objects=True)
    assert openai_strict_problems(strict) == [], openai_strict_problems(strict)
    tool = mcp_types.Tool(name=name, description="d", input_schema=schema)
    parameters = _mcp_utils.mcp_to_gemini_tool(tool).function_declarations[0].parameters  # type: ignore[index]
    assert gemini_problems(parameters) == []
    # An optional argument with a default the model must send when strict: the description names it.
    spec = BY_NAME[name]
    for argument, prop in schema["properties"].items():
        field = spec.params.model_fields.get(argument)
        if field is not None and not field.is_required() and field.default is not None:
            assert "default" in prop.get("description", ""), f"{name}.{argument} does not say its default"


@pytest.fixture
def sandbox(make_sandbox: Any) -> Any:
    """The newer PostHog only: the older serves logs to no personal key, and nothing here is generational."""
    return make_sandbox(generation=3, keys=KEYS)


@asynccontextmanager
async def session(sandbox: Any, tmp_path: Path) -> AsyncIterator[Any]:
    from posthog_sandbox import DEFAULT_API_KEY

    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app, connect(app) as client:
        yield client


def _strict(name: str, tools: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    schema = ensure_strict_json_schema(json.loads(json.dumps(tools[name].input_schema)), _reject_open_objects=True)
    return strict_arguments(name, schema, given)


async def test_the_tools_outside_the_default_listing_take_strict_shaped_calls(
    sandbox: Any, control: SandboxControl, tmp_path: Path
) -> None:
    s3 = control.export_id("Hourly events to S3")
    async with session(sandbox, tmp_path) as client:
        tools = {t.name: t for t in (await client.list_tools()).tools}
        logs = _strict("batch-export-logs", tools, {"project_id": 1, "batch_export_id": s3})
        assert logs["run_id"] == "" and logs["level"] is None and logs["limit"] is None
        assert "results" in data(await client.call_tool("batch-export-logs", logs))
        steps = _strict("batch-export-test-steps", tools, {"project_id": 1, "destination": "AwsS3"})
        assert data(await client.call_tool("batch-export-test-steps", steps))
        step = _strict("batch-export-test-step", tools, {"project_id": 1, "batch_export_id": s3})
        assert step["destination"] is None and step["step"] == 0
        assert data(await client.call_tool("batch-export-test-step", step))


async def test_empty_and_null_mean_not_given(sandbox: Any, control: SandboxControl, tmp_path: Path) -> None:
    s3 = control.export_id("Hourly events to S3")
    run = next(r for r in control.state()["runs"] if r["batch_export"] == s3 and r["status"] == "Completed")
    async with session(sandbox, tmp_path) as client:
        # One of two ids, the other empty or null: the one given is followed.
        for empty in ("", None):
            arguments = {"project_id": 1, "batch_export_id": s3, "run_id": run["id"], "backfill_id": empty}
            assert data(await client.call_tool("batch-export-wait", arguments))["done"] is True
        both_empty = {"project_id": 1, "batch_export_id": s3, "run_id": "", "backfill_id": None}
        refused = await client.call_tool("batch-export-wait", both_empty)
        assert refused.is_error and "give exactly one of run_id or backfill_id" in text(refused)
        # An id is still an id: "" only means not given where the argument is optional.
        missing = await client.call_tool("batch-export-get", {"project_id": 1, "batch_export_id": ""})
        assert missing.is_error and "batch_export_id" in text(missing)
        # A defaulted argument sent empty takes its default; a null token previews.
        health = {"project_id": 1, "state": None, "name_contains": "", "intervals": None, "destination_type": None}
        assert data(await client.call_tool("batch-export-health", health))["counts"]
        for token in ("", None):
            pause = {"project_id": 1, "batch_export_id": s3, "confirmation_token": token}
            assert data(await client.call_tool("batch-export-pause", pause))["status"] == "confirmation_required"
        # An update with every field empty changes nothing, and says so before anyone is asked.
        update = {"project_id": 1, "batch_export_id": s3, "name": "", "paused": None, "filters": None}
        nothing = await client.call_tool("batch-export-update", {**update, "destination": None, "model": None})
        assert nothing.is_error and "Nothing to change" in text(nothing)
        # An empty filter list is a value (no filters), not "not given".
        cleared = data(await client.call_tool("batch-export-update", {**update, "filters": []}))
        assert cleared["status"] == "confirmation_required"
    assert control.writes() == []


async def test_a_config_sent_as_json_text_is_the_same_call(
    sandbox: Any, control: SandboxControl, tmp_path: Path
) -> None:
    canary = "token-canary-0451"
    config = {"url": "https://us.i.posthog.com/batch/", "token": canary}
    base = {"project_id": 1, "name": "HTTP export from JSON text", "interval": "hour"}
    async with session(sandbox, tmp_path) as client:
        as_text = {**base, "destination": {"type": "HTTP", "config": json.dumps(config)}}
        preview = data(await client.call_tool("batch-export-create", as_text))
        assert preview["status"] == "confirmation_required" and canary not in json.dumps(preview)
        # Confirmed with the config as an object: the token was bound to the same arguments.
        as_object = {**base, "destination": {"type": "HTTP", "config": config}}
        confirmed = {**as_object, "confirmation_token": preview["confirmation_token"]}
        done = data(await client.call_tool("batch-export-create", confirmed))
        assert done["status"] == "executed" and canary not in json.dumps(done)
        control.clear_requests()
        not_json = {**base, "destination": {"type": "HTTP", "config": '{"token": "' + canary + '", '}}
        refused = await client.call_tool("batch-export-create", not_json)
        assert refused.is_error and "config must be a JSON object" in text(refused)
        assert canary not in text(refused) and control.requests() == []
    assert canary not in (tmp_path / "audit.jsonl").read_text()


async def test_projects_name_contains_without_names_lists_every_id_and_says_so(
    make_sandbox: Any, tmp_path: Path
) -> None:
    from posthog_sandbox import SandboxKey

    limited = "phx_limited_without_names"
    sandbox = make_sandbox(generation=3, keys=[SandboxKey(limited, ["batch_export:read"], [1])])
    async with running_app(settings_for(sandbox.base_url, limited, tmp_path)) as app, connect(app) as client:
        every = data(await client.call_tool("batch-export-projects", {"name_contains": ""}))
        unnamed = data(await client.call_tool("batch-export-projects", {"name_contains": "anything"}))
    assert every["projects"] == unnamed["projects"] == [{"project_id": 1}] and unnamed["limited_to_these"] is True
    assert "this key has batch_export:read. name_contains was not applied" in unnamed["listing"]


async def test_projects_name_contains_keeps_the_matching_names() -> None:
    # The sandbox serves no project list (/api/projects/), so the names come from a stand-in here.
    from tools.answers.projects import CURRENT_KEY, PROJECTS, ProjectsParams, projects

    class Names:
        async def request(self, method: str, path: str, query: Any = None, body: Any = None) -> Any:
            if path == CURRENT_KEY:
                return {"scopes": ["batch_export:read", "project:read"], "scoped_teams": [1, 3]}
            assert path == PROJECTS
            names = {1: "Production", 2: "Staging", 3: "Prod EU"}
            return {"results": [{"id": i, "name": n} for i, n in names.items()]}

    answer = await projects(Names(), ProjectsParams(name_contains="PROD"))  # type: ignore[arg-type]
    assert answer["projects"] == [{"project_id": 1, "name": "Production"}, {"project_id": 3, "name": "Prod EU"}]
    assert answer["limited_to_these"] is True
    none = await projects(Names(), ProjectsParams(name_contains="staging"))  # type: ignore[arg-type]
    assert none["projects"] == [] and none["limited_to_these"] is True  # project 2 matches but is not usable
