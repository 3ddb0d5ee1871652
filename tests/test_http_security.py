"""DNS rebinding and well-known paths, over real loopback HTTP.

A web page whose DNS name points at this machine sends its own name in `Host` and its own page in
`Origin`. On every loopback spelling the server binds, such a request must be refused before it
reaches MCP, while local clients (no Origin, or a local page's Origin) keep working.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from posthog_sandbox import DEFAULT_API_KEY
from server.app import open_app
from server.config import ConfigError
from server.http.rebinding import allowed_peers
from server.http.transport import build_http_app, running_http
from tests.support import SandboxControl, listed_by_test_servers, settings_for

MCP_TOKEN = "security-test-bearer-token-0123456789abcdef"
LIST = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
MCP_HEADERS = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
LOOPBACK_BINDS = ["127.0.0.1", "127.0.0.2", "localhost", "LOCALHOST", "::1", "[::1]", "0:0:0:0:0:0:0:1"]


@pytest.fixture
def generation() -> int:
    return 3


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/", 1)[0])


async def _post(url: str, headers: dict[str, str], body: dict[str, Any] = LIST) -> httpx.Response:
    async with httpx.AsyncClient(timeout=10.0) as http:
        return await http.post(url, json=body, headers={**MCP_HEADERS, **headers})


@pytest.mark.parametrize("bind", LOOPBACK_BINDS)
async def test_a_rebinding_page_is_refused_on_every_loopback_spelling(
    bind: str, sandbox: Any, control: SandboxControl, tmp_path: Path
) -> None:
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)  # no token: loopback is open
    async with running_http(settings, host=bind) as running:
        port = _port(running.url)
        control.clear_requests()
        attacker = f"rebind.attacker.example:{port}"
        refused_host = await _post(running.url, {"Host": attacker, "Origin": f"http://{attacker}"})
        assert refused_host.status_code == 421, refused_host.text
        assert "--allowed-hosts" in refused_host.json()["message"]

        refused_origin = await _post(running.url, {"Origin": f"http://{attacker}"})
        assert refused_origin.status_code == 403, refused_origin.text
        assert "--allowed-origins" in refused_origin.json()["message"]

        refused_null = await _post(running.url, {"Origin": "null"})
        assert refused_null.status_code == 403
        assert control.requests() == []  # nothing reached PostHog

        # Local clients keep working: no Origin (an SDK), or a page on localhost (the Inspector's UI).
        for origin in (None, "http://localhost:6274", f"http://127.0.0.1:{port}"):
            answered = await _post(running.url, {"Origin": origin} if origin else {})
            assert answered.status_code == 200, (origin, answered.text)
            assert "batch-export-get" in answered.text
        async with Client(running.url) as client:
            assert len((await client.list_tools()).tools) == listed_by_test_servers()


async def test_hosts_given_for_a_proxy_replace_the_defaults(sandbox: Any, tmp_path: Path) -> None:
    settings = settings_for(
        sandbox.base_url,
        DEFAULT_API_KEY,
        tmp_path,
        allowed_hosts=("mcp.example.internal",),
        allowed_origins=("https://console.example.internal",),
    )
    async with running_http(settings) as running:
        via_proxy = await _post(running.url, {"Host": "mcp.example.internal"})
        assert via_proxy.status_code == 200, via_proxy.text
        page = await _post(running.url, {"Host": "mcp.example.internal", "Origin": "https://console.example.internal"})
        assert page.status_code == 200, page.text
        assert (
            await _post(running.url, {"Host": "mcp.example.internal", "Origin": "http://console.example.internal"})
        ).status_code == 403
        assert (await _post(running.url, {})).status_code == 421  # 127.0.0.1 is no longer a name it answers to
        async with httpx.AsyncClient() as http:  # a load balancer probes the health check by address
            assert (await http.get(running.health_url)).status_code == 200


def test_allow_lists_derived_from_the_bind() -> None:
    loopback = allowed_peers("127.0.0.2")
    for header in ("127.0.0.2:8000", "localhost:1", "LOCALHOST", "[::1]:8000", "[0:0:0:0:0:0:0:1]:9", "127.0.0.1"):
        assert loopback.host_allowed(header), header
    for header in ("evil.example", "127.0.0.3:8000", "localhost.evil.example", "[::2]", "::1", "", None):
        assert not loopback.host_allowed(header), header
    assert loopback.origin_allowed(None)
    assert loopback.origin_allowed("http://[::1]:3000") and loopback.origin_allowed("https://localhost")
    assert not loopback.origin_allowed("http://evil.example") and not loopback.origin_allowed("file://")

    specific = allowed_peers("10.1.2.3")
    assert specific.host_allowed("10.1.2.3:8000") and not specific.host_allowed("localhost:8000")
    assert not specific.origin_allowed("http://localhost:6274")

    wildcard = allowed_peers("0.0.0.0")
    assert wildcard.host_allowed("127.0.0.1:8000") and not wildcard.host_allowed("evil.example")

    proxy = allowed_peers("0.0.0.0", hosts=["MCP.example.com:443"], origins=["http://localhost:*"])
    assert proxy.host_allowed("mcp.example.com") and not proxy.host_allowed("127.0.0.1")
    assert proxy.origin_allowed("http://localhost:1234") and not proxy.origin_allowed("https://mcp.example.com")

    anything = allowed_peers("0.0.0.0", hosts=["*"], origins=["*"])
    assert anything.host_allowed("whatever.example") and anything.origin_allowed("http://whatever.example")


@pytest.mark.parametrize(
    ("hosts", "origins", "message"),
    [
        (["[::1"], [], "Allowed host '[::1'"),
        (["a:b:c"], [], "Allowed host 'a:b:c'"),
        ([], ["localhost:3000"], "is not an origin"),
        ([], ["https://app.example.com/path"], "is not an origin"),
        ([], ["ftp://example.com"], "is not an origin"),
    ],
)
def test_a_malformed_allow_list_entry_is_a_clear_error(hosts: list[str], origins: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[")):
        allowed_peers("127.0.0.1", hosts, origins)


@pytest.mark.parametrize(
    "path",
    [
        "/.well-known/oauth-protected-resource",
        "/.well-known/oauth-authorization-server",
        "/.well-known/openid-configuration/mcp",
    ],
)
async def test_well_known_paths_answer_404_not_401_when_a_token_is_set(path: str, sandbox: Any, tmp_path: Path) -> None:
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, auth_token=MCP_TOKEN)
    async with running_http(settings) as running, httpx.AsyncClient() as http:
        base = running.url.removesuffix("/mcp")
        answer = await http.get(base + path)
        assert answer.status_code == 404, answer.text
        assert (await http.post(running.url, json=LIST, headers=MCP_HEADERS)).status_code == 401  # still guarded


async def test_well_known_routes_are_pluggable(sandbox: Any, tmp_path: Path) -> None:
    """When OAuth is on, its metadata is served under /.well-known/ without a token; the rest stay 404."""

    async def metadata(request: Request) -> JSONResponse:
        return JSONResponse({"resource": "http://testserver/mcp"})

    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, auth_token=MCP_TOKEN)
    async with open_app(settings) as app:
        asgi = build_http_app(
            app,
            auth_token=MCP_TOKEN,
            peers=allowed_peers("127.0.0.1", hosts=["testserver"]),
            well_known=[Route("/.well-known/oauth-protected-resource", metadata)],
        )
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=asgi), base_url="http://testserver") as http:
            served = await http.get("/.well-known/oauth-protected-resource")
            assert served.status_code == 200 and served.json() == {"resource": "http://testserver/mcp"}
            assert (await http.get("/.well-known/oauth-authorization-server")).status_code == 404


async def test_two_host_headers_are_refused(sandbox: Any, tmp_path: Path) -> None:
    """One allowed Host and one attacker's: refused, whichever a later layer would read."""
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)
    async with running_http(settings) as running:
        port = _port(running.url)
        for first, second in (
            (f"127.0.0.1:{port}", "rebind.attacker.example"),
            ("rebind.attacker.example", "localhost"),
        ):
            stream = await anyio.connect_tcp("127.0.0.1", port)
            body = b'{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}'
            request = (
                f"POST /mcp HTTP/1.1\r\nHost: {first}\r\nHost: {second}\r\nContent-Type: application/json\r\n"
                f"Accept: application/json, text/event-stream\r\nContent-Length: {len(body)}\r\n"
                "Connection: close\r\n\r\n"
            ).encode() + body
            async with stream:
                await stream.send(request)
                answer = b""
                with anyio.fail_after(10):
                    try:
                        while chunk := await stream.receive():
                            answer += chunk
                    except (anyio.EndOfStream, anyio.BrokenResourceError):
                        pass
            assert answer.split(b" ", 2)[1] in (b"400", b"421"), answer[:200]
