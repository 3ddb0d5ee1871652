"""The optional stateful HTTP mode: a session per client, so handshake-era clients that declare
elicitation are asked with `elicitation/create` over HTTP, as over stdio.

Real `mcp.Client`s over streamable HTTP on loopback; the sandbox shows what was written.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import mcp.types as types
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from posthog_sandbox import DEFAULT_API_KEY
from server.config import Settings
from server.http.transport import RunningHttp, running_http
from tests.support import MODES, SandboxControl, data, settings_for

MCP_TOKEN = "stateful-test-bearer-token-0123456789abcdef"


@pytest.fixture
def generation() -> int:
    return 3


@pytest.fixture
def stateful(sandbox: Any, tmp_path: Path) -> Settings:
    return settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, auth_token=MCP_TOKEN, http_stateful=True)


@asynccontextmanager
async def mcp_client(running: RunningHttp, mode: str, **kwargs: Any) -> AsyncIterator[Client]:
    async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {MCP_TOKEN}"}, timeout=30.0) as http:
        async with Client(streamable_http_client(running.url, http_client=http), mode=mode, **kwargs) as client:
            yield client


@pytest.mark.parametrize("mode", MODES)
async def test_clients_that_elicit_are_asked_over_stateful_http(
    stateful: Settings, control: SandboxControl, mode: str
) -> None:
    asked: list[str] = []

    async def agree(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.message)
        return types.ElicitResult(action="accept", content={"confirm": True})

    export_id = control.export_id("Hourly events to S3")
    async with running_http(stateful) as running, mcp_client(running, mode, elicitation_callback=agree) as client:
        assert client.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
        result = data(await client.call_tool("batch-export-pause", {"project_id": 1, "batch_export_id": export_id}))
    assert result["status"] == "executed", result
    assert len(asked) == 1 and "Hourly events to S3" in asked[0]
    assert next(e for e in control.state()["exports"] if e["id"] == export_id)["paused"] is True


async def test_a_declined_elicitation_over_stateful_http_writes_nothing(
    stateful: Settings, control: SandboxControl
) -> None:
    async def decline(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="decline")

    export_id = control.export_id("Hourly events to S3")
    async with running_http(stateful) as running, mcp_client(running, "legacy", elicitation_callback=decline) as client:
        control.clear_requests()
        result = data(await client.call_tool("batch-export-pause", {"project_id": 1, "batch_export_id": export_id}))
    assert result["status"] == "declined"
    assert control.writes() == []


async def test_a_stateful_client_without_elicitation_gets_the_token_channel(
    stateful: Settings, control: SandboxControl
) -> None:
    export_id = control.export_id("Hourly events to S3")
    async with running_http(stateful) as running, mcp_client(running, "legacy") as client:
        first = data(await client.call_tool("batch-export-pause", {"project_id": 1, "batch_export_id": export_id}))
    assert first["status"] == "confirmation_required"
    assert control.writes() == []


async def test_stateful_get_is_405_and_an_unknown_session_is_404(stateful: Settings) -> None:
    async with running_http(stateful) as running, httpx.AsyncClient(timeout=10.0) as http:
        headers = {
            "Authorization": f"Bearer {MCP_TOKEN}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
        }
        opened = await http.post(
            running.url,
            headers=headers,
            json={
                "jsonrpc": "2.0",
                "id": 1,
                "method": "initialize",
                "params": {
                    "protocolVersion": "2025-11-25",
                    "capabilities": {},
                    "clientInfo": {"name": "t", "version": "0"},
                },
            },
        )
        assert opened.status_code == 200, opened.text
        session = opened.headers["mcp-session-id"]
        stream = await http.get(running.url, headers={**headers, "Mcp-Session-Id": session})
        assert stream.status_code == 405
        unknown = await http.post(
            running.url,
            headers={**headers, "Mcp-Session-Id": "0" * 32, "MCP-Protocol-Version": "2025-11-25"},
            json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
        )
        assert unknown.status_code == 404
        closed = await http.delete(running.url, headers={**headers, "Mcp-Session-Id": session})
        assert closed.status_code in (200, 204)


INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
}


async def test_n7_one_caller_cannot_take_every_session_and_others_are_unaffected(sandbox: Any, tmp_path: Path) -> None:
    from server.http.connections import MAX_SESSIONS_PER_CALLER

    hog, other = "hog-token-" + "h" * 40, "other-token-" + "o" * 40
    tokens = tmp_path / "tokens"
    tokens.write_text(f"hog: {hog}\nother: {other}\n")
    tokens.chmod(0o600)
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, auth_tokens_file=tokens, http_stateful=True)

    def headers(token: str, session: str | None = None) -> dict[str, str]:
        extra = {"Mcp-Session-Id": session, "MCP-Protocol-Version": "2025-11-25"} if session else {}
        return {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json, text/event-stream",
            **extra,
        }

    async with running_http(settings) as running, httpx.AsyncClient(timeout=10.0) as http:
        opened = []
        for _ in range(MAX_SESSIONS_PER_CALLER):
            answer = await http.post(running.url, headers=headers(hog), json=INITIALIZE)
            assert answer.status_code == 200, answer.text
            opened.append(answer.headers["mcp-session-id"])
        refused = await http.post(running.url, headers=headers(hog), json=INITIALIZE)
        assert refused.status_code == 429, refused.text
        body = refused.json()
        assert body["error"] == "too_many_sessions"
        assert f"{MAX_SESSIONS_PER_CALLER} open sessions" in body["message"] and "DELETE" in body["message"]
        assert "mcp-session-id" not in refused.headers
        # Its open sessions still work, and another caller opens its own.
        listed = await http.post(
            running.url, headers=headers(hog, opened[0]), json={"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
        )
        assert listed.status_code == 200, listed.text
        assert (await http.post(running.url, headers=headers(other), json=INITIALIZE)).status_code == 200
        # Ending one of its sessions makes room for a new one, and only one.
        assert (await http.delete(running.url, headers=headers(hog, opened[0]))).status_code in (200, 204)
        assert (await http.post(running.url, headers=headers(hog), json=INITIALIZE)).status_code == 200
        assert (await http.post(running.url, headers=headers(hog), json=INITIALIZE)).status_code == 429
