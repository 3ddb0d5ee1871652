"""A loopback TCP relay that passes requests straight through but holds back the answer to
chosen POSTs: PostHog did the work, the answer arrived after our client gave up.

The sandbox's own `latency_ms` fault gives the same ambiguity by sleeping before it handles a request
it has read; this relay gets there without an injected fault: the handler runs at once and the
finished answer is what is held back.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from urllib.parse import urlsplit


class LateAnswers:
    def __init__(self, upstream: str, delay: float) -> None:
        parts = urlsplit(upstream)
        self._host, self._port = parts.hostname or "127.0.0.1", parts.port or 80
        self.delay = delay
        self.hold_post_paths: tuple[str, ...] = ()
        self.base_url = ""
        self._tasks: set[asyncio.Task[None]] = set()

    def _holds(self, chunk: bytes) -> bool:
        if not chunk.startswith(b"POST "):
            return False
        target = chunk.split(b" ", 2)[1].decode("latin-1")
        return any(part in target for part in self.hold_post_paths)

    async def _pipe_requests(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, held: list[bool]
    ) -> None:
        while chunk := await reader.read(65536):
            if self._holds(chunk):
                held[0] = True
            writer.write(chunk)
            await writer.drain()

    async def _pipe_answers(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, held: list[bool]) -> None:
        while chunk := await reader.read(65536):
            if held[0]:
                held[0] = False
                await asyncio.sleep(self.delay)
            writer.write(chunk)
            await writer.drain()

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        upstream_reader, upstream_writer = await asyncio.open_connection(self._host, self._port)
        held = [False]
        answers = asyncio.ensure_future(self._pipe_answers(upstream_reader, client_writer, held))
        with suppress(ConnectionError):
            await self._pipe_requests(client_reader, upstream_writer, held)
        # The client is gone; let the upstream finish its answer (the work is done either way).
        with suppress(ConnectionError, asyncio.TimeoutError):
            await asyncio.wait_for(answers, self.delay + 2.0)
        for writer in (client_writer, upstream_writer):
            writer.close()


@asynccontextmanager
async def late_answers(upstream: str, delay: float) -> AsyncIterator[LateAnswers]:
    relay = LateAnswers(upstream, delay)

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        relay._tasks.add(task)
        try:
            await relay._serve(reader, writer)
        finally:
            relay._tasks.discard(task)

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    relay.base_url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield relay
    finally:
        server.close()
        for task in list(relay._tasks):
            task.cancel()
        await server.wait_closed()
