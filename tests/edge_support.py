"""Helpers for the HTTP edge tests: serving in-process, raw MCP requests, a caller-aware log capture."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import httpx
import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from server.caller import CallerField
from server.config import Settings
from server.http.transport import RunningHttp, running_http

LIST_TOOLS = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}
MCP_HEADERS = {
    "Content-Type": "application/json",
    "Accept": "application/json, text/event-stream",
    "MCP-Protocol-Version": "2025-11-25",
}


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[RunningHttp]:
    # A context manager, not an async fixture: the server's task group must start and end in the test's task.
    async with running_http(settings) as running:
        yield running


async def post_mcp(url: str, token: str | None, body: dict[str, Any] | None = None) -> httpx.Response:
    """One raw JSON-RPC POST to /mcp (the handshake-era stateless path answers tools/list directly)."""
    headers = dict(MCP_HEADERS)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    async with httpx.AsyncClient(timeout=30.0) as http:
        return await http.post(url, json=body or LIST_TOOLS, headers=headers)


@asynccontextmanager
async def mcp_client(url: str, token: str | None, mode: str = "auto") -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx2.AsyncClient(headers=headers, timeout=30.0) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode) as client:
            yield client


class Captured(logging.Handler):
    """Records with the `caller` field the CLI's log handler adds (server.caller.CallerField)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.addFilter(CallerField())
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def callers_of(self, logger: str, contains: str) -> list[str]:
        return [
            str(getattr(r, "caller", None))
            for r in self.records
            if r.name.startswith(logger) and contains in r.getMessage()
        ]


@contextmanager
def captured_logs(*loggers: str) -> Iterator[Captured]:
    handler = Captured()
    saved = []
    for name in loggers:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        for logger, level in saved:
            logger.removeHandler(handler)
            logger.setLevel(level)
