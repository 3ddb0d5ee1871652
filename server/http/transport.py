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

Clients authenticate to this server with a bearer token (POSTHOG_MCP_AUTH_TOKEN, the named
tokens of POSTHOG_MCP_AUTH_TOKENS_FILE, or OAuth access tokens: server/http/edge.py). Tokens stay
here: PostHog only ever sees the server's own personal API key, as the MCP specification
forbids token passthrough.
"""

from __future__ import annotations

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
from starlette.types import ASGIApp

from server import __version__
from server.app import App, open_app
from server.config import ConfigError, Settings
from server.http.addresses import is_loopback
from server.http.connections import (
    SESSION_IDLE_SECONDS,
    BodyDeadline,
    HttpLimits,
    NoStandaloneStream,
    SessionsPerCaller,
    uvicorn_options,
)
from server.http.edge import Edge, describe
from server.http.rebinding import AllowedPeers, HostOriginCheck, allowed_peers

__all__ = [
    "HttpLimits",
    "RunningHttp",
    "build_http_app",
    "check_bind",
    "check_replicas",
    "is_loopback",
    "running_http",
    "serve_http",
]

log = logging.getLogger(__name__)

MCP_PATH = "/mcp"
HEALTH_PATH = "/healthz"
WELL_KNOWN_PREFIX = "/.well-known/"
STARTUP_TIMEOUT_SECONDS = 15.0
SHUTDOWN_TIMEOUT_SECONDS = 10.0
DEFAULT_LIMITS = HttpLimits()


def check_bind(host: str, authenticated: bool | str | None) -> None:
    """Refuse to expose an unauthenticated MCP endpoint beyond this machine."""
    if not is_loopback(host) and not authenticated:
        raise ConfigError(
            f"Refusing to serve MCP on {host} without authentication: set POSTHOG_MCP_AUTH_TOKEN to a long random "
            "string (clients send it as 'Authorization: Bearer <token>'), name callers in POSTHOG_MCP_AUTH_TOKENS_FILE, "
            "or turn on OAuth (POSTHOG_MCP_OAUTH_ISSUER); or bind 127.0.0.1."
        )


def check_replicas(settings: Settings) -> None:
    """Refuse a confirm secret without Redis over HTTP, unless the operator says there is one replica.

    The secret is what replicas share so that any of them opens a confirmation another issued; the ledger
    that spends a confirmation once lives in Redis. A secret without Redis lets each replica keep its own
    ledger, and one confirmation sent to two of them writes twice. (stdio is one process: not asked.)"""
    if settings.confirm_secret is None or settings.redis_url or settings.single_replica:
        return
    raise ConfigError(
        "POSTHOG_MCP_CONFIRM_SECRET is set, which replicas share, but POSTHOG_MCP_REDIS_URL is not: each replica would "
        "keep its own ledger of spent confirmations, so one confirmation sent to two replicas could write twice. Give "
        "every replica the same Redis (POSTHOG_MCP_REDIS_URL), or, if this server is the only replica, say so with "
        "--single-replica (POSTHOG_MCP_SINGLE_REPLICA=true)."
    )


def _warn_single_replica(settings: Settings) -> None:
    if settings.confirm_secret is not None and not settings.redis_url:
        log.warning(
            "Serving as a single replica (--single-replica): POSTHOG_MCP_CONFIRM_SECRET without POSTHOG_MCP_REDIS_URL "
            "spends each confirmation in this process only; a second replica with the same secret could write one "
            "confirmation twice. Replicas need a shared Redis."
        )


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
    edge: Edge | None = None,
) -> ASGIApp:
    """The ASGI application: `/mcp` (streamable HTTP), `/healthz`, `/.well-known/*`, and the layers around them.

    Outermost first: Host/Origin allow-lists, the body deadline, the edge (callers, OAuth, limits:
    server/http/edge.py), with --stateful the sessions each caller may hold, no GET stream, then the routes. `well_known` routes and the edge's OAuth
    metadata are matched before the catch-all 404 under /.well-known/, and are served without a
    token like the health check; the edge also adds /metrics. Without `edge`, one is built from the
    app's settings (`auth_token`, when given, stands in for POSTHOG_MCP_AUTH_TOKEN)."""
    if edge is None:
        edge = Edge.from_settings(
            app.settings.with_(auth_token=auth_token or app.settings.auth_token), limits.max_connections
        )

    async def health(request: Request) -> Response:
        # Answers from memory only: a health probe must not spend PostHog's rate limit.
        return JSONResponse({"status": "ok", "version": __version__, "tools": len(app.definitions)})

    routes: list[BaseRoute] = [
        Route(HEALTH_PATH, health, methods=["GET"]),
        *well_known,
        *edge.routes(MCP_PATH),
        Route(WELL_KNOWN_PREFIX + "{rest:path}", no_metadata),
    ]
    endpoint: Starlette = app.server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=not stateful,
        session_idle_timeout=SESSION_IDLE_SECONDS,
        host=host,
        # The SDK's own check knows three spellings of loopback and nothing else; HostOriginCheck replaces it.
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        custom_starlette_routes=routes,  # type: ignore[arg-type]
    )
    # On 2026-07-28 tools/call the SDK checks Mcp-Param-* headers against the tool's input schema; without
    # this lookup it runs the whole tools/list handler (and serializes every definition) for each call.
    schemas = {definition.name: definition.input_schema for definition in app.definitions}
    app.server.get_tool_input_schema = schemas.get
    asgi: ASGIApp = NoStandaloneStream(endpoint, MCP_PATH, allow="POST, DELETE" if stateful else "POST")
    if stateful:
        asgi = SessionsPerCaller(asgi, MCP_PATH)  # inside the edge, which names the caller
    asgi = edge.wrap(asgi, exempt=(HEALTH_PATH,))
    asgi = BodyDeadline(asgi, limits.request_body_seconds, limits.max_body_bytes)
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
    check_bind(host, settings.client_auth)
    check_replicas(settings)
    _warn_single_replica(settings)
    peers = allowed_peers(host, settings.allowed_hosts, settings.allowed_origins)
    # A bad tokens file or OAuth setting stops us before PostHog is asked.
    edge = Edge.from_settings(settings, limits.max_connections)
    async with open_app(settings, transport=upstream_transport) as app:
        asgi = build_http_app(app, host=host, peers=peers, stateful=settings.http_stateful, limits=limits, edge=edge)
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
                log.warning("Serving MCP at %s (health: %s; %s).", running.url, running.health_url, describe(edge))
                try:
                    yield running
                finally:
                    server.should_exit = True


async def serve_http(settings: Settings, host: str, port: int) -> None:
    """Serve until interrupted (uvicorn turns SIGINT/SIGTERM into a graceful stop)."""
    async with running_http(settings, host, port) as running:
        while not running.server.should_exit:
            await anyio.sleep(0.2)
