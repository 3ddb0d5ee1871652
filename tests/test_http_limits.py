"""Connections a client holds open: GET streams, stalled heads and bodies, idle keep-alive, too many at once.

Each test opens a small number of raw loopback sockets against a server with small limits, and checks
that the server closes or refuses them within a bound while real clients keep being served.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from mcp import Client

from posthog_sandbox import DEFAULT_API_KEY
from server.http.transport import HttpLimits, RunningHttp, running_http
from tests.support import listed_by_test_servers, settings_for

LIMITS = HttpLimits(
    max_connections=8,
    request_head_seconds=0.5,
    request_body_seconds=0.5,
    keep_alive_seconds=1,
    max_body_bytes=64 * 1024,
)
CLOSED_WITHIN = 5.0  # seconds: generous for a busy machine, far below "never"


@pytest.fixture
def generation() -> int:
    return 3


@asynccontextmanager
async def serving(sandbox: Any, tmp_path: Path) -> AsyncIterator[tuple[RunningHttp, int]]:
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)
    async with running_http(settings, limits=LIMITS) as running:
        yield running, int(running.url.rsplit(":", 1)[1].split("/")[0])


async def closed_by_server(reader: asyncio.StreamReader, within: float = CLOSED_WITHIN) -> bytes:
    """Everything the server sent until it closed the connection; fails if it is still open after `within`."""
    received = b""
    with anyio.fail_after(within):
        while chunk := await reader.read(65536):
            received += chunk
    return received


def connections(running: RunningHttp) -> int:
    return len(running.server.server_state.connections)


async def test_get_on_the_mcp_endpoint_is_405_not_an_endless_stream(sandbox: Any, tmp_path: Path) -> None:
    async with serving(sandbox, tmp_path) as (running, _):
        async with httpx.AsyncClient(timeout=5.0) as http:
            answer = await http.get(running.url, headers={"Accept": "text/event-stream"})
        assert answer.status_code == 405
        assert answer.headers["allow"] == "POST"


async def test_silent_and_trickling_connections_are_closed(sandbox: Any, tmp_path: Path) -> None:
    async with serving(sandbox, tmp_path) as (running, port):
        silent = [await asyncio.open_connection("127.0.0.1", port) for _ in range(4)]
        trickle_reader, trickle_writer = await asyncio.open_connection("127.0.0.1", port)
        started = time.monotonic()

        async def trickle() -> None:  # one header byte every 0.1 s: always "sending", never done
            for byte in b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"a" * 200:
                if trickle_writer.is_closing():
                    return
                trickle_writer.write(bytes([byte]))
                try:
                    await trickle_writer.drain()
                except ConnectionError:
                    return
                await anyio.sleep(0.1)

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(trickle)
            await closed_by_server(trickle_reader)
            tasks.cancel_scope.cancel()
        for reader, _ in silent:
            assert await closed_by_server(reader) == b""
        assert time.monotonic() - started < CLOSED_WITHIN
        for _, writer in [*silent, (trickle_reader, trickle_writer)]:
            writer.close()


async def test_a_stalled_body_gets_408_and_the_connection_closes(sandbox: Any, tmp_path: Path) -> None:
    async with serving(sandbox, tmp_path) as (running, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(
            b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Accept: application/json, text/event-stream\r\nContent-Length: 200\r\n\r\n" + b'{"jsonrpc": "2.0",'
        )
        await writer.drain()
        answer = await closed_by_server(reader)
        writer.close()
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


async def test_an_idle_keep_alive_connection_is_closed(sandbox: Any, tmp_path: Path) -> None:
    async with serving(sandbox, tmp_path) as (running, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        await writer.drain()
        answer = await closed_by_server(reader)  # answered, then closed after keep_alive_seconds
        writer.close()
        assert answer.startswith(b"HTTP/1.1 200") and b'"status":"ok"' in answer


async def test_many_held_connections_stay_bounded_and_real_clients_get_through(sandbox: Any, tmp_path: Path) -> None:
    async with serving(sandbox, tmp_path) as (running, port):
        held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(30)]
        await anyio.sleep(0.1)
        assert connections(running) <= LIMITS.max_connections
        # The connections over the cap are closed at once, the rest at the head deadline.
        for reader, _ in held:
            await closed_by_server(reader)
        for _, writer in held:
            writer.close()
        with anyio.fail_after(CLOSED_WITHIN):
            while connections(running) > 0:
                await anyio.sleep(0.05)
        async with Client(running.url) as client:
            assert len((await client.list_tools()).tools) == listed_by_test_servers()


@pytest.mark.parametrize("chunked", [False, True])
async def test_an_oversized_body_gets_413_before_it_is_read(sandbox: Any, tmp_path: Path, chunked: bool) -> None:
    async with serving(sandbox, tmp_path) as (running, port):
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        head = b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        if chunked:  # no length announced: the server counts while it reads
            chunk = b"x" * 16384
            writer.write(head + b"Transfer-Encoding: chunked\r\n\r\n")
            for _ in range(8):
                writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        else:
            writer.write(head + b"Content-Length: 100000000\r\n\r\n" + b"x" * 1024)
        await writer.drain()
        try:
            answer = await closed_by_server(reader)
        except ConnectionResetError:
            # Closing with the rest of the body unread makes the kernel reset the connection, which can
            # discard the 413 before it is read; closed at once is what matters.
            answer = b"HTTP/1.1 413 (reset)"
        writer.close()
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
