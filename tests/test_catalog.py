"""The catalog as advertised: the issue's table, annotations, scopes, schemas, snapshots and size."""

from __future__ import annotations

import ast
import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import respx
from mcp import Client

from server.app import open_app
from server.config import Settings
from server.definitions import SCOPES_META, tool_definition
from tools.catalog import BY_NAME, CATALOG

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = ROOT / "tests" / "snapshots"

# The issue's table: method and path under /api/projects/{project_id}/, scope, RO, D, I.
EXPECTED = {
    "batch-export-list": ("GET", "batch_exports/", "read", True, False, True),
    "batch-export-get": ("GET", "batch_exports/{batch_export_id}/", "read", True, False, True),
    "batch-export-create": ("POST", "batch_exports/", "write", False, False, False),
    "batch-export-update": ("PATCH", "batch_exports/{batch_export_id}/", "write", False, True, True),
    "batch-export-delete": ("DELETE", "batch_exports/{batch_export_id}/", "write", False, True, True),
    "batch-export-pause": ("POST", "batch_exports/{batch_export_id}/pause/", "write", False, False, True),
    "batch-export-unpause": ("POST", "batch_exports/{batch_export_id}/unpause/", "write", False, False, True),
    "batch-export-logs": ("GET", "batch_exports/{batch_export_id}/logs/", "read", True, False, True),
    "batch-export-runs-list": ("GET", "batch_exports/{batch_export_id}/runs/", "read", True, False, True),
    "batch-export-run-get": ("GET", "batch_exports/{batch_export_id}/runs/{run_id}/", "read", True, False, True),
    "batch-export-run-retry": (
        "POST",
        "batch_exports/{batch_export_id}/runs/{run_id}/retry/",
        "write",
        False,
        False,
        False,
    ),
    "batch-export-run-cancel": (
        "POST",
        "batch_exports/{batch_export_id}/runs/{run_id}/cancel/",
        "write",
        False,
        True,
        True,
    ),
    "batch-export-backfills-list": ("GET", "batch_exports/{batch_export_id}/backfills/", "read", True, False, True),
    "batch-export-backfill-get": (
        "GET",
        "batch_exports/{batch_export_id}/backfills/{backfill_id}/",
        "read",
        True,
        False,
        True,
    ),
    "batch-export-backfill-create": (
        "POST",
        "batch_exports/{batch_export_id}/backfills/",
        "write",
        False,
        False,
        False,
    ),
    "batch-export-backfill-cancel": (
        "POST",
        "batch_exports/{batch_export_id}/backfills/{backfill_id}/cancel/",
        "write",
        False,
        True,
        True,
    ),
    "batch-export-test-steps": ("GET", "batch_exports/test/", "read", True, False, True),
    "batch-export-test-step": (
        "POST",
        "batch_exports/{batch_export_id}/run_test_step/",
        "write",
        False,
        False,
        True,
    ),
    "batch-export-test-step-new": ("POST", "batch_exports/run_test_step_new/", "write", False, False, True),
    "batch-export-backfill-legacy": ("POST", "batch_exports/{batch_export_id}/backfill/", "write", False, False, False),
    # The answers (issue 11): each names the first request it makes.
    "batch-export-health": ("GET", "batch_exports/", "read", True, False, True),
    "batch-export-errors": ("POST", "query/", "read", True, False, True),
    "batch-export-destination-check": ("POST", "batch_exports/run_test_step_new/", "write", False, False, True),
    "batch-export-gaps": ("GET", "batch_exports/{batch_export_id}/runs/", "read", True, False, True),
    "batch-export-gaps-backfill": ("POST", "batch_exports/{batch_export_id}/backfills/", "write", False, False, False),
    "batch-export-wait": ("GET", "batch_exports/{batch_export_id}/", "read", True, False, True),
    "batch-export-projects": ("GET", "/api/personal_api_keys/@current/", "read", True, False, True),
}
OPEN_WORLD = {
    "batch-export-test-steps",
    "batch-export-test-step",
    "batch-export-test-step-new",
    "batch-export-destination-check",
}


