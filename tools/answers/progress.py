"""Progress of a long tool call, reported without the catalog knowing about MCP.

The server installs a reporter for the duration of one call (it forwards to the client's progress
token, and does nothing when the client gave none); a tool's own function calls `report`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

Reporter = Callable[[float, float | None, str | None], Awaitable[None]]

_reporter: ContextVar[Reporter | None] = ContextVar("progress_reporter", default=None)


@contextmanager
def reporting(reporter: Reporter) -> Iterator[None]:
    token = _reporter.set(reporter)
    try:
        yield
    finally:
        _reporter.reset(token)


async def report(done: float, total: float | None = None, message: str | None = None) -> None:
    reporter = _reporter.get()
    if reporter is not None:
        await reporter(done, total, message)
