"""Serving one client over stdio: the first answer at once, the tools built behind it, and a client's
`initialize` accepted after its own `server/discover`.

`initialize` and `server/discover` are answered from the settings alone (name, version, instructions,
capabilities), so a client's first answer waits for nothing but the MCP SDK itself. Behind it the rest
is built: the catalog loaded, the key's scopes read from PostHog (and, with `--sandbox`, the sandbox
started). Every other request waits for that, so `tools/list` lists exactly what the key may use, and a
start-up that fails (a project the key may not use) answers each of them with the reason.

Clients that probe `server/discover` and send `initialize` when no answer came in their time (the Vercel
AI SDK waits 1 s; the MCP SDK's own clients fall back the same way) get the handshake on the same pipe.
The SDK commits a pipe to the era of its first request and refuses the other
(`mcp.server.runner.serve_dual_era_loop`); here an `initialize`, which only a handshake-era client sends,
starts a new stretch of the pipe that the SDK serves in the handshake era.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AsyncExitStack
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import mcp.types as types
from anyio.streams.memory import MemoryObjectSendStream
from mcp import MCPError
from mcp.server import Server, ServerRequestContext
from mcp.server.runner import serve_dual_era_loop
from mcp.shared.message import SessionMessage
from pydantic import BaseModel

from server import __version__
from server.config import ConfigError, Settings
from server.host.ui import EXTENSION_ID
from server.identity import SERVER_NAME, SERVER_TITLE, instructions_for

if TYPE_CHECKING:
    from mcp.shared._stream_protocols import ReadStream, WriteStream

    from server.app import App

log = logging.getLogger(__name__)

# What the App's server answers beyond the handshake, with the params each takes; tests/test_stdio.py
# holds this equal to what `server/app.py` registers, so capabilities are the same before and after.
DELEGATED: dict[str, type[BaseModel]] = {
    "tools/list": types.PaginatedRequestParams,
    "tools/call": types.CallToolRequestParams,
    "prompts/list": types.PaginatedRequestParams,
    "prompts/get": types.GetPromptRequestParams,
    "resources/list": types.PaginatedRequestParams,
    "resources/templates/list": types.PaginatedRequestParams,
    "resources/read": types.ReadResourceRequestParams,
}
PROTOCOL_VERSION_KEY = "io.modelcontextprotocol/protocolVersion"
# A client that has said nothing this long after the pipe opened does not hold the start any longer.
QUIET_CLIENT_SECONDS = 0.25

# Starts what the tools talk to before the App is built (the sandbox, with --sandbox), in a worker
# thread: the settings to use then, and what closes it when the pipe closes.
Upstream = Callable[[], tuple[Settings, Callable[[], None] | None]]


class StartingServer:
    """The MCP server a stdio client meets at once; requests past the handshake wait for the App."""

    def __init__(self, settings: Settings) -> None:
        self.server: Server[Any] = Server(
            SERVER_NAME, version=__version__, title=SERVER_TITLE, instructions=instructions_for(settings)
        )
        for method, params_type in DELEGATED.items():
            self.server.add_request_handler(method, params_type, self._delegate(method))
        self.server.extensions[EXTENSION_ID] = {}
        self.ready = anyio.Event()
        self.app: App | None = None
        self.failure: BaseException | None = None

    def _delegate(self, method: str) -> Callable[[ServerRequestContext[Any], Any], Awaitable[Any]]:
        async def handle(ctx: ServerRequestContext[Any], params: Any) -> Any:
            app = await self.started()
            entry = app.server.get_request_handler(method)
            assert entry is not None, f"the App serves no {method}"
            return await entry.handler(ctx, params)

        return handle

    async def started(self) -> App:
        await self.ready.wait()
        if self.app is None:
            # A configuration error's message is written for the user; anything else is in the log.
            why = (
                str(self.failure)
                if isinstance(self.failure, ConfigError)
                else f"{type(self.failure).__name__}; see its log"
            )
            raise MCPError(code=types.INTERNAL_ERROR, message=f"The server could not start: {why}")
        return self.app

    async def build(
        self, settings: Settings, upstream: Upstream | None, first_answer: anyio.Event, closing: anyio.Event
    ) -> None:
        """Load the catalog, start the upstream, learn the key's scopes, build the App; hold it until closing."""
        with anyio.move_on_after(QUIET_CLIENT_SECONDS):
            await first_answer.wait()  # the client's first answer goes out before this work competes with it
        async with AsyncExitStack() as stack:
            try:
                started: dict[str, Any] = {}

                async def load_app() -> None:
                    started["app"] = await anyio.to_thread.run_sync(importlib.import_module, "server.app")

                async def start_upstream() -> None:
                    assert upstream is not None
                    started["settings"], close = await anyio.to_thread.run_sync(upstream)
                    if close is not None:
                        stack.push_async_callback(_shielded, close)

                async with anyio.create_task_group() as group:
                    group.start_soon(load_app)
                    if upstream is not None:
                        group.start_soon(start_upstream)
                self.app = await stack.enter_async_context(
                    started["app"].open_app(started.get("settings", settings), warned=True)
                )
            except Exception as error:
                self.failure = _config_error(error) or error
                if isinstance(self.failure, ConfigError):
                    log.error("%s", self.failure)
                else:
                    log.exception("The server could not start")
            finally:
                self.ready.set()
            await closing.wait()