def advertised(**settings: Any) -> list[dict[str, Any]]:
    """Every tool's definition exactly as a client receives it, via a real MCP client."""
    import anyio

    async def listing() -> list[dict[str, Any]]:
        with respx.mock(base_url="https://posthog.test") as mock:
            mock.get("/api/personal_api_keys/@current/").respond(403, json={"detail": "no"})
            config = Settings(api_key="phx_catalog", host="https://posthog.test", **settings)
            async with open_app(config) as app, Client(app.server) as client:
                tools = (await client.list_tools()).tools
        return [t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in tools]

    return anyio.run(listing)


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@pytest.fixture(scope="module")
def default_tools(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return advertised(audit_log=tmp_path_factory.mktemp("audit") / "a.jsonl")


@pytest.fixture(scope="module")
def all_tools(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    return advertised(include_deprecated=True, audit_log=tmp_path_factory.mktemp("audit") / "a.jsonl")


def test_catalog_matches_the_issue_table() -> None:
    assert set(BY_NAME) == set(EXPECTED)
    for spec in CATALOG:
        method, path, scope, ro, d, i = EXPECTED[spec.name]
        assert (spec.method, spec.path, spec.scope) == (method, path, f"batch_export:{scope}"), spec.name
        assert (spec.read_only, spec.destructive, spec.idempotent) == (ro, d, i), spec.name
        assert spec.open_world == (spec.name in OPEN_WORLD), spec.name
    assert [s.name for s in CATALOG if s.deprecated] == ["batch-export-backfill-legacy"]


def test_default_listing_hides_only_the_deprecated_tool(default_tools: list[dict[str, Any]]) -> None:
    assert {t["name"] for t in default_tools} == set(EXPECTED) - {"batch-export-backfill-legacy"}


def test_every_tool_sets_every_annotation(all_tools: list[dict[str, Any]]) -> None:
    for tool in all_tools:
        annotations = tool["annotations"]
        hints = ("readOnlyHint", "openWorldHint")
        if not annotations["readOnlyHint"]:  # the spec gives these meaning only for tools that write
            hints += ("destructiveHint", "idempotentHint")
        for hint in hints:
            assert hint in annotations, f"{tool['name']} leaves {hint} unset"
        # The title is the tool's own (annotations.title would repeat it in every session's context).
        assert tool["title"] and "title" not in annotations


def test_required_scope_is_in_meta(all_tools: list[dict[str, Any]]) -> None:
    for tool in all_tools:
        scope = BY_NAME[tool["name"]].scope
        assert tool["_meta"][SCOPES_META] == [scope]
        assert "Requires scope" not in tool["description"]  # said once, in _meta


def test_gen1_internal_scope_is_explained() -> None:
    for name in OPEN_WORLD - {"batch-export-destination-check"}:
        assert "INTERNAL" in BY_NAME[name].description
    legacy = BY_NAME["batch-export-backfill-legacy"].description
    assert "batch-export-backfill-create" in legacy


def _walk(schema: Any) -> Any:
    if isinstance(schema, dict):
        yield schema
        for value in schema.values():
            yield from _walk(value)
    elif isinstance(schema, list):
        for value in schema:
            yield from _walk(value)


def test_input_schemas_are_strict_portable_and_described(all_tools: list[dict[str, Any]]) -> None:
    for tool in all_tools:
        schema = tool["inputSchema"]
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema["type"] == "object" and schema["additionalProperties"] is False, tool["name"]
        assert not {"anyOf", "oneOf", "allOf", "$ref", "$defs"} & set(schema), tool["name"]
        for name, prop in schema["properties"].items():
            assert "type" in prop or "enum" in prop, f"{tool['name']}.{name} has no type"
            description = prop.get("description", "")
            assert description and "\n" not in description, f"{tool['name']}.{name} needs a one-line description"
        assert "$ref" not in compact(schema)


def test_enums_and_formats_are_advertised(all_tools: list[dict[str, Any]]) -> None:
    by_name = {t["name"]: t["inputSchema"]["properties"] for t in all_tools}
    create = by_name["batch-export-create"]
    assert "every 5 minutes" in create["interval"]["enum"]
    assert "hogql" in create["model"]["enum"]
    assert {"AwsS3", "S3", "Snowflake", "HTTP"} <= set(create["destination"]["properties"]["type"]["enum"])
    assert "FailedRetryable" in by_name["batch-export-runs-list"]["status"]["items"]["enum"]
    assert "-data_interval_start" in by_name["batch-export-runs-list"]["ordering"]["enum"]
    assert "ERROR" in by_name["batch-export-logs"]["level"]["items"]["enum"]
    assert by_name["batch-export-get"]["batch_export_id"]["format"] == "uuid"
    assert (
        "-24h" in by_name["batch-export-logs"]["after"]["description"]
        and by_name["batch-export-logs"]["after"]["pattern"]
    )
    assert by_name["batch-export-create"]["start_at"]["format"] == "date-time"


def test_output_schemas_are_valid_objects(all_tools: list[dict[str, Any]]) -> None:
    for tool in all_tools:
        schema = tool["outputSchema"]
        jsonschema.Draft202012Validator.check_schema(schema)
        assert schema.get("type") == "object", tool["name"]


def test_guarded_tools_take_a_confirmation_token(all_tools: list[dict[str, Any]]) -> None:
    for tool in all_tools:
        spec = BY_NAME[tool["name"]]
        assert ("confirmation_token" in tool["inputSchema"]["properties"]) == spec.is_guarded, tool["name"]
        if spec.is_guarded:
            assert "confirmation_required" in compact(tool["outputSchema"])
    guarded = {s.name for s in CATALOG if s.is_guarded}
    assert guarded == {
        "batch-export-create",
        "batch-export-update",
        "batch-export-delete",
        "batch-export-pause",
        "batch-export-unpause",
        "batch-export-backfill-create",
        "batch-export-backfill-legacy",
        "batch-export-run-retry",
        "batch-export-run-cancel",
        "batch-export-backfill-cancel",
        "batch-export-gaps-backfill",
    }


def test_pinned_project_removes_project_id_everywhere(tmp_path: Path) -> None:
    for tool in advertised(project_id=7, include_deprecated=True, audit_log=tmp_path / "a.jsonl"):
        assert "project_id" not in tool["inputSchema"]["properties"], tool["name"]
        assert "project_id" not in tool["inputSchema"].get("required", []), tool["name"]


def test_snapshots(all_tools: list[dict[str, Any]]) -> None:
    """Every advertised definition is checked in; set UPDATE_SNAPSHOTS=1 to accept a change on purpose."""
    update = os.environ.get("UPDATE_SNAPSHOTS") == "1"
    SNAPSHOTS.mkdir(exist_ok=True)
    changed = []
    for tool in all_tools:
        path = SNAPSHOTS / f"{tool['name']}.json"
        current = json.dumps(tool, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
        if update:
            path.write_text(current)
        elif not path.exists() or path.read_text() != current:
            changed.append(tool["name"])
    stale = {p.stem for p in SNAPSHOTS.glob("*.json")} - {t["name"] for t in all_tools}
    assert not changed, f"definitions changed: {changed}; review and rerun with UPDATE_SNAPSHOTS=1"
    assert not stale, f"snapshots of tools that no longer exist: {stale}"


def test_tool_definitions_are_deterministic() -> None:
    for spec in CATALOG:
        one = tool_definition(spec, pinned_project=False, guarded=spec.is_guarded)
        two = tool_definition(spec, pinned_project=False, guarded=spec.is_guarded)
        assert one == two


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_catalog_does_not_import_mcp_or_httpx() -> None:
    for path in (ROOT / "tools").glob("*.py"):
        bad = {n for n in _imports(path) if n.split(".")[0] in ("mcp", "mcp_types", "httpx", "server")}
        assert not bad, f"{path.name} imports {bad}: tools/ describes the API, server/ talks MCP and HTTP"


def test_only_the_cli_starts_the_sandbox() -> None:
    for path in (ROOT / "server").glob("*.py"):
        uses = {n for n in _imports(path) if n.startswith("posthog_sandbox")}
        if path.name not in ("cli.py", "demo.py"):
            assert not uses, f"{path.name} imports the sandbox: only the CLI (and its demo) may start it"
