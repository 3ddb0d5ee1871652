"""The HTTP edge: who is calling, whether they may, and how often.

Every HTTP request but the health check and the OAuth metadata passes here first:
- the bearer token names the caller: a named static token (server/http/callers.py), or an OAuth
  access token (server/http/oauth.py) whose subject is the caller; a wrong one is 401, an OAuth
  token without the required scope 403 naming the scope;
- an address that presented too many wrong bearer tokens is refused (429), whatever token it
  sends, except for the callers it was already serving (server/http/limits.py): one address may be
  many people, and one of them guessing must not lock out the others;
- the caller's request limit (server/http/limits.py): over it, 429 with Retry-After;
- the caller's share of the connections (`InFlight`): a request past it is 429 at once;
- then `server.caller.current_caller` is set for the request, so the audit trail and every
  log line of the call name the caller (never the token).
An unauthenticated server (loopback only) has one caller, "local".
"""

from __future__ import annotations

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from mcp.server.auth.middleware.bearer_auth import AuthenticatedUser
from mcp.server.auth.provider import AccessToken
from starlette.authentication import AuthCredentials
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from server import metrics
from server.caller import LOCAL_CALLER, current_caller
from server.config import Settings
from server.http.callers import NamedTokens, load_tokens
from server.http.connections import HttpLimits
from server.http.limits import InFlight, Limits
from server.http.oauth import InvalidToken, ResourceServer, VerifierUnavailable

log = logging.getLogger(__name__)

REALM = 'Bearer realm="posthog-batch-exports-mcp"'
VERIFIER_RETRY_SECONDS = 30


@dataclass(frozen=True)
class Caller:
    """Who a request comes from: the name audit and log lines use, and the OAuth subject and scopes."""

    name: str
    subject: str | None = None
    issuer: str | None = None
    scopes: frozenset[str] = frozenset()

    def as_user(self) -> AuthenticatedUser:
        """The SDK's view of the caller: its stateful sessions answer only the principal that opened them."""
        principal = AccessToken(
            token="",  # the bearer token itself never leaves the edge
            client_id=self.name,
            scopes=sorted(self.scopes),
            subject=self.subject,
            claims={"iss": self.issuer} if self.issuer else None,
        )
        return AuthenticatedUser(principal)


class Refusal(Exception):
    def __init__(self, status: int, error: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.headers = headers or {}

    async def send(self, scope: Scope, receive: Receive, send: Send) -> None:
        metrics.refused(self.error)
        response = JSONResponse({"error": self.error, "message": self.message}, self.status, self.headers)
        await response(scope, receive, send)


def _bearer(scope: Scope) -> str | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            text: str = value.decode("latin-1")
            scheme, _, token = text.partition(" ")
            # The scheme is case-insensitive (RFC 9110 section 11.1); the token is taken exactly.
            return token if scheme.lower() == "bearer" and token else ""
    return None


def _retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, math.ceil(seconds)))}


