"""Shared helpers for tests that drive the MCP server against the sandbox over loopback HTTP."""

from __future__ import annotations

import json
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import mcp.types as types
from mcp import Client

from posthog_sandbox.control import SandboxControl
from server.app import App, open_app
from server.config import Settings
from tools.catalog import CATALOG

MODES = ("auto", "legacy")


def settings_for(base_url: str, api_key: str, tmp_path: Path | None = None, **overrides: Any) -> Settings:
    """A test server's settings. It lists every toolset, since the tests exercise the whole catalog;
    a test of what a default server lists (the scenarios, the context budget) passes toolsets=()."""
    # Never the user's real audit trail: a fresh folder when the test gives none.
    folder = tmp_path if tmp_path is not None else Path(tempfile.mkdtemp(prefix="pbe-mcp-audit-"))
    audit = folder / "audit.jsonl"
    base = Settings(api_key=api_key, host=base_url, audit_log=audit, timeout=5.0, toolsets=("all",))
    return base.with_(**overrides)


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[App]:
    async with open_app(settings) as app:
        yield app


@asynccontextmanager
async def connect(app: App, mode: str = "auto", **kwargs: Any) -> AsyncIterator[Client]:
    async with Client(app.server, mode=mode, read_timeout_seconds=30, **kwargs) as client:
        yield client


def text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


def json_text(result: types.CallToolResult) -> str:
    """The JSON a result's text carries between the markers that say it is PostHog's data (server/untrusted.py)."""
    from server.untrusted import unmark

    whole = text(result)
    inner = unmark(whole)
    assert inner != whole, f"the text is not marked as PostHog's data: {whole[:200]}"
    return inner


def data(result: types.CallToolResult) -> Any:
    """The structured result, checked to equal the JSON text the older clients read."""
    assert not result.is_error, text(result)
    assert json.loads(json_text(result)) == result.structured_content
    return result.structured_content


async def confirm_with_token(client: Client, name: str, arguments: dict[str, Any]) -> Any:
    """A guarded write through the token channel: preview, then the same call with the token."""
    first = data(await client.call_tool(name, arguments))
    assert first["status"] == "confirmation_required", first
    second = data(await client.call_tool(name, {**arguments, "confirmation_token": first["confirmation_token"]}))
    assert second["status"] == "executed", second
    return second["result"]


# --- the confirmation guard (issue 4) ---------------------------------------------------

CATALOG_SNAPSHOT = Path(__file__).resolve().parent / "snapshots" / "catalog.json"


def reviewed_catalog() -> dict[str, Any]:
    """The checked-in catalog snapshot (tests/test_catalog.py writes it): the reviewed facts tests derive from."""
    snapshot: dict[str, Any] = json.loads(CATALOG_SNAPSHOT.read_text())
    return snapshot


def _guarded_tools() -> tuple[str, ...]:
    tools = reviewed_catalog()["tools"]
    guarded = [
        name
        for name, entry in tools.items()
        if not entry["deprecated"]
        and "confirmation_token" in entry["definitions"]["default"]["inputSchema"]["properties"]
        # The sandbox's default key may use batch exports only; the integrations' write is guarded-tested with
        # a key that has integration:write (tests/test_fleet_rotation.py).
        and entry["definitions"]["default"]["_meta"]["posthog/requiredScopes"][0].startswith("batch_export:")
    ]
    # Deletes last, so every other call still finds its target; otherwise catalog order.
    order = {spec.name: index for index, spec in enumerate(CATALOG)}
    return tuple(sorted(guarded, key=lambda name: (tools[name]["method"] == "DELETE", order.get(name, len(order)))))


GUARDED_TOOLS = _guarded_tools()
"""Every guarded tool but the deprecated ones (the legacy backfill is Gen-1 only), in an order where
each call's target is still there and in the state the call needs (deletes last)."""

SECRET_CANARY = "sandbox-canary"


