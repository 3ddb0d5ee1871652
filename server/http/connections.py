"""Bounds on what one HTTP client can hold open: connections, the time to send a request, idle keep-alive,
and (with --stateful) the sessions one caller may hold.

Without them a client could open hundreds of connections that never finish a request (a stalled
header or body, an idle keep-alive) or `GET /mcp` streams that never carry anything, and run the
process out of file descriptors. Each bound closes or refuses such a connection; none slows a real
client, whose requests are small JSON sent at once.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from server import metrics
from server.caller import caller_name


@dataclass(frozen=True)
class HttpLimits:
    max_connections: int = 256
    """Open connections at once; one more is closed as soon as it is accepted. With HTTP/1.1 this also
    bounds the requests in flight (one per connection)."""
    request_head_seconds: float = 10.0
    """From connecting (or the previous answer) to a complete request line and headers."""
    request_body_seconds: float = 10.0
    """From the headers to the end of the body."""
    keep_alive_seconds: int = 5
    """An idle connection between requests is closed after this long."""
    max_header_bytes: int = 64 * 1024
    """Request line and headers together."""
    max_body_bytes: int = 4 * 1024 * 1024
    """A request body; larger gets 413 before it is read further (the mcp SDK's own limit is the same)."""


def bounded_h11(limits: HttpLimits) -> type[H11Protocol]:
    """uvicorn's h11 protocol with a connection cap and a deadline for each request's head.

    uvicorn's own keep-alive timer starts only after a first answer and stops at the first byte of the
    next request, so a client that connects and sends nothing, or one header byte at a time, is never
    timed out; this deadline keeps running until the whole head has arrived."""

    class BoundedH11Protocol(H11Protocol):
        _head_deadline: asyncio.TimerHandle | None = None

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            if len(self.connections) > limits.max_connections:
                transport.close()  # connection_lost then forgets it
                return
            self._arm_head_deadline()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.conn.their_state is not h11.IDLE:
                self._disarm_head_deadline()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self._arm_head_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm_head_deadline()
            super().connection_lost(exc)

        def _arm_head_deadline(self) -> None:
            self._disarm_head_deadline()
            self._head_deadline = self.loop.call_later(limits.request_head_seconds, self._head_too_slow)

        def _disarm_head_deadline(self) -> None:
            if self._head_deadline is not None:
                self._head_deadline.cancel()
                self._head_deadline = None

        def _head_too_slow(self) -> None:
            self._head_deadline = None
            if not self.transport.is_closing() and self.conn.their_state is h11.IDLE:
                self.transport.close()

    return BoundedH11Protocol


def uvicorn_options(limits: HttpLimits) -> dict[str, Any]:
    """The uvicorn.Config arguments that apply these limits."""
    return {
        "http": bounded_h11(limits),
        "timeout_keep_alive": limits.keep_alive_seconds,
        "h11_max_incomplete_event_size": limits.max_header_bytes,
    }


class BodyDeadline:
    """Read the whole request body within `seconds` and `max_bytes`, or answer 408 / 413 and close; then
    hand it on at once."""

    def __init__(self, app: ASGIApp, seconds: float, max_bytes: int = HttpLimits.max_body_bytes) -> None:
        self.app = app
        self.seconds = seconds
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"0")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await _too_large(send, self.max_bytes)
            return
        received: deque[Message] = deque()
        size = 0
        with anyio.move_on_after(self.seconds):
            while True:
                message = await receive()
                received.append(message)
                size += len(message.get("body", b""))
                if size > self.max_bytes:
                    await _too_large(send, self.max_bytes)
                    return
                if message["type"] != "http.request" or not message.get("more_body", False):
                    break
        if not received or (received[-1]["type"] == "http.request" and received[-1].get("more_body", False)):
            await _answer(
                send,
                408,
                {"error": "request_timeout", "message": f"The request body did not arrive within {self.seconds:g} s."},
                close=True,
            )
            return

        async def replay() -> Message:
            return received.popleft() if received else await receive()

        await self.app(scope, replay, send)


MAX_SESSIONS_PER_CALLER = 32
"""Open stateful sessions one caller may hold: a person's clients and a CI's parallel jobs fit; one caller
opening thousands (each some 40 KB) cannot use up the SDK's 10,000 and leave everyone else a 503."""
SESSION_IDLE_SECONDS = 30 * 60.0
"""A stateful session with no request for this long ends (the SDK's idle timeout, passed to it by server/http/transport.py)."""


