"""Host and Origin allow-lists for the HTTP transport, on every bind.

A web page can point its own DNS name at 127.0.0.1 (DNS rebinding) and then talk to a server that
trusts loopback. Its requests carry the attacker's name in `Host` and the attacker's page in `Origin`,
so both are checked against lists derived from the bind address, or given by the operator for
deployments behind a proxy. A request without `Origin` is not from a browser page and passes that check.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from server.config import ConfigError
from server.http.addresses import LOOPBACK_NAMES, host_of_header, is_loopback, is_wildcard, normal_host

log = logging.getLogger(__name__)

ANY = "*"
DEFAULT_PORTS = {"http": 80, "https": 443}
SHOWN_CHARS = 80  # an attacker's header is echoed shortened


@dataclass(frozen=True)
class OriginPattern:
    scheme: str
    host: str
    port: int | None  # None: any port

    def matches(self, scheme: str, host: str, port: int) -> bool:
        return self.scheme == scheme and self.host == host and self.port in (None, port)


def _origin_parts(value: str) -> tuple[str, str, int] | None:
    """scheme, normal host, port of an Origin value; None when it is not an http(s) origin (e.g. "null")."""
    try:
        parts = urlsplit(value.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS or not parts.hostname or parts.path not in ("", "/") or parts.query:
        return None
    return scheme, normal_host(parts.hostname), port if port is not None else DEFAULT_PORTS[scheme]


def parse_origin_pattern(value: str) -> OriginPattern:
    """`https://app.example.com`, `http://localhost:6274` or `http://localhost:*` (any port)."""
    text = value.strip()
    any_port = text.endswith(":*")
    parts = _origin_parts(text[:-2] if any_port else text)
    if parts is None:
        raise ConfigError(
            f"Allowed origin {value[:SHOWN_CHARS]!r} is not an origin: write scheme://host[:port], for example "
            "https://app.example.com or http://localhost:* (any port)."
        )
    scheme, host, port = parts
    return OriginPattern(scheme, host, None if any_port else port)


@dataclass(frozen=True)
class AllowedPeers:
    """Which Host and Origin values the server answers; None means any (the operator asked for '*')."""

    hosts: frozenset[str] | None
    origins: tuple[OriginPattern, ...] | None

    def host_allowed(self, header: str | None) -> bool:
        if self.hosts is None:
            return True
        host = host_of_header(header or "")
        return host is not None and host in self.hosts

    def origin_allowed(self, header: str | None) -> bool:
        if header is None or self.origins is None:
            return True
        parts = _origin_parts(header)
        return parts is not None and any(pattern.matches(*parts) for pattern in self.origins)


def default_hosts(bind: str) -> frozenset[str]:
    """The names clients can reach this bind by, without a proxy."""
    if is_loopback(bind):
        return frozenset({normal_host(bind), *LOOPBACK_NAMES})
    if is_wildcard(bind):
        return frozenset({*LOOPBACK_NAMES, normal_host(socket.gethostname()), normal_host(socket.getfqdn())})
    return frozenset({normal_host(bind)})


def allowed_peers(bind: str, hosts: Iterable[str] = (), origins: Iterable[str] = ()) -> AllowedPeers:
    """Allow-lists for a bind: the operator's when given, else derived from the bind address.

    Origins default to http and https pages, on any port, of the allowed hosts (a local web client such
    as the Inspector's UI runs on another port of localhost)."""
    hosts, origins = [h.strip() for h in hosts if h.strip()], [o.strip() for o in origins if o.strip()]
    if ANY in hosts:
        host_set: frozenset[str] | None = None
    elif hosts:
        host_set = frozenset(h for h in (host_of_header(value) for value in hosts) if h)
        if len(host_set) != len(hosts):
            bad = next(value for value in hosts if host_of_header(value) is None)
            raise ConfigError(f"Allowed host {bad[:SHOWN_CHARS]!r} is not a host name: write name or name:port.")
    else:
        host_set = default_hosts(bind)
    if ANY in origins:
        patterns: tuple[OriginPattern, ...] | None = None
    elif origins:
        patterns = tuple(parse_origin_pattern(value) for value in origins)
    else:
        patterns = tuple(
            OriginPattern(scheme, host, None) for host in sorted(host_set or ()) for scheme in ("http", "https")
        )
    return AllowedPeers(host_set, patterns)


def _shown(value: str) -> str:
    return repr(value if len(value) <= SHOWN_CHARS else value[:SHOWN_CHARS] + "...")


class HostOriginCheck:
    """Answer 421 to an unknown Host and 403 to an unknown Origin, before anything else runs."""

    def __init__(self, app: ASGIApp, peers: AllowedPeers, exempt_hosts_for: tuple[str, ...] = ()) -> None:
        self.app = app
        self.peers = peers
        self.exempt = exempt_hosts_for  # paths a load balancer probes by IP (the health check)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        hosts = [v.decode("latin-1") for k, v in scope["headers"] if k == b"host"]
        origins = [v.decode("latin-1") for k, v in scope["headers"] if k == b"origin"]
        # Two Host (or Origin) headers could be read one way here and another way further in: refuse both.
        host = hosts[0] if len(hosts) == 1 else None
        origin = origins[0] if len(origins) == 1 else ("" if origins else None)
        if scope["path"] not in self.exempt and not self.peers.host_allowed(host):
            log.warning("Refused a request for Host %s (not in the allowed hosts).", _shown(host or ""))
            await _refuse(
                send,
                421,
                "misdirected_request",
                f"This server does not answer to Host {_shown(host or '')}. When clients reach it through a proxy "
                "or a DNS name, add that name with --allowed-hosts (POSTHOG_MCP_ALLOWED_HOSTS).",
            )
            return
        if not self.peers.origin_allowed(origin):
            log.warning("Refused a request from Origin %s (not in the allowed origins).", _shown(origin or ""))
            await _refuse(
                send,
                403,
                "forbidden_origin",
                f"Requests from the web page {_shown(origin or '')} are not allowed. To let a browser-based client "
                "in, add its origin with --allowed-origins (POSTHOG_MCP_ALLOWED_ORIGINS).",
            )
            return
        await self.app(scope, receive, send)


async def _refuse(send: Send, status: int, error: str, message: str) -> None:
    body = json.dumps({"error": error, "message": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