def answering(action: str, content: dict[str, Any] | None = None, asked: list[Any] | None = None) -> Any:
    """An elicitation callback that gives one answer and records each question it was asked."""

    async def callback(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        if asked is not None:
            asked.append(params)
        return types.ElicitResult(action=action, content=content)  # type: ignore[arg-type]

    return callback


def sandbox_now(control: SandboxControl) -> str:
    return control.clock()


def guarded_arguments(control: SandboxControl) -> dict[str, dict[str, Any]]:
    """Valid arguments for every guarded tool against the seeded project 1 (either generation).

    Targets: pause/update/backfill the healthy hourly S3 export, unpause (with backfill) and then
    delete the paused Postgres export, retry a failed Snowflake run, cancel the running run and
    the running backfill of the BigQuery export.
    """
    from datetime import datetime, timedelta

    s3 = control.export_id("Hourly events to S3")
    snowflake = control.export_id("Daily events to Snowflake")
    postgres = control.export_id("Paused events to Postgres")
    bigquery = control.export_id("Events to BigQuery (backfilling)")
    state = control.state()
    failed = next(r for r in state["runs"] if r["batch_export"] == snowflake and r["status"] == "Failed")
    running = next(r for r in state["runs"] if r["batch_export"] == bigquery and r["status"] == "Running")
    backfill = next(b for b in state["backfills"] if b["batch_export"] == bigquery and b["status"] == "Running")
    now = datetime.fromisoformat(sandbox_now(control).replace("Z", "+00:00"))
    end = (now - timedelta(days=1)).replace(minute=0, second=0, microsecond=0)
    start = end - timedelta(hours=6)
    iso = "%Y-%m-%dT%H:%M:%SZ"
    backfill_range = {"start_at": start.strftime(iso), "end_at": end.strftime(iso)}
    return {
        "batch-export-create": {
            "project_id": 1,
            "name": "Guarded HTTP export",
            "interval": "hour",
            "destination": {
                "type": "HTTP",
                "config": {"url": "https://us.i.posthog.com/batch/", "token": f"{SECRET_CANARY}-guard-token"},
            },
        },
        "batch-export-update": {"project_id": 1, "batch_export_id": s3, "name": "Hourly events to S3 (renamed)"},
        "batch-export-pause": {"project_id": 1, "batch_export_id": s3},
        "batch-export-unpause": {"project_id": 1, "batch_export_id": postgres, "backfill": True},
        "batch-export-backfill-create": {"project_id": 1, "batch_export_id": s3, **backfill_range},
        "batch-export-backfill-legacy": {"project_id": 1, "batch_export_id": s3, **backfill_range},
        "batch-export-gaps-backfill": {"project_id": 1, "batch_export_id": snowflake},
        "batch-export-run-retry": {"project_id": 1, "batch_export_id": snowflake, "run_id": failed["id"]},
        "batch-export-run-cancel": {"project_id": 1, "batch_export_id": bigquery, "run_id": running["id"]},
        "batch-export-backfill-cancel": {"project_id": 1, "batch_export_id": bigquery, "backfill_id": backfill["id"]},
        "batch-export-delete": {"project_id": 1, "batch_export_id": postgres},
        # Listed to keys with integration:write only (tests/test_fleet_rotation.py uses it).
        "batch-export-integration-create": {
            "project_id": 1,
            "kind": "snowflake",
            "integration_config": {
                "name": "guarded-snowflake",
                "account": "acme-xy12345",
                "user": "posthog",
                "password": f"{SECRET_CANARY}-guard",
            },
        },
    }


async def tools_by_name(client: Client) -> dict[str, types.Tool]:
    return {tool.name: tool for tool in (await client.list_tools()).tools}


def assert_output_valid(tool: types.Tool, result: types.CallToolResult) -> None:
    """Check a non-error result's structuredContent against the tool's advertised outputSchema.

    The SDK client validates too; this makes the check explicit and independent of it.
    """
    import jsonschema

    assert not result.is_error, text(result)
    assert tool.output_schema is not None, f"{tool.name} advertises no outputSchema"
    jsonschema.Draft202012Validator(tool.output_schema).validate(result.structured_content)


BATCH_EXPORT_SCOPES = ("batch_export:read", "batch_export:write")
"""The sandbox's default key's scopes: every tool but the integration ones (they need their own)."""
RECOMMENDED_KEY_SCOPES = (*BATCH_EXPORT_SCOPES, "query:read", "activity_log:read", "project:read")
"""The key the README recommends (with write): what most sessions list, and what the context budget holds."""
EVERY_TOOL_SCOPES = (*BATCH_EXPORT_SCOPES, "activity_log:read", "integration:read", "integration:write")
"""Scopes for a key that may call every tool in the catalog (batch-export-changes reads the activity log)."""


def listed_by_a_default_server(scopes: tuple[str, ...] | None = None) -> int:
    """How many tools a server started with no toolset or tool settings lists to a key with these scopes
    (None: every scope)."""
    from server.config import Settings
    from server.visibility import KeyAccess, listed_by_default, why_hidden
    from tools.catalog import CATALOG

    if scopes is None:
        return sum(1 for spec in CATALOG if listed_by_default(spec))
    return sum(1 for spec in CATALOG if why_hidden(spec, Settings(), KeyAccess(scopes=scopes)) is None)


def listed_by_test_servers(scopes: tuple[str, ...] = BATCH_EXPORT_SCOPES) -> int:
    """How many tools a key with these scopes (the sandbox's default key's) sees on a `settings_for` server
    (every toolset, no allow-list): the catalog less deprecated tools and those the scopes do not allow."""
    from server.visibility import KeyAccess
    from tools.catalog import CATALOG

    access = KeyAccess(scopes=scopes)
    return sum(1 for spec in CATALOG if not spec.deprecated and access.allows(spec.scope))
