"""Streamable HTTP transport: one MCP endpoint at `/mcp`, for teams sharing a deployment.

Stateless (the default) means any replica can answer any request, so the server runs behind any load
balancer. The confirmation guard keeps working across replicas because its tokens and
the 2026-07-28 `requestState` are HMAC-sealed with POSTHOG_MCP_CONFIRM_SECRET: give every
replica the same secret. In the handshake era a stateless server learns nothing about the
client between requests (no session keeps its capabilities), so the guard answers older
clients over HTTP with its token channel; clients speaking 2026-07-28 send their
capabilities with each request and get elicitation. The optional stateful mode (--stateful) keeps a
session per handshake-era client, so those that declare elicitation get `elicitation/create` too; a
load balancer must then send each session to the replica that opened it (sticky sessions on the
`Mcp-Session-Id` header).

Clients authenticate to this server with the operator's bearer token
(POSTHOG_MCP_AUTH_TOKEN). That token stays here: PostHog only ever sees the server's own
personal API key, as the MCP specification forbids token passthrough.
"""

from __future__ import annotations

import hmac
import logging
import socket
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import httpx
import uvicorn
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from server import __version__
from server.addresses import is_loopback
from server.app import App, open_app
from server.config import ConfigError, Settings
from server.connections import BodyDeadline, HttpLimits, NoStandaloneStream, uvicorn_options
from server.rebinding import AllowedPeers, HostOriginCheck, allowed_peers

__all__ = ["HttpLimits", "RunningHttp", "build_http_app", "check_bind", "is_loopback", "running_http", "serve_http"]

log = logging.getLogger(__name__)

MCP_PATH = "/mcp"
HEALTH_PATH = "/healthz"
WELL_KNOWN_PREFIX = "/.well-known/"
STARTUP_TIMEOUT_SECONDS = 15.0
SHUTDOWN_TIMEOUT_SECONDS = 10.0
DEFAULT_LIMITS = HttpLimits()


def check_bind(host: str, auth_token: str | None) -> None:
    """Refuse to expose an unauthenticated MCP endpoint beyond this machine."""
    if not is_loopback(host) and not auth_token:
        raise ConfigError(
            f"Refusing to serve MCP on {host} without authentication: set POSTHOG_MCP_AUTH_TOKEN to a long random "
            "string (clients send it as 'Authorization: Bearer <token>'), or bind 127.0.0.1."
        )


class BearerAuth:
    """Require `Authorization: Bearer <token>` on every HTTP request except the exempt paths and prefixes."""

    def __init__(
        self,
        app: ASGIApp,
        token: str,
        exempt: tuple[str, ...] = (HEALTH_PATH,),
        exempt_prefixes: tuple[str, ...] = (WELL_KNOWN_PREFIX,),
    ) -> None:
        self.app = app
        self._expected = f"Bearer {token}".encode()
        self.exempt = exempt
        self.exempt_prefixes = exempt_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in self.exempt or path.startswith(self.exempt_prefixes):
            await self.app(scope, receive, send)
            return
        presented = dict(scope["headers"]).get(b"authorization", b"")
        # Constant-time: the comparison must not reveal how much of a guess was right.
        if not hmac.compare_digest(presented, self._expected):
            response = JSONResponse(
                {"error": "unauthorized", "message": "Send 'Authorization: Bearer <POSTHOG_MCP_AUTH_TOKEN>'."},
                status_code=401,
                headers={"WWW-Authenticate": 'Bearer realm="posthog-batch-exports-mcp"'},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def no_metadata(request: Request) -> Response:
    """Clients probe /.well-known/ for OAuth metadata; without OAuth there is none, and 404 says so."""
    return JSONResponse({"error": "not_found", "message": "No metadata is published here."}, status_code=404)


def build_http_app(
    app: App,
    *,
    host: str = "127.0.0.1",
    auth_token: str | None = None,
    peers: AllowedPeers | None = None,
    stateful: bool = False,
    limits: HttpLimits = DEFAULT_LIMITS,
    well_known: Sequence[BaseRoute] = (),
) -> ASGIApp:
    """The ASGI application: `/mcp` (streamable HTTP), `/healthz`, `/.well-known/*`, and the layers around them.

    Outermost first: Host/Origin allow-lists, the body deadline, bearer auth, no GET stream, then the
    routes. `well_known` routes (e.g. OAuth protected-resource metadata) are matched before the
    catch-all 404 under /.well-known/, and are served without a token like the health check."""

    async def health(request: Request) -> Response:
        # Answers from memory only: a health probe must not spend PostHog's rate limit.
        return JSONResponse({"status": "ok", "version": __version__, "tools": len(app.definitions)})

    routes: list[BaseRoute] = [
        Route(HEALTH_PATH, health, methods=["GET"]),
        *well_known,
        Route(WELL_KNOWN_PREFIX + "{rest:path}", no_metadata),
    ]
    endpoint: Starlette = app.server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=not stateful,
        host=host,
        # The SDK's own check knows three spellings of loopback and nothing else; HostOriginCheck replaces it.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        custom_starlette_routes=routes,  # type: ignore[arg-type]
    )
    asgi: ASGIApp = NoStandaloneStream(endpoint, MCP_PATH, allow="POST, DELETE" if stateful else "POST")
    if auth_token:
        asgi = BearerAuth(asgi, auth_token)
    asgi = BodyDeadline(asgi, limits.request_body_seconds)
    return HostOriginCheck(asgi, peers or allowed_peers(host), exempt_hosts_for=(HEALTH_PATH,))


