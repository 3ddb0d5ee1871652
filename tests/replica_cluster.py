"""Real processes on loopback: one sandbox (`python -m posthog_sandbox`), replicas of
`python -m server serve --transport http` sharing a confirm secret and one Redis, and MCP clients."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import httpx
import httpx2
import pytest
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from posthog_sandbox import DEFAULT_API_KEY
from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parent.parent
CONFIRM_SECRET = "replicas-share-this-confirm-secret-for-tests"
# The cluster's sandbox runs without its throttle unless a test asks for it: a PostHog with rate limiting off,
# which the replicas' request budget is told (a test of the budget sets the variable empty: PostHog's limits).
UNTHROTTLED_LIMITS = "crud=1000000/minute;query=1000000/minute,1000"
START_SECONDS = 120.0


def _stop(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


@contextmanager
def sandbox_process(*extra: str, throttle: bool = False) -> Iterator[str]:
    """A sandbox in its own process with a frozen clock, and no throttle unless asked (then PostHog's 480 a
    minute and 4800 an hour per key); yields its base URL."""
    command = [sys.executable, "-m", "posthog_sandbox", "--port", "0", "--speed", "0", *extra]
    if not throttle:
        command.append("--no-throttle")
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert process.stdout is not None
        first = process.stdout.readline()  # "PostHog batch-exports sandbox (generation 3) at http://..."
        if " at http" not in first:
            pytest.fail(f"the sandbox did not start: {first!r}")
        yield first.rsplit(" at ", 1)[1].strip()
    finally:
        _stop(process)
        if process.stdout:
            process.stdout.close()


class Replica:
    def __init__(
        self, index: int, sandbox_url: str, redis_url: str | None, folder: Path, env: dict[str, str] | None = None
    ) -> None:
        self.index = index
        self.port = free_port()
        self.audit = folder / f"audit-{index}.jsonl"
        self.env = {
            **os.environ,
            "POSTHOG_PERSONAL_API_KEY": DEFAULT_API_KEY,
            "POSTHOG_HOST": sandbox_url,
            "POSTHOG_MCP_CONFIRM_SECRET": CONFIRM_SECRET,
            "POSTHOG_MCP_AUDIT_LOG": str(self.audit),
            "POSTHOG_MCP_POSTHOG_LIMITS": UNTHROTTLED_LIMITS,
        }
        if redis_url:
            self.env["POSTHOG_MCP_REDIS_URL"] = redis_url
        self.env.update(env or {})
        self.log = folder / f"replica-{index}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/mcp"

    def start(self) -> None:
        command = [sys.executable, "-m", "server", "serve", "--transport", "http", "--port", str(self.port)]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=subprocess.DEVNULL, stderr=log)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                pytest.fail(f"replica {self.index} exited: {self.log.read_text()[-1500:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        pytest.fail(f"replica {self.index} did not answer /healthz within {START_SECONDS} s")

    def stop(self) -> None:
        if self.process is not None:
            _stop(self.process)
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()
        self.wait_ready()


@contextmanager
def replicas(
    count: int, sandbox_url: str, redis_url: str | None, folder: Path, env: dict[str, str] | None = None
) -> Iterator[list[Replica]]:
    started = [Replica(i, sandbox_url, redis_url, folder, env) for i in range(count)]
    try:
        for replica in started:
            replica.start()
        for replica in started:
            replica.wait_ready()
        yield started
    finally:
        for replica in started:
            replica.stop()


@asynccontextmanager
async def mcp_client(url: str, mode: str = "auto", token: str | None = None, **kwargs: Any) -> AsyncIterator[Client]:
    headers = {"Authorization": f"Bearer {token}"} if token else None
    async with httpx2.AsyncClient(timeout=60.0, headers=headers) as http:
        async with Client(streamable_http_client(url, http_client=http), mode=mode, **kwargs) as client:
            yield client
