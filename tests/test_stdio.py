"""The stdio server as clients meet it: the first answer before PostHog has said what the key may do,
`tools/list` only after, and `initialize` accepted after an unanswered `server/discover`.

Real subprocesses over real pipes; PostHog is the sandbox, or a loopback stub that holds its answer
until the test lets it go."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from posthog_sandbox import SandboxKey
from server.stdio import StartingServer
from tests.support import BATCH_EXPORT_SCOPES, listed_by_a_default_server, running_app, settings_for
from tools.catalog import CATALOG

ROOT = Path(__file__).resolve().parent.parent
KEY = "phx_stdio_canary_key_0123456789abcdef"
TIMEOUT = 60.0
CLIENT_INFO = {"name": "stdio-test", "version": "0"}
ENVELOPE = {
    "io.modelcontextprotocol/protocolVersion": "2026-07-28",
    "io.modelcontextprotocol/clientInfo": CLIENT_INFO,
    "io.modelcontextprotocol/clientCapabilities": {},
}
INITIALIZE = {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": CLIENT_INFO}


def rpc(id_: int | None, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if id_ is not None:
        message["id"] = id_
    if params is not None:
        message["params"] = params
    return message


class StdioServer:
    """`python -m server ...` with its stdout read line by line and its stderr kept."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "server", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        assert self.process.stdout is not None and self.process.stderr is not None
        out, err = self.process.stdout, self.process.stderr
        threading.Thread(target=lambda: [self.lines.put(line) for line in out], daemon=True).start()
        threading.Thread(target=lambda: self.stderr.extend(err), daemon=True).start()
        self.answers: dict[int, dict[str, Any]] = {}

    def send(self, *messages: dict[str, Any]) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write("".join(json.dumps(m) + "\n" for m in messages))
        self.process.stdin.flush()

    def answer(self, id_: int, timeout: float = TIMEOUT) -> dict[str, Any]:
        while id_ not in self.answers:
            try:
                message = json.loads(self.lines.get(timeout=timeout))
            except queue.Empty:
                raise AssertionError(f"no answer to request {id_} within {timeout} s; stderr: {self.stderr}") from None
            if "id" in message:
                self.answers[message["id"]] = message
        return self.answers[id_]

    def no_answer(self, id_: int, within: float) -> bool:
        try:
            self.answer(id_, timeout=within)
        except AssertionError:
            return True
        return False

    def close(self) -> int:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            return self.process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


@contextmanager
def stdio_server(args: list[str], env: dict[str, str]) -> Iterator[StdioServer]:
    server = StdioServer(args, env)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.process.kill()
            server.process.wait(TIMEOUT)


def clean_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTHOG_")}
    env.update(POSTHOG_MCP_AUDIT_LOG=str(tmp_path / "audit.jsonl"), **extra)
    return env


class HeldPostHog:
    """A loopback PostHog that answers `GET /api/personal_api_keys/@current/` only once released."""

    def __init__(self, scopes: list[str]) -> None:
        self.release = threading.Event()
        self.asked = threading.Event()
        body = json.dumps({"scopes": scopes, "scoped_teams": []}).encode()
        held = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the http.server name)
                if self.path.rstrip("/") != "/api/personal_api_keys/@current":
                    self.send_error(404)
                    return
                held.asked.set()
                held.release.wait(TIMEOUT)
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                return None

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.http.server_address[1]}"
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.http.shutdown()
        self.http.server_close()


@pytest.fixture
def held_posthog() -> Iterator[HeldPostHog]:
    posthog = HeldPostHog(["batch_export:read"])
    yield posthog
    posthog.close()


async def test_the_front_declares_what_the_app_serves(make_sandbox: Callable[..., Any], tmp_path: Path) -> None:
    """The first answer's capabilities, name and instructions are those of the server built behind it."""
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox = make_sandbox()
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, project_id=1)
    front = StartingServer(settings).server
    async with running_app(settings) as app:
        built = app.server
        assert set(front._request_handlers) == set(built._request_handlers)
        assert front.get_capabilities() == built.get_capabilities()
        assert front.create_initialization_options() == built.create_initialization_options()