def bind_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host.strip("[]"), port))
    except OSError as error:
        sock.close()
        raise ConfigError(f"Cannot listen on {host}:{port} ({error.strerror}). Pick another --port.") from None
    sock.set_inheritable(True)
    return sock


@dataclass(frozen=True)
class RunningHttp:
    url: str
    """The MCP endpoint, e.g. http://127.0.0.1:8000/mcp."""
    health_url: str
    server: uvicorn.Server

    def stop(self) -> None:
        self.server.should_exit = True


@asynccontextmanager
async def running_http(
    settings: Settings,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    upstream_transport: httpx.AsyncBaseTransport | None = None,
    limits: HttpLimits = DEFAULT_LIMITS,
) -> AsyncIterator[RunningHttp]:
    """Serve until the block ends (port 0 picks a free port); then shut down gracefully.

    `upstream_transport` replaces the PostHog client's transport (tests record what goes upstream).
    """
    check_bind(host, settings.auth_token)
    peers = allowed_peers(host, settings.allowed_hosts, settings.allowed_origins)
    async with open_app(settings, transport=upstream_transport) as app:
        asgi = build_http_app(
            app,
            host=host,
            auth_token=settings.auth_token,
            peers=peers,
            stateful=settings.http_stateful,
            limits=limits,
        )
        with bind_socket(host, port) as sock:
            bound = sock.getsockname()[1]
            config = uvicorn.Config(
                asgi,
                log_config=None,
                lifespan="on",
                access_log=False,
                timeout_graceful_shutdown=5,
                **uvicorn_options(limits),
            )
            server = uvicorn.Server(config)
            bare = host.strip("[]")
            shown = f"[{bare}]" if ":" in bare else bare
            running = RunningHttp(f"http://{shown}:{bound}{MCP_PATH}", f"http://{shown}:{bound}{HEALTH_PATH}", server)
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(server.serve, [sock])
                with anyio.fail_after(STARTUP_TIMEOUT_SECONDS):
                    while not server.started:
                        if server.should_exit:
                            raise ConfigError(f"The HTTP server on {host}:{bound} stopped while starting; see the log.")
                        await anyio.sleep(0.01)
                log.warning("Serving MCP at %s (health: %s).", running.url, running.health_url)
                try:
                    yield running
                finally:
                    server.should_exit = True


async def serve_http(settings: Settings, host: str, port: int) -> None:
    """Serve until interrupted (uvicorn turns SIGINT/SIGTERM into a graceful stop)."""
    async with running_http(settings, host, port) as running:
        while not running.server.should_exit:
            await anyio.sleep(0.2)