async def _shielded(close: Callable[[], None]) -> None:
    """Close what was started even when the start-up itself is being cancelled (the client left)."""
    with anyio.CancelScope(shield=True):
        await anyio.to_thread.run_sync(close)


def _config_error(error: BaseException) -> ConfigError | None:
    if isinstance(error, ConfigError):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            if (found := _config_error(inner)) is not None:
                return found
    return None


class _Shared:
    """One stretch's view of the pipe's write side: it may close its view, never the pipe."""

    def __init__(self, stream: WriteStream[SessionMessage], sent: anyio.Event) -> None:
        self._stream = stream
        self._sent = sent

    async def send(self, item: SessionMessage, /) -> None:
        await self._stream.send(item)
        self._sent.set()

    async def aclose(self) -> None:
        return None

    async def __aenter__(self) -> _Shared:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc_val: BaseException | None, exc_tb: TracebackType | None
    ) -> None:
        return None


def _request(item: SessionMessage | Exception) -> types.JSONRPCRequest | None:
    if isinstance(item, SessionMessage) and isinstance(item.message, types.JSONRPCRequest):
        return item.message
    return None


def _opens_modern(request: types.JSONRPCRequest) -> bool:
    """The SDK's own rule: a request carrying the 2026-07-28 envelope, other than `initialize`."""
    meta = (request.params or {}).get("_meta")
    return request.method != "initialize" and isinstance(meta, Mapping) and PROTOCOL_VERSION_KEY in meta


async def serve_pipe(
    server: Server[Any],
    read_stream: ReadStream[SessionMessage | Exception],
    write_stream: WriteStream[SessionMessage],
    *,
    sent: anyio.Event | None = None,
) -> None:
    """Serve one pipe in stretches, each by the SDK's loop: a new one when `initialize` arrives on a
    stretch serving 2026-07-28. `sent` is set once the server has written its first message."""
    sent = sent if sent is not None else anyio.Event()
    options = server.create_initialization_options()
    try:
        async with server.lifespan(server) as lifespan_state, anyio.create_task_group() as group:

            def open_stretch() -> MemoryObjectSendStream[SessionMessage | Exception]:
                send, receive = anyio.create_memory_object_stream[SessionMessage | Exception](64)
                loop = partial(
                    serve_dual_era_loop,
                    server,
                    receive,
                    _Shared(write_stream, sent),
                    lifespan_state=lifespan_state,
                    init_options=options,
                )
                group.start_soon(loop)
                return send

            stretch: MemoryObjectSendStream[SessionMessage | Exception] | None = None
            modern: bool | None = None  # the stretch's era, decided by its first request (the SDK's rule)
            async with read_stream:
                async for item in read_stream:
                    request = _request(item)
                    if stretch is not None and modern and request is not None and request.method == "initialize":
                        log.info("initialize after server/discover: the handshake era from here on")
                        await stretch.aclose()
                        stretch, modern = None, None
                    if stretch is None:
                        stretch = open_stretch()
                    if request is not None and modern is None:
                        modern = _opens_modern(request)
                    await stretch.send(item)
            if stretch is not None:
                await stretch.aclose()
    finally:
        await write_stream.aclose()


async def serve_stdio(settings: Settings, upstream: Upstream | None = None) -> None:
    """Serve one client on this process's stdin and stdout until it closes them."""
    from mcp.server.stdio import stdio_server

    for warning in settings.start_warnings():  # now, not behind the first answer: the client may leave first
        log.warning("%s", warning)
    starting = StartingServer(settings)
    first_answer, closing = anyio.Event(), anyio.Event()
    async with stdio_server() as (read, write), anyio.create_task_group() as group:
        group.start_soon(starting.build, settings, upstream, first_answer, closing)
        try:
            await serve_pipe(starting.server, read, write, sent=first_answer)
        finally:
            closing.set()
            if not starting.ready.is_set():  # the client left while the start-up was under way
                group.cancel_scope.cancel()
    if isinstance(starting.failure, ConfigError):
        raise starting.failure
