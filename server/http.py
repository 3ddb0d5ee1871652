"""Streamable HTTP transport: one stateless MCP endpoint at `/mcp`, for teams sharing a deployment.

Stateless means any replica can answer any request, so the server runs behind any load
balancer. The confirmation guard keeps working across replicas because its tokens and
the 2026-07-28 `requestState` are HMAC-sealed with POSTHOG_MCP_CONFIRM_SECRET: give every
replica the same secret. In the handshake era a stateless server learns nothing about the
client between requests (no session keeps its capabilities), so the guard answers older
clients over HTTP with its token channel; clients speaking 2026-07-28 send their
capabilities with each request and get elicitation.

Clients authenticate to this server with a bearer token (POSTHOG_MCP_AUTH_TOKEN, the named
tokens of POSTHOG_MCP_AUTH_TOKENS_FILE, or OAuth access tokens: server/edge.py). Tokens stay
here: PostHog only ever sees the server's own personal API key, as the MCP specification
forbids token passthrough.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp

from server import __version__
from server.app import App, open_app
from server.config import ConfigError, Settings
from server.edge import Edge, describe

log = logging.getLogger(__name__)

MCP_PATH = "/mcp"
HEALTH_PATH = "/healthz"
STARTUP_TIMEOUT_SECONDS = 15.0
SHUTDOWN_TIMEOUT_SECONDS = 10.0


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a hostname other than localhost may resolve anywhere


def check_bind(host: str, authenticated: bool | str | None) -> None:
    """Refuse to expose an unauthenticated MCP endpoint beyond this machine."""
    if not is_loopback(host) and not authenticated:
        raise ConfigError(
            f"Refusing to serve MCP on {host} without authentication: set POSTHOG_MCP_AUTH_TOKEN to a long random "
            "string (clients send it as 'Authorization: Bearer <token>'), name callers in POSTHOG_MCP_AUTH_TOKENS_FILE, "
            "or turn on OAuth (POSTHOG_MCP_OAUTH_ISSUER); or bind 127.0.0.1."
        )


def build_http_app(app: App, *, host: str = "127.0.0.1", edge: Edge | None = None) -> ASGIApp:
    """The ASGI application: `/mcp` (stateless streamable HTTP) and `/healthz`, behind the edge
    (callers, OAuth, limits: server/edge.py), which also adds `/metrics` and the OAuth metadata."""
    edge = edge if edge is not None else Edge.from_settings(app.settings)

    async def health(request: Request) -> Response:
        # Answers from memory only: a health probe must not spend PostHog's rate limit.
        return JSONResponse({"status": "ok", "version": __version__, "tools": len(app.definitions)})

    starlette: Starlette = app.server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=True,
        host=host,
        custom_starlette_routes=[Route(HEALTH_PATH, health, methods=["GET"]), *edge.routes(MCP_PATH)],
    )
    return edge.wrap(starlette, exempt=(HEALTH_PATH,))


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
) -> AsyncIterator[RunningHttp]:
    """Serve until the block ends (port 0 picks a free port); then shut down gracefully.

    `upstream_transport` replaces the PostHog client's transport (tests record what goes upstream).
    """
    check_bind(host, settings.client_auth)
    edge = Edge.from_settings(settings)  # a bad tokens file or OAuth setting stops us before PostHog is asked
    async with open_app(settings, transport=upstream_transport) as app:
        asgi = build_http_app(app, host=host, edge=edge)
        with bind_socket(host, port) as sock:
            bound = sock.getsockname()[1]
            config = uvicorn.Config(asgi, log_config=None, lifespan="on", access_log=False, timeout_graceful_shutdown=5)
            server = uvicorn.Server(config)
            shown = f"[{host}]" if ":" in host else host
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
