"""Streamable HTTP: stateless /mcp behind a bearer token, /healthz, replicas sharing the confirm secret.

The server runs in-process on a free loopback port; the client is the SDK's `mcp.Client` over real HTTP.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import mcp.types as types
import pytest
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client

from posthog_sandbox import DEFAULT_API_KEY
from server.config import ConfigError, Settings
from server.http.transport import RunningHttp, check_bind, is_loopback, running_http
from tests.support import MODES, SandboxControl, confirm_with_token, data, listed_by_test_servers, settings_for, text

MCP_TOKEN = "mcp-client-bearer-token-0123456789"
SHARED_SECRET = b"replicas-share-this-confirm-secret"


class RecordingTransport(httpx.AsyncBaseTransport):
    """A real loopback transport that remembers every header sent upstream."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sent: list[httpx.Headers] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request.headers)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@asynccontextmanager
async def mcp_client(url: str, token: str | None, mode: str = "auto", **kwargs: Any) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=30.0) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode, **kwargs) as client:
            yield client


@pytest.fixture
def generation() -> int:
    """The transport does not depend on PostHog's API generation; one is enough here."""
    return 3


@pytest.fixture
def server_settings(sandbox: Any, tmp_path: Path) -> Settings:
    # A confirm secret without Redis is one replica's business: the tests' servers say so (--single-replica).
    return settings_for(
        sandbox.base_url,
        DEFAULT_API_KEY,
        tmp_path,
        auth_token=MCP_TOKEN,
        confirm_secret=SHARED_SECRET,
        single_replica=True,
    )


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[tuple[RunningHttp, RecordingTransport]]:
    # A context manager, not an async fixture: the server's task group must start and end in the test's task.
    upstream = RecordingTransport()
    async with running_http(settings, upstream_transport=upstream) as running:
        yield running, upstream


