"""What the PostHog client makes of unusual answers (issue 13 items 3, 4, 14; issue 10 items 5, 8).

Redirects and unreadable successes run through a real MCP client against the sandbox over loopback
(a redirecting relay sits in front of it); header details use respx, since they are about one
answer's bytes.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import respx
from mcp import Client

from posthog_sandbox import DEFAULT_API_KEY
from server.app import open_app
from server.config import Settings
from server.log_bodies import LOG_BODY_CHARS, StreamedBodies
from server.posthog import PostHogClient, PostHogError, request_kind
from tests.support import MODES, SandboxControl, connect, data, running_app, settings_for, text

HOST = "https://posthog.test"
E = "0190f4b2-6c1e-7c3a-9a51-2b1f0e7a1d11"
P = "/api/projects/1/batch_exports"
EXPORT = {"id": E, "name": "Hourly", "interval": "hour", "paused": False, "destination": {"type": "NoOp", "config": {}}}
ARGS = {"project_id": 1, "batch_export_id": E}
POSSIBLY = "may or may not have been applied"


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        api_key="phx_unit_key_1234",
        host=HOST,
        audit_log=tmp_path / "audit.jsonl",
        **({"toolsets": ("all",)} | overrides),
    )


def audit(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


# --- a relay that answers chosen requests with a redirect, and a catcher for where it points ----------


class Catcher:
    """A loopback listener that records every request that reaches it (none should)."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []
        self.base_url = ""

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with suppress(ConnectionError):
            head = await reader.read(65536)
            self.seen.append(head)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
            await writer.drain()
        writer.close()


class Redirector:
    """Passes requests through to the sandbox, except those whose request line matches: they get
    `status` with a Location at the catcher (a proxy or load balancer in front of PostHog would)."""

    def __init__(self, upstream: str, status: int, location: str) -> None:
        parts = urlsplit(upstream)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self.status, self.location = status, location
        self.match: tuple[str, str] = ("", "\0")  # (method, path part); matches nothing until set
        self.redirected = 0
        self.base_url = ""

    def _matches(self, chunk: bytes) -> bool:
        method, _, rest = chunk.partition(b" ")
        target = rest.split(b" ", 1)[0].decode("latin-1")
        return method.decode("latin-1") == self.match[0] and self.match[1] in target

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(self._host, self._port)

        async def answers() -> None:
            with suppress(ConnectionError):
                while chunk := await upstream_reader.read(65536):
                    writer.write(chunk)
                    await writer.drain()

        task = asyncio.ensure_future(answers())
        try:
            with suppress(ConnectionError):
                # httpx sends one request at a time on a connection, so a request line starts a chunk.
                while chunk := await reader.read(65536):
                    if self._matches(chunk):
                        self.redirected += 1
                        writer.write(
                            f"HTTP/1.1 {self.status} Redirect\r\nLocation: {self.location}\r\n"
                            "Content-Length: 0\r\nConnection: close\r\n\r\n".encode()
                        )
                        await writer.drain()
                        break
                    upstream_writer.write(chunk)
                    await upstream_writer.drain()
        finally:
            task.cancel()
            for w in (writer, upstream_writer):
                w.close()


@asynccontextmanager
async def redirecting(upstream: str, status: int) -> AsyncIterator[tuple[Redirector, Catcher]]:
    catcher = Catcher()
    catch_server = await asyncio.start_server(catcher.serve, "127.0.0.1", 0)
    catcher.base_url = f"http://127.0.0.1:{catch_server.sockets[0].getsockname()[1]}"
    relay = Redirector(upstream, status, f"{catcher.base_url}/api/projects/1/stolen/?keep=secret-ish")
    relay_server = await asyncio.start_server(relay.serve, "127.0.0.1", 0)
    relay.base_url = f"http://127.0.0.1:{relay_server.sockets[0].getsockname()[1]}"
    try:
        yield relay, catcher
    finally:
        for server in (relay_server, catch_server):
            server.close()
            with suppress(Exception):
                await asyncio.wait_for(server.wait_closed(), 2.0)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_a_redirected_write_is_an_error_and_the_redirect_is_never_followed(
    make_sandbox: Any, tmp_path: Path, mode: str, status: int
) -> None:
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    export_id = control.export_id("Hourly events to S3")
    arguments = {"project_id": 1, "batch_export_id": export_id}
    try:
        async with redirecting(sandbox.base_url, status) as (relay, catcher):
            settings = settings_for(relay.base_url, DEFAULT_API_KEY, tmp_path)
            async with running_app(settings) as app, connect(app, mode) as client:
                preview = data(await client.call_tool("batch-export-pause", arguments))
                relay.match = ("POST", f"/{export_id}/pause")
                result = await client.call_tool(
                    "batch-export-pause", {**arguments, "confirmation_token": preview["confirmation_token"]}
                )
        assert result.is_error, text(result)
        message = text(result)
        assert f"PostHog HTTP {status}" in message and "\n" not in message, message
        assert f"redirect to {catcher.base_url}/api/projects/1/stolen/ (query omitted)" in message, message
        assert "not known to have happened" in message and "Done" not in message, message
        assert "keep=secret-ish" not in message
        assert relay.redirected == 1
        assert catcher.seen == [], "the redirect was followed"
        assert control.api("GET", f"1/batch_exports/{export_id}/").json()["paused"] is False
        lines = audit(settings.audit_log)
        assert [line["decision"] for line in lines][-1] == "failed", lines
        assert lines[-1]["upstream_status"] == status
        assert "executed" not in [line["decision"] for line in lines]
    finally:
        control.close()