class SessionsPerCaller:
    """With `--stateful`: at most `limit` open sessions per caller; one more is answered 429 naming the limit
    and how to free one, while the caller's open sessions and every other caller go on.

    Runs inside the edge, which names the caller. A session is counted from the answer that opens it
    (its `Mcp-Session-Id`) until its caller ends it (DELETE), the SDK says it is gone (404), or it has
    been idle as long as the SDK lets it live; requests still opening one count too, so a burst of
    them cannot slip past the limit together."""

    def __init__(
        self,
        app: ASGIApp,
        path: str,
        limit: int = MAX_SESSIONS_PER_CALLER,
        idle_seconds: float = SESSION_IDLE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.app = app
        self.path = path
        self.limit = limit
        self.idle_seconds = idle_seconds
        self.clock = clock
        self._sessions: dict[str, dict[str, float]] = {}  # caller -> {session id: last seen}
        self._opening: dict[str, int] = {}

    def held(self, caller: str) -> int:
        """The caller's open sessions and those it is opening (its idle ones forgotten first)."""
        mine = self._sessions.get(caller, {})
        now = self.clock()
        for session in [s for s, seen in mine.items() if now - seen > self.idle_seconds]:
            del mine[session]
        if not mine:
            self._sessions.pop(caller, None)
        return len(mine) + self._opening.get(caller, 0)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].rstrip("/") != self.path:
            await self.app(scope, receive, send)
            return
        caller = caller_name()
        session = dict(scope["headers"]).get(b"mcp-session-id")
        if session is None:
            if scope["method"] == "POST":
                await self._open(caller, scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        await self._use(caller, session.decode("latin-1"), scope, receive, send)

    async def _open(self, caller: str, scope: Scope, receive: Receive, send: Send) -> None:
        if self.held(caller) >= self.limit:
            metrics.refused("too_many_sessions")
            message = (
                f"Caller {caller!r} already has {self.limit} open sessions, the most one caller may hold. End one it "
                f"no longer uses (DELETE {self.path} with its Mcp-Session-Id header), or reuse one; a session idle "
                f"for {self.idle_seconds / 60:g} minutes ends by itself."
            )
            await _answer(send, 429, {"error": "too_many_sessions", "message": message})
            return
        self._opening[caller] = self._opening.get(caller, 0) + 1
        opened: list[str] = []

        async def noting(message: Message) -> None:
            if message["type"] == "http.response.start" and message["status"] < 400:
                found = dict(message.get("headers", [])).get(b"mcp-session-id")
                if found:
                    opened.append(found.decode("latin-1"))
            await send(message)

        try:
            await self.app(scope, receive, noting)
        finally:
            self._opening[caller] -= 1
            if not self._opening[caller]:
                del self._opening[caller]
            for session in opened:
                self._sessions.setdefault(caller, {})[session] = self.clock()

    async def _use(self, caller: str, session: str, scope: Scope, receive: Receive, send: Send) -> None:
        mine = self._sessions.get(caller, {})
        if session not in mine:  # another caller's (the SDK answers 404), or one opened before a restart
            await self.app(scope, receive, send)
            return
        mine[session] = self.clock()
        status: list[int] = []

        async def noting(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, noting)
        finally:
            ended = status and (status[0] == 404 or (scope["method"] == "DELETE" and status[0] < 400))
            if ended:
                mine.pop(session, None)
            elif session in mine:
                mine[session] = self.clock()


class NoStandaloneStream:
    """`GET` on the MCP endpoint answers 405: this server sends nothing outside the answer to a POST.

    The MCP specification allows 405 for a server that offers no GET stream; an open GET would
    otherwise hold a connection that never carries anything."""

    def __init__(self, app: ASGIApp, path: str, allow: str) -> None:
        self.app = app
        self.path = path
        self.allow = allow

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET" and scope["path"].rstrip("/") == self.path:
            await _answer(
                send,
                405,
                {
                    "error": "method_not_allowed",
                    "message": f"Use POST on {self.path}; this server offers no GET stream.",
                },
                extra=[(b"allow", self.allow.encode())],
            )
            return
        await self.app(scope, receive, send)


async def _too_large(send: Send, max_bytes: int) -> None:
    message = f"The request body is larger than {max_bytes} bytes."
    await _answer(send, 413, {"error": "request_too_large", "message": message}, close=True)


async def _answer(
    send: Send, status: int, payload: dict[str, str], *, close: bool = False, extra: Sequence[tuple[bytes, bytes]] = ()
) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