@pytest.mark.parametrize("opening", ["initialize", "server/discover"])
def test_the_first_answer_does_not_wait_for_posthog(held_posthog: HeldPostHog, opening: str, tmp_path: Path) -> None:
    env = clean_env(tmp_path, POSTHOG_PERSONAL_API_KEY=KEY, POSTHOG_HOST=held_posthog.base_url)
    modern = opening == "server/discover"
    listing = rpc(2, "tools/list", {"_meta": ENVELOPE} if modern else None)
    with stdio_server([], env) as server:
        server.send(rpc(1, opening, {"_meta": ENVELOPE} if modern else INITIALIZE))
        first = server.answer(1)
        assert "result" in first, first
        assert not held_posthog.release.is_set()  # answered while PostHog still holds the key's scopes
        if not modern:
            server.send(rpc(None, "notifications/initialized"))
        server.send(listing)
        assert held_posthog.asked.wait(TIMEOUT), "the server never asked PostHog about the key"
        assert server.no_answer(2, within=1.0), "tools/list must wait for the key's scopes"
        held_posthog.release.set()
        tools = {tool["name"] for tool in server.answer(2)["result"]["tools"]}
        assert server.close() == 0
    # The key may only read, so only read tools are listed: tools/list came after the scopes.
    assert tools and all(next(s for s in CATALOG if s.name == name).read_only for name in tools)
    assert "batch-export-health" in tools and "batch-export-pause" not in tools
    assert KEY not in "".join(server.stderr)


@pytest.mark.parametrize("discover_answered_first", [False, True], ids=["unanswered", "answered"])
def test_initialize_after_server_discover_gets_the_handshake(discover_answered_first: bool, tmp_path: Path) -> None:
    """What the Vercel AI SDK does when `server/discover` gets no answer in 1 s: `initialize` on the same pipe."""
    with stdio_server(["serve", "--sandbox"], clean_env(tmp_path)) as server:
        server.send(rpc(0, "server/discover", {"_meta": ENVELOPE}))
        if discover_answered_first:
            assert server.answer(0)["result"]["supportedVersions"] == ["2026-07-28"]
        server.send(rpc(1, "initialize", INITIALIZE))
        initialized = server.answer(1)
        assert initialized["result"]["protocolVersion"] == "2025-11-25", initialized
        assert initialized["result"]["serverInfo"]["name"] == "posthog-batch-exports-mcp"
        server.send(rpc(None, "notifications/initialized"), rpc(2, "tools/list"))
        assert len(server.answer(2)["result"]["tools"]) == listed_by_a_default_server(BATCH_EXPORT_SCOPES)
        server.send(rpc(3, "tools/call", {"name": "batch-export-list", "arguments": {"project_id": 1}}))
        assert server.answer(3)["result"]["structuredContent"]["count"] == 4
        # The pipe now speaks the handshake era: a 2026-07-28 request is refused, as on any such pipe.
        server.send(rpc(4, "tools/list", {"_meta": ENVELOPE}))
        assert "error" in server.answer(4)
        assert server.close() == 0
    assert "Traceback" not in "".join(server.stderr)


def test_a_start_that_fails_answers_each_request_with_the_fix(make_sandbox: Callable[..., Any], tmp_path: Path) -> None:
    sandbox = make_sandbox(keys=[SandboxKey(KEY, ["*"], scoped_teams=[1])])
    env = clean_env(tmp_path, POSTHOG_PERSONAL_API_KEY=KEY, POSTHOG_HOST=sandbox.base_url, POSTHOG_PROJECT_ID="2")
    with stdio_server([], env) as server:
        server.send(rpc(1, "initialize", INITIALIZE))
        assert "result" in server.answer(1)
        server.send(rpc(None, "notifications/initialized"), rpc(2, "tools/list"))
        error = server.answer(2)["error"]
        assert "limited to project(s) 1" in error["message"] and "POSTHOG_PROJECT_ID is 2" in error["message"]
        code = server.close()
    stderr = "".join(server.stderr)
    assert code == 2 and "limited to project(s) 1" in stderr
    assert "Traceback" not in stderr and KEY not in stderr