async def test_a_redirected_read_names_the_target_and_how_to_fix_the_host(tmp_path: Path) -> None:
    with respx.mock(base_url=HOST) as mock:
        mock.get("/api/personal_api_keys/@current/").respond(200, json={"scopes": ["*"]})
        mock.get(f"{P}/{E}/").respond(301, headers={"Location": "https://us.posthog.com/api/projects/1/x/"})
        async with open_app(_settings(tmp_path)) as app, Client(app.server) as client:
            result = await client.call_tool("batch-export-get", ARGS)
    message = text(result)
    assert result.is_error and "PostHog HTTP 301" in message
    assert "redirect to https://us.posthog.com/api/projects/1/x/" in message and "POSTHOG_HOST" in message
    assert "not known to have happened" not in message  # nothing was written


# --- an unreadable answer to a write ----------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_an_unreadable_success_on_a_write_says_it_was_probably_applied(
    make_sandbox: Any, tmp_path: Path, mode: str
) -> None:
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    export_id = control.export_id("Hourly events to S3")
    arguments = {"project_id": 1, "batch_export_id": export_id}
    try:
        settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)
        async with running_app(settings) as app, connect(app, mode) as client:
            preview = data(await client.call_tool("batch-export-pause", arguments))
            control.fault(method="POST", path_contains="/pause/", status=200, malformed_json=True)
            result = await client.call_tool(
                "batch-export-pause", {**arguments, "confirmation_token": preview["confirmation_token"]}
            )
        message = text(result)
        assert result.is_error and "PostHog HTTP 200" in message, message
        assert "probably applied" in message and "batch-export-get" in message, message
        assert "try again shortly" not in message
        pauses = [r for r in control.requests() if r["method"] == "POST" and "/pause/" in r["path"]]
        assert len(pauses) == 1, "a write whose answer was unreadable must not be resent"
    finally:
        control.close()


# --- headers and bodies of today's PostHog ------------------------------------------------------------


async def _one_call(tmp_path: Path, tool: str, arguments: dict[str, Any]) -> Any:
    async with open_app(_settings(tmp_path)) as app, Client(app.server) as client:
        return await client.call_tool(tool, arguments)


DB_DOWN = {"type": "server_error", "code": "database_unavailable", "detail": "Database is unavailable.", "attr": None}


async def test_database_unavailable_on_a_read_is_retried_after_retry_after(tmp_path: Path) -> None:
    with respx.mock(base_url=HOST) as mock:
        mock.get("/api/personal_api_keys/@current/").respond(200, json={"scopes": ["*"]})
        route = mock.get(f"{P}/{E}/")
        route.side_effect = [
            httpx.Response(503, json=DB_DOWN, headers={"Retry-After": "1"}),
            httpx.Response(200, json=EXPORT),
        ]
        loop = asyncio.get_running_loop()
        started = loop.time()
        result = await _one_call(tmp_path, "batch-export-get", ARGS)
        waited = loop.time() - started
    assert data(result)["name"] == "Hourly"
    assert route.call_count == 2
    assert waited >= 0.9, "Retry-After: 1 was not waited for"  # the backoff alone would be 0.25 s


