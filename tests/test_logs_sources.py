"""batch-export-logs in both worlds (issue 10 item 6): the logs route, and PostHog's Query API where the
route is refused for the key. The request built for each is checked here with respx; the real path
(sandbox with --logs-for-keys refused) is in tests/test_today_posthog.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import respx
from mcp import Client

from server.app import open_app
from server.config import Settings
from tests.support import data, text
from tools.logs import logs_hogql

HOST = "https://posthog.test"
E = "0190f4b2-6c1e-7c3a-9a51-2b1f0e7a1d11"
P = "/api/projects/1"
NO_KEYS = {
    "type": "authentication_error",
    "code": "permission_denied",
    "detail": "This action does not support personal API key access",
    "attr": None,
}
NO_QUERY = {
    "type": "authentication_error",
    "code": "permission_denied",
    "detail": "API key missing required scope 'query:read'",
    "attr": None,
}


def _settings(tmp_path: Path) -> Settings:
    return Settings(api_key="phx_unit_key_1234", host=HOST, audit_log=tmp_path / "audit.jsonl", toolsets=("all",))


async def _logs(tmp_path: Path, arguments: dict[str, Any]) -> Any:
    async with open_app(_settings(tmp_path)) as app, Client(app.server) as client:
        return await client.call_tool("batch-export-logs", {"project_id": 1, "batch_export_id": E, **arguments})


async def test_the_logs_route_when_posthog_serves_it(tmp_path: Path) -> None:
    with respx.mock(base_url=HOST) as mock:
        mock.get("/api/personal_api_keys/@current/").respond(200, json={"scopes": ["*"]})
        row = {"timestamp": "2026-11-30T10:00:00Z", "level": "INFO", "message": "ok", "log_source_id": E}
        mock.get(f"{P}/batch_exports/{E}/logs/").respond(200, json={"count": 1, "results": [row]})
        got = data(await _logs(tmp_path, {}))
    assert got["source"] == "logs_route"
    assert got["results"] == [{"timestamp": "2026-11-30T10:00:00Z", "level": "INFO", "message": "ok"}]


async def test_a_refused_logs_route_falls_back_to_the_query_api(tmp_path: Path) -> None:
    with respx.mock(base_url=HOST) as mock:
        mock.get("/api/personal_api_keys/@current/").respond(200, json={"scopes": ["*"]})
        mock.get(f"{P}/batch_exports/{E}/logs/").respond(403, json=NO_KEYS)
        query = mock.post(f"{P}/query/").respond(
            200,
            json={
                "columns": ["timestamp", "level", "message", "instance_id"],
                "results": [["2026-11-30T10:00:00Z", "ERROR", "S3 access denied", "run-1"]],
                "types": ["DateTime64(6, 'UTC')", "String", "String", "String"],
            },
        )
        got = data(await _logs(tmp_path, {"level": ["ERROR"], "search": "it's 100%", "after": "2026-11-29T00:00Z"}))
    sent = json.loads(query.calls.last.request.content)
    assert sent["query"]["kind"] == "HogQLQuery"
    hogql = sent["query"]["query"]
    assert hogql.startswith("SELECT timestamp, level, message, instance_id FROM batch_export_log_entries WHERE ")
    assert f"log_source_id = '{E}'" in hogql and "level IN ('ERROR')" in hogql
    assert "message ILIKE '%it\\'s 100\\\\%%'" in hogql, hogql
    assert "timestamp >= '2026-11-29T00:00:00Z'" in hogql
    assert hogql.endswith("ORDER BY timestamp DESC LIMIT 50")
    assert got["source"] == "query_api" and "refused the logs route" in got["note"]
    assert got["results"] == [
        {"timestamp": "2026-11-30T10:00:00Z", "level": "ERROR", "message": "S3 access denied", "instance_id": "run-1"}
    ]


async def test_neither_route_nor_query_api_names_query_read(tmp_path: Path) -> None:
    with respx.mock(base_url=HOST) as mock:
        mock.get("/api/personal_api_keys/@current/").respond(200, json={"scopes": ["batch_export:read"]})
        mock.get(f"{P}/batch_exports/{E}/logs/").respond(403, json=NO_KEYS)
        mock.post(f"{P}/query/").respond(403, json=NO_QUERY)
        result = await _logs(tmp_path, {})
    message = text(result)
    assert result.is_error and "\n" not in message
    assert "Give the personal API key the scope query:read" in message, message
    assert "does not support personal API key access" in message


async def test_other_failures_of_the_logs_route_are_not_hidden_behind_the_query_api(tmp_path: Path) -> None:
    body = {"type": "invalid_request", "code": "not_found", "detail": "Not found.", "attr": None}
    with respx.mock(base_url=HOST, assert_all_called=False) as mock:
        mock.get("/api/personal_api_keys/@current/").respond(200, json={"scopes": ["*"]})
        mock.get(f"{P}/batch_exports/{E}/logs/").respond(404, json=body)
        query = mock.post(f"{P}/query/").respond(200, json={"columns": [], "results": []})
        result = await _logs(tmp_path, {})
    assert result.is_error and "HTTP 404" in text(result)
    assert not query.called


def test_the_hogql_escapes_what_a_caller_typed() -> None:
    hogql = logs_hogql(E, search="a_b\\c'--", limit=7)
    assert "message ILIKE '%a\\\\_b\\\\\\\\c\\'--%'" in hogql, hogql
    assert hogql.endswith("LIMIT 7")


def test_scope_discovery_knows_query_read() -> None:
    from server.visibility import KeyAccess

    assert KeyAccess(scopes=("batch_export:read", "query:read")).allows("query:read")
    assert KeyAccess(scopes=("*",)).allows("query:read")
    assert not KeyAccess(scopes=("batch_export:read", "batch_export:write")).allows("query:read")