async def test_health_answers_without_token_and_without_touching_posthog(
    server_settings: Settings, control: SandboxControl
) -> None:
    async with serving(server_settings) as (running, _):
        control.clear_requests()
        async with httpx.AsyncClient() as http:
            response = await http.get(running.health_url)
        assert response.status_code == 200
        assert response.json()["status"] == "ok"
        assert response.json()["tools"] == listed_by_test_servers()
        assert control.requests() == []


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Bearer {MCP_TOKEN}x", f"Basic {MCP_TOKEN}", MCP_TOKEN, f"bearer  {MCP_TOKEN}"],
)
async def test_mcp_endpoint_refuses_requests_without_the_right_token(
    server_settings: Settings, control: SandboxControl, authorization: str | None
) -> None:
    async with serving(server_settings) as (running, _):
        control.clear_requests()
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if authorization is not None:
            headers["Authorization"] = authorization
        body = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
        async with httpx.AsyncClient() as http:
            response = await http.post(running.url, json=body, headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "POSTHOG_MCP_AUTH_TOKEN" in response.text
        assert MCP_TOKEN not in response.text
        assert control.requests() == []


@pytest.mark.parametrize("mode", MODES)
async def test_sdk_client_without_token_cannot_connect(server_settings: Settings, mode: str) -> None:
    async with serving(server_settings) as (running, _):
        with pytest.raises(BaseException) as raised:
            async with mcp_client(running.url, None, mode) as client:
                await client.list_tools()
        # The SDK reports the 401 as an MCPError (the raw-HTTP test above checks the status itself).
        assert (
            raised.group_contains(MCPError, depth=None)
            if isinstance(raised.value, BaseExceptionGroup)
            else (isinstance(raised.value, MCPError))
        ), repr(raised.value)


@pytest.mark.parametrize("mode", MODES)
async def test_client_with_token_lists_and_reads_and_the_token_stays_here(server_settings: Settings, mode: str) -> None:
    async with serving(server_settings) as (running, upstream):
        async with mcp_client(running.url, MCP_TOKEN, mode) as client:
            assert client.protocol_version == ("2026-07-28" if mode == "auto" else "2025-11-25")
            tools = (await client.list_tools()).tools
            assert len(tools) == listed_by_test_servers()
            exports = data(await client.call_tool("batch-export-list", {"project_id": 1}))
            assert exports["count"] == 4
        assert upstream.sent, "nothing went upstream"
        for headers in upstream.sent:
            assert headers["authorization"] == f"Bearer {DEFAULT_API_KEY}"
            assert all(MCP_TOKEN not in value for value in headers.values())


@pytest.mark.parametrize("mode", MODES)
async def test_guarded_write_through_the_token_channel(
    server_settings: Settings, control: SandboxControl, mode: str
) -> None:
    async with serving(server_settings) as (running, _):
        export_id = control.export_id("Hourly events to S3")
        async with mcp_client(running.url, MCP_TOKEN, mode) as client:
            result = await confirm_with_token(
                client, "batch-export-pause", {"project_id": 1, "batch_export_id": export_id}
            )
        assert result["paused"] is True
        assert next(e for e in control.state()["exports"] if e["id"] == export_id)["paused"] is True


async def never_called(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    raise AssertionError("the test answers the elicitation itself, through the other replica")


async def test_replicas_sharing_the_secret_accept_each_others_confirmations(
    server_settings: Settings, control: SandboxControl
) -> None:
    """Stateless HTTP behind a load balancer: the preview may come from one replica, the write go to another."""
    s3 = control.export_id("Hourly events to S3")
    snowflake = control.export_id("Daily events to Snowflake")
    async with AsyncExitStack() as stack:
        one = await stack.enter_async_context(running_http(server_settings))
        two = await stack.enter_async_context(running_http(server_settings))
        assert one.url != two.url
        # Both clients can elicit; the test itself plays the user, answering between the two replicas.
        first = await stack.enter_async_context(
            mcp_client(one.url, MCP_TOKEN, "auto", elicitation_callback=never_called)
        )
        second = await stack.enter_async_context(
            mcp_client(two.url, MCP_TOKEN, "auto", elicitation_callback=never_called)
        )

        # Token channel (a client that cannot elicit): preview on replica one, execute on replica two.
        arguments = {"project_id": 1, "batch_export_id": s3}
        async with mcp_client(one.url, MCP_TOKEN) as plain_one, mcp_client(two.url, MCP_TOKEN) as plain_two:
            token = data(await plain_one.call_tool("batch-export-pause", arguments))["confirmation_token"]
            done = data(await plain_two.call_tool("batch-export-pause", {**arguments, "confirmation_token": token}))
        assert done["status"] == "executed"

        # 2026-07-28 elicitation: InputRequiredResult from replica one, the user's answer to replica two.
        arguments = {"project_id": 1, "batch_export_id": snowflake}
        asked = await first.session.call_tool("batch-export-pause", arguments, allow_input_required=True)
        assert isinstance(asked, types.InputRequiredResult), asked
        answer = {"confirm": types.ElicitResult(action="accept", content={"confirm": True})}
        finished = await second.session.call_tool(
            "batch-export-pause", arguments, input_responses=answer, request_state=asked.request_state
        )
        assert not finished.is_error, text(finished)
        assert finished.structured_content["status"] == "executed"

    paused = {e["id"]: e["paused"] for e in control.state()["exports"]}
    assert paused[s3] is True and paused[snowflake] is True


async def test_a_replica_with_another_secret_refuses_the_token(
    server_settings: Settings, control: SandboxControl
) -> None:
    s3 = control.export_id("Hourly events to S3")
    arguments = {"project_id": 1, "batch_export_id": s3}
    async with (
        running_http(server_settings) as one,
        running_http(server_settings.with_(confirm_secret=b"some-other-secret-entirely")) as other,
        mcp_client(one.url, MCP_TOKEN) as first,
        mcp_client(other.url, MCP_TOKEN) as second,
    ):
        token = data(await first.call_tool("batch-export-pause", arguments))["confirmation_token"]
        control.clear_requests()
        refused = await second.call_tool("batch-export-pause", {**arguments, "confirmation_token": token})
    assert refused.is_error
    assert "issued by another server" in text(refused)
    assert control.writes() == []


@pytest.mark.parametrize("mode", MODES)
async def test_elicitation_over_http(server_settings: Settings, control: SandboxControl, mode: str) -> None:
    """2026-07-28 clients get elicitation; a stateless server cannot keep handshake-era capabilities, so
    older clients get the token channel instead (never a hung call)."""
    async with serving(server_settings) as (running, _):
        asked: list[str] = []

        async def agree(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
            asked.append(params.message)
            return types.ElicitResult(action="accept", content={"confirm": True})

        export_id = control.export_id("Hourly events to S3")
        async with mcp_client(running.url, MCP_TOKEN, mode, elicitation_callback=agree) as client:
            result = data(await client.call_tool("batch-export-pause", {"project_id": 1, "batch_export_id": export_id}))
        if mode == "auto":
            assert result["status"] == "executed"
            assert len(asked) == 1 and "Hourly events to S3" in asked[0]
        else:
            assert result["status"] == "confirmation_required"
            assert asked == []
            assert control.writes() == []


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("localhost", True),
        ("::1", True),
        ("[::1]", True),
        ("127.0.0.2", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.10", False),
        ("example.com", False),
    ],
)
def test_binding_beyond_loopback_needs_a_token(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    check_bind(host, "some-token")
    if loopback:
        check_bind(host, None)
    else:
        with pytest.raises(ConfigError, match="POSTHOG_MCP_AUTH_TOKEN"):
            check_bind(host, None)


async def test_no_token_configured_means_open_on_loopback(sandbox: Any, tmp_path: Path) -> None:
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)
    async with running_http(settings) as running, mcp_client(running.url, None) as client:
        assert running.url.startswith("http://127.0.0.1:")
        assert len((await client.list_tools()).tools) == listed_by_test_servers()


async def test_port_in_use_is_a_clear_error(sandbox: Any, tmp_path: Path) -> None:
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)
    port = int(sandbox.base_url.rsplit(":", 1)[1])
    with pytest.raises(ConfigError, match=f"Cannot listen on 127.0.0.1:{port}"):
        async with running_http(settings, port=port):
            pass


async def test_item4_over_http_a_shared_secret_without_redis_is_refused_unless_one_replica_is_declared(
    server_settings: Settings, caplog: pytest.LogCaptureFixture
) -> None:
    with pytest.raises(ConfigError, match="--single-replica") as refused:
        async with running_http(server_settings.with_(single_replica=False)):
            pass
    assert "POSTHOG_MCP_REDIS_URL" in str(refused.value)
    with caplog.at_level(logging.WARNING, logger="server"):
        async with running_http(server_settings) as running, httpx.AsyncClient() as http:
            assert (await http.get(running.health_url)).status_code == 200
    assert any("single replica" in record.getMessage() for record in caplog.records), caplog.text
    # No secret: each process signs with its own, and a token from one is refused by another: nothing to declare.
    async with running_http(server_settings.with_(confirm_secret=None, single_replica=False)) as running:
        assert running.url