async def test_database_unavailable_on_a_write_is_reported_as_possibly_applied_and_not_resent(tmp_path: Path) -> None:
    with respx.mock(base_url=HOST, assert_all_called=False) as mock:
        mock.get("/api/personal_api_keys/@current/").respond(200, json={"scopes": ["*"]})
        mock.get(f"{P}/{E}/").respond(200, json=EXPORT)
        pause = mock.post(f"{P}/{E}/pause/").respond(503, json=DB_DOWN, headers={"Retry-After": "1"})
        async with open_app(_settings(tmp_path, confirm="never")) as app, Client(app.server) as client:
            result = await client.call_tool("batch-export-pause", ARGS)
    message = text(result)
    assert result.is_error and "HTTP 503" in message and "database_unavailable" in message
    assert POSSIBLY in message
    assert pause.call_count == 1


async def test_a_500_shows_its_error_event_id(tmp_path: Path) -> None:
    body = {"type": "server_error", "code": "error", "detail": "A server error occurred.", "attr": None}
    with respx.mock(base_url=HOST) as mock:
        mock.get("/api/personal_api_keys/@current/").respond(200, json={"scopes": ["*"]})
        mock.get(f"{P}/{E}/").respond(500, json={**body, "error_event_id": "0193abcd-event"})
        result = await _one_call(tmp_path, "batch-export-get", ARGS)
    message = text(result)
    assert result.is_error and "error_event_id=0193abcd-event" in message
    assert "quote error_event_id 0193abcd-event" in message
    assert "(after 3 attempts)" in message


async def test_a_401_says_what_its_www_authenticate_header_says(tmp_path: Path) -> None:
    body = {
        "type": "authentication_error",
        "code": "authentication_failed",
        "detail": "Personal API key found in request Authorization header is invalid.",
        "attr": None,
    }
    header = 'Bearer resource_metadata="https://us.posthog.com/.well-known/oauth-protected-resource", '
    header += 'error="invalid_token", error_description="The access token expired"'
    with respx.mock(base_url=HOST) as mock:
        mock.get("/api/personal_api_keys/@current/").respond(200, json={"scopes": ["*"]})
        mock.get(f"{P}/{E}/").respond(401, json=body, headers={"WWW-Authenticate": header})
        result = await _one_call(tmp_path, "batch-export-get", ARGS)
    message = text(result)
    assert "HTTP 401" in message and "(The access token expired)" in message
    assert "check POSTHOG_PERSONAL_API_KEY" in message


async def test_a_throttle_with_an_http_date_retry_after_is_reported_with_the_wait(tmp_path: Path) -> None:
    body = {"type": "throttled_error", "code": "throttled", "detail": "Request was throttled.", "attr": None}
    with respx.mock(base_url=HOST) as mock:
        mock.get("/api/personal_api_keys/@current/").respond(200, json={"scopes": ["*"]})
        route = mock.get(f"{P}/{E}/").respond(429, json=body, headers={"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"})
        result = await _one_call(tmp_path, "batch-export-get", ARGS)
    message = text(result)
    assert result.is_error and "PostHog asks to wait" in message
    assert route.call_count == 1, "a wait beyond the limit must not be slept through"


LEGACY_403 = {
    "type": "authentication_error",
    "code": "permission_denied",
    "detail": "API key missing required scope 'batch_export:read'",
    "attr": None,
}


@pytest.mark.parametrize(
    ("scopes", "expected", "absent"),
    [
        (["*"], "legacy personal API key without stored scopes", "give the personal API key the scope"),
        (["batch_export:write"], "give the personal API key the scope batch_export:read", "legacy"),
    ],
)
async def test_a_star_key_refused_for_a_missing_scope_is_told_to_create_a_scoped_key(
    tmp_path: Path, scopes: list[str], expected: str, absent: str
) -> None:
    with respx.mock(base_url=HOST) as mock:
        mock.get("/api/personal_api_keys/@current/").respond(200, json={"scopes": scopes})
        mock.get(f"{P}/{E}/").respond(403, json=LEGACY_403)
        # Listed whatever the scopes say, so the refusal comes from PostHog.
        result = await _one_call(tmp_path, "batch-export-get", ARGS)
    message = text(result)
    if scopes == ["*"]:
        assert "create a personal API key with scopes" in message
    assert expected in message and absent not in message, message


@pytest.mark.parametrize(
    "detail",
    ["This action does not support personal API key access", "This action does not support Personal API Key access"],
)
async def test_the_unsupported_action_refusal_is_recognised_whatever_its_case(tmp_path: Path, detail: str) -> None:
    body = {"type": "authentication_error", "code": "permission_denied", "detail": detail, "attr": None}
    with respx.mock(base_url=HOST) as mock:
        mock.get("/api/personal_api_keys/@current/").respond(200, json={"scopes": ["*"]})
        mock.get(f"{P}/{E}/").respond(403, json=body)
        result = await _one_call(tmp_path, "batch-export-get", ARGS)
    assert "serves this action to no scoped personal API key, whatever its scopes" in text(result)


