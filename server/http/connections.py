"""Bounds on what one HTTP client can hold open: connections, the time to send a request, idle keep-alive.

Without them a client could open hundreds of connections that never finish a request (a stalled
header or body, an idle keep-alive) or `GET /mcp` streams that never carry anything, and run the
process out of file descriptors. Each bound closes or refuses such a connection; none slows a real
client, whose requests are small JSON sent at once.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import anyio
import h11
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol


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