class Edge:
    """The edge's configuration, built once at start-up so a bad setting stops the server there."""

    def __init__(
        self, tokens: NamedTokens, oauth: ResourceServer | None, limits: Limits, in_flight: InFlight | None = None
    ) -> None:
        self.tokens = tokens
        self.oauth = oauth
        self.limits = limits
        self.in_flight = in_flight if in_flight is not None else InFlight(HttpLimits.max_connections)

    @classmethod
    def from_settings(cls, settings: Settings, connections: int = HttpLimits.max_connections) -> Edge:
        tokens = load_tokens(settings.auth_tokens_file, settings.auth_token)
        oauth = ResourceServer.from_settings(settings)
        limits = Limits.from_settings(settings, authenticated=bool(tokens or oauth))
        return cls(tokens, oauth, limits, InFlight(connections))

    @property
    def authenticates(self) -> bool:
        return bool(self.tokens or self.oauth)

    def routes(self, mcp_path: str) -> list[Route]:
        """Routes the edge adds beside /mcp: /metrics, and the OAuth metadata when OAuth is on."""
        extra = metrics.routes()
        if self.oauth is not None:
            extra += self.oauth.routes(mcp_path)
        return extra

    def wrap(self, app: ASGIApp, exempt: tuple[str, ...]) -> ASGIApp:
        return EdgeMiddleware(app, self, exempt)

    async def caller_of(self, scope: Scope) -> Caller:
        """The caller of this request, or a Refusal saying why there is none."""
        if not self.authenticates:
            return Caller(LOCAL_CALLER)
        address = scope["client"][0] if scope.get("client") else "unknown"
        token = _bearer(scope)
        if not token:
            # No token is no guess: it is how an OAuth client learns where to sign in, locked-out address or not.
            raise self._unauthorized(None)
        wait = await self.limits.locked_out(address)
        try:
            caller = await self._verified(token, address)
        except Refusal as refusal:
            if wait is not None and refusal.status == 401:
                raise self._locked_out(address, wait) from None
            raise
        # Someone else's guesses from this address do not lock out a caller it was already serving; any other
        # caller waits like a guess does, so the 429 tells a guesser nothing.
        if wait is not None and not await self.limits.vouched(address, caller.name):
            raise self._locked_out(address, wait)
        scope_needed = self.oauth.scope if self.oauth is not None and caller.subject is not None else None
        if scope_needed and scope_needed not in caller.scopes:
            assert self.oauth is not None
            raise Refusal(
                403,
                "insufficient_scope",
                f"The access token lacks the scope {scope_needed!r}; ask the identity provider for a token with it.",
                {"WWW-Authenticate": self.oauth.challenge("insufficient_scope", f"Required scope: {scope_needed}")},
            )
        await self.limits.served(address, caller.name)
        return caller

    async def _verified(self, token: str, address: str) -> Caller:
        """The caller a token names: a static token's, or a verified OAuth token's subject. A wrong token is a
        401 and counts toward the address's lock-out."""
        name = self.tokens.caller_for(token) if self.tokens else None
        if name is not None:
            return Caller(name)
        if self.oauth is None:
            await self.limits.failed(address)
            raise self._unauthorized("the bearer token is not one this server accepts")
        try:
            verified = await self.oauth.verify(token)
        except InvalidToken as reason:
            await self.limits.failed(address)
            raise self._unauthorized(str(reason)) from None
        except VerifierUnavailable as reason:
            log.warning("Cannot verify OAuth access tokens: %s.", reason)
            raise Refusal(
                503, "verifier_unavailable", f"Cannot verify access tokens right now: {reason}.", _retry_after(30)
            ) from None
        return Caller(verified.subject, verified.subject, self.oauth.issuer, verified.scopes)

    @staticmethod
    def _locked_out(address: str, wait: float) -> Refusal:
        log.info("Refused a request from %s: locked out after repeated wrong bearer tokens.", address)
        return Refusal(
            429,
            "locked_out",
            f"Too many wrong bearer tokens from this address; try again in {math.ceil(wait)} s.",
            _retry_after(wait),
        )

    def _unauthorized(self, reason: str | None) -> Refusal:
        if self.oauth is not None:
            how = f"Send 'Authorization: Bearer <access token>' with a token from {self.oauth.issuer} for {self.oauth.resource}"
            if self.tokens:
                how += ", or a caller's token from POSTHOG_MCP_AUTH_TOKEN / POSTHOG_MCP_AUTH_TOKENS_FILE"
            header = self.oauth.challenge("invalid_token" if reason else None, reason)
        else:
            how = "Send 'Authorization: Bearer <token>' with POSTHOG_MCP_AUTH_TOKEN or a caller's token from POSTHOG_MCP_AUTH_TOKENS_FILE"
            header = REALM
        message = f"{reason[0].upper()}{reason[1:]}. {how}." if reason else f"{how}."
        return Refusal(401, "unauthenticated", message, {"WWW-Authenticate": header})

    async def admit(self, caller: str) -> None:
        wait = await self.limits.admit(caller)
        if wait is not None:
            log.warning("Caller %s is over its request limit; answering 429.", caller)
            rules = self.limits.rules
            raise Refusal(
                429,
                "rate_limited",
                f"Caller {caller!r} made more than {rules.requests} requests in {rules.window:g} s; "
                f"retry in {math.ceil(wait)} s.",
                _retry_after(wait),
            )

    async def aclose(self) -> None:
        await self.limits.aclose()


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, edge: Edge, exempt: tuple[str, ...]) -> None:
        self.app = app
        self.edge = edge
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self.app(scope, receive, self._closing_on_shutdown(send))
            return
        if scope["type"] != "http" or scope["path"] in self.exempt or scope["path"].startswith("/.well-known/"):
            await self.app(scope, receive, send)
            return
        try:
            caller = await self.edge.caller_of(scope)
            await self.edge.admit(caller.name)
        except Refusal as refusal:
            await refusal.send(scope, receive, send)
            return
        if self.edge.authenticates:
            scope["user"] = caller.as_user()
            scope["auth"] = AuthCredentials(sorted(caller.scopes))
        with self.edge.in_flight.holding(caller.name) as full:
            if full is not None:
                log.warning("Caller %s holds its share of the connections (%s); answering 429.", caller.name, full)
                busy = Refusal(
                    429,
                    "caller_busy",
                    f"Caller {caller.name!r} has {full} requests in flight, its share of this server's "
                    f"{self.edge.in_flight.capacity} connections while others use it too; wait for one to answer.",
                    # Closed after this answer: a refused request must not keep a connection idle either.
                    {**_retry_after(1), "Connection": "close"},
                )
                await busy.send(scope, receive, send)
                return
            reset = current_caller.set(caller.name)
            try:
                await self.app(scope, receive, send)
            finally:
                current_caller.reset(reset)

    def _closing_on_shutdown(self, send: Send) -> Callable[[Message], Awaitable[None]]:
        async def forward(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                await self.edge.aclose()
            await send(message)

        return forward


def describe(edge: Edge) -> dict[str, Any]:
    """What the edge does, for the start-up log line (names only, never a token)."""
    return {
        "callers": list(edge.tokens.names),
        "oauth": edge.oauth.resource if edge.oauth else None,
        "limit": f"{edge.limits.rules.requests}/{edge.limits.rules.window:g}s" if edge.limits.rules.requests else "off",
    }