async def test_a_500_on_a_test_step_is_not_called_a_write(tmp_path: Path) -> None:
    body = {"type": "server_error", "code": "error", "detail": "A server error occurred.", "attr": None}
    with respx.mock(base_url=HOST) as mock:
        mock.get("/api/personal_api_keys/@current/").respond(200, json={"scopes": ["*"]})
        mock.get(f"{P}/{E}/").respond(200, json={**EXPORT, "destination": {"type": "Snowflake", "config": {}}})
        step = mock.post(f"{P}/{E}/run_test_step/").respond(500, json=body)
        result = await _one_call(tmp_path, "batch-export-test-step", {**ARGS, "step": 9})
    message = text(result)
    assert result.is_error and "HTTP 500" in message
    assert POSSIBLY not in message and "changes nothing" in message and "batch-export-test-steps" in message
    assert step.call_count == 1


def test_what_counts_as_a_write() -> None:
    assert request_kind("GET", "/api/projects/1/batch_exports/") == "read"
    assert request_kind("POST", "/api/projects/1/query/") == "read"
    assert request_kind("POST", "/api/projects/1/batch_exports/x/run_test_step/") == "check"
    assert request_kind("POST", "/api/projects/1/batch_exports/run_test_step_new") == "check"
    assert request_kind("POST", "/api/projects/1/batch_exports/x/pause/") == "write"
    assert request_kind("PATCH", "/api/projects/1/batch_exports/x/") == "write"


# --- DEBUG lines of response bodies --------------------------------------------------------------------


async def test_debug_lines_of_bodies_are_short_and_masked(caplog: pytest.LogCaptureFixture) -> None:
    secret_token = "tok-very-secret-9876"
    key = "phx_debug_key_abcdef"
    body = {
        "id": E,
        "destination": {"type": "HTTP", "config": {"url": "https://us.i.posthog.com/batch/", "token": secret_token}},
        "confirmation_token": "eyJrIjoiY29uZmlybSJ9.c2lnbmF0dXJlLWFiY2RlZi1zaWduYXR1cmU",
        "echo": f"Bearer {key}",
        "latest_runs": [{"id": str(i), "latest_error": "x" * 200} for i in range(50)],
    }
    transport = httpx.MockTransport(lambda request: httpx.Response(200, json=body))
    client = PostHogClient(HOST, key, transport=transport)
    try:
        with caplog.at_level(logging.DEBUG, logger="server.posthog"):
            assert (await client.request("GET", f"{P}/{E}/"))["id"] == E
    finally:
        await client.aclose()
    lines = [r.getMessage() for r in caplog.records if r.name == "server.posthog"]
    assert len(lines) == 1, lines
    line = lines[0]
    assert f"GET {P}/{E}/ -> 200" in line
    assert secret_token not in line and "eyJrIjoiY29uZmlybSJ9" not in line and key not in line
    assert "[masked]" in line and "more chars)" in line
    assert len(line) < LOG_BODY_CHARS + 200


def test_posthog_error_carries_what_is_known_of_a_write() -> None:
    error = PostHogError(status=None, detail="connection failed", write="unknown")
    assert error.as_dict()["write"] == "unknown"


def test_streamed_chunks_at_debug_lose_their_tokens_and_length() -> None:
    """sse_starlette logs every chunk it streams at DEBUG; a tool result there carries a confirmation token."""
    token = "eyJrIjoiY29uZmlybSIsInQiOiJiYXRjaC1leHBvcnQtcGF1c2UifQ.Qm9ndXNTaWduYXR1cmVCb2d1c1NpZ25hdHVyZUFBQQ"
    result = {"status": "confirmation_required", "confirmation_token": token, "preview": {"summary": "x" * 2000}}
    message = {"jsonrpc": "2.0", "id": 3, "result": {"content": [{"type": "text", "text": json.dumps(result)}]}}
    chunk = f"event: message\r\ndata: {json.dumps(message)}\r\n\r\n".encode()
    record = logging.LogRecord("sse_starlette.sse", logging.DEBUG, __file__, 1, "chunk: %s", (chunk,), None)
    assert StreamedBodies().filter(record)
    line = record.getMessage()
    assert token not in line and token[:20] not in line and "[masked]" in line
    assert len(line) < LOG_BODY_CHARS + 100
