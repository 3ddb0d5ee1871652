"""Per-caller request limits and the wrong-token lock-out: in process, and on a real redis-server shared
by two servers."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from posthog_sandbox import DEFAULT_API_KEY
from server.config import ConfigError, Settings
from server.http.limits import DEFAULT_REQUESTS_PER_WINDOW, InProcessCounter, LimitRules, Limits, RedisCounter
from tests.edge_support import post_mcp, serving
from tests.support import settings_for

CI_TOKEN = "ci-token-" + "c" * 40
ALICE_TOKEN = "alice-token-" + "a" * 40
REDIS_SERVER = "/usr/bin/redis-server"
SECRET = b"replicas-share-this-confirm-secret"


@pytest.fixture
def generation() -> int:
    return 3


@dataclass
class RedisProcess:
    url: str
    process: subprocess.Popen[bytes]
    port: int
    folder: Path

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)

    def start(self) -> None:
        self.process = _start_redis(self.port, self.folder)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_redis(port: int, folder: Path) -> subprocess.Popen[bytes]:
    command = [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    process = subprocess.Popen([*command, "--dir", str(folder)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError(f"redis-server did not answer on port {port} within 10 s")


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisProcess]:
    # CI must have it (a missing tool fails, it does not skip).
    assert shutil.which(REDIS_SERVER), f"{REDIS_SERVER} is missing: apt-get install redis-server"
    port = _free_port()
    folder = tmp_path / "redis"
    folder.mkdir()
    server = RedisProcess(f"redis://127.0.0.1:{port}/0", _start_redis(port, folder), port, folder)
    try:
        yield server
    finally:
        if server.process.poll() is None:
            server.stop()


def named(sandbox: Any, tmp_path: Path, **overrides: Any) -> Settings:
    path = tmp_path / "tokens"
    path.write_text(f"ci: {CI_TOKEN}\nalice: {ALICE_TOKEN}\n")
    path.chmod(0o600)
    return settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, auth_tokens_file=path, **overrides)


class Clock:
    def __init__(self, now: float = 1_200_000.0) -> None:  # a multiple of 60 and of 300
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- the counters -----------------------------------------------------------------------


async def test_in_process_windows_count_and_roll_over() -> None:
    clock = Clock()
    counter = InProcessCounter(clock)
    assert await counter.hit("a", 60) == (1, 60.0)
    assert (await counter.hit("a", 60))[0] == 2
    assert (await counter.hit("b", 60))[0] == 1
    assert (await counter.peek("a", 60))[0] == 2
    clock.now += 59.5
    assert await counter.peek("a", 60) == (2, 0.5)
    clock.now += 0.5
    assert (await counter.peek("a", 60))[0] == 0
    assert (await counter.hit("a", 60))[0] == 1


async def test_limits_admit_up_to_the_limit_then_say_how_long_to_wait() -> None:
    clock = Clock()
    limits = Limits(LimitRules(requests=3, window=60, failures=2, failure_window=300), InProcessCounter(clock))
    assert [await limits.admit("ci") for _ in range(3)] == [None, None, None]
    clock.now += 10
    assert await limits.admit("ci") == 50.0
    assert await limits.admit("alice") is None
    assert await limits.locked_out("10.0.0.1") is None
    await limits.failed("10.0.0.1")
    assert await limits.locked_out("10.0.0.1") is None
    await limits.failed("10.0.0.1")
    assert await limits.locked_out("10.0.0.1") == 290.0
    assert await limits.locked_out("10.0.0.2") is None


async def test_redis_counters_are_shared_and_fall_back_when_redis_is_gone(redis_server: RedisProcess) -> None:
    clock = Clock()  # one window for the whole test, wherever the real clock is
    first, second = RedisCounter(redis_server.url, clock), RedisCounter(redis_server.url, clock)
    first.pause = second.pause = 0.0  # try Redis again at once, not 5 s after a failure
    try:
        assert (await first.hit("k", 60))[0] == 1
        assert (await second.hit("k", 60))[0] == 2
        assert (await first.peek("k", 60))[0] == 2
        redis_server.stop()
        # Unreachable: counted in this process instead of letting everything through.
        assert (await first.hit("k", 60))[0] == 1
        assert (await first.hit("k", 60))[0] == 2
        paused = RedisCounter(redis_server.url, clock)
        try:
            started = time.monotonic()
            assert (await paused.hit("p", 60))[0] == 1
            for _ in range(20):  # paused after the first failure: no more waiting on Redis
                await paused.hit("p", 60)
            assert (await paused.peek("p", 60))[0] == 21
            assert time.monotonic() - started < 3.0
        finally:
            await paused.aclose()
        redis_server.start()
        # Back (empty: the test's redis keeps nothing on disk) and shared again.
        assert (await second.hit("k", 60))[0] == 1
        assert (await first.hit("k", 60))[0] == 2
    finally:
        await first.aclose()
        await second.aclose()


def test_the_default_limit_applies_when_callers_authenticate(tmp_path: Path) -> None:
    assert Limits.from_settings(Settings(), authenticated=True).rules.requests == DEFAULT_REQUESTS_PER_WINDOW
    assert Limits.from_settings(Settings(), authenticated=False).rules.requests == 0
    assert Limits.from_settings(Settings(rate_limit=5), authenticated=False).rules.requests == 5
    settings = Settings.from_env(
        {"POSTHOG_MCP_RATE_LIMIT": "0", "POSTHOG_MCP_RATE_WINDOW": "10", "POSTHOG_MCP_AUTH_FAILURE_LIMIT": "3"}
    )
    assert (settings.rate_limit, settings.rate_window, settings.auth_failure_limit) == (0, 10.0, 3)
    with pytest.raises(ConfigError, match="POSTHOG_MCP_RATE_LIMIT must be a whole number"):
        Settings.from_env({"POSTHOG_MCP_RATE_LIMIT": "-1"})


# --- over real HTTP -----------------------------------------------------------------------


async def test_a_caller_over_its_limit_gets_429_and_others_go_on(sandbox: Any, tmp_path: Path) -> None:
    async with serving(named(sandbox, tmp_path, rate_limit=3, rate_window=3600)) as running:
        for _ in range(3):
            assert (await post_mcp(running.url, CI_TOKEN)).status_code == 200
        refused = await post_mcp(running.url, CI_TOKEN)
        assert refused.status_code == 429
        assert 0 < int(refused.headers["Retry-After"]) <= 3600
        assert "'ci'" in refused.json()["message"] and CI_TOKEN not in refused.text
        assert (await post_mcp(running.url, ALICE_TOKEN)).status_code == 200


async def test_n1_repeated_wrong_tokens_lock_out_guesses_not_the_callers_already_in(
    sandbox: Any, tmp_path: Path
) -> None:
    """One address may be many people (behind a proxy or a NAT): one of them guessing must not lock out the
    others. A caller this address was already serving keeps getting in; everything else from it waits, a
    right token never served from here included, so the answer to a guess says nothing about it."""
    async with serving(named(sandbox, tmp_path, auth_failure_limit=3)) as running:
        # Asking without a token is how OAuth clients discover the server: it is not a guess.
        for _ in range(5):
            assert (await post_mcp(running.url, None)).status_code == 401
        assert (await post_mcp(running.url, CI_TOKEN)).status_code == 200
        for number in range(3):
            assert (await post_mcp(running.url, f"guess-{number}-" + "g" * 40)).status_code == 401
        answers = {}
        for token in ("guess-4-" + "g" * 40, ALICE_TOKEN):
            refused = await post_mcp(running.url, token)
            assert refused.status_code == 429
            assert int(refused.headers["Retry-After"]) > 0
            assert refused.json()["error"] == "locked_out"
            answers[token] = refused.json()
        # A right token new here looks like a guess (the seconds left may tick between the two answers).
        same = [re.sub(r"\d+ s\b", "N s", json.dumps(answer, sort_keys=True)) for answer in answers.values()]
        assert same[0] == same[1]
        # The caller already in is not locked out by someone else's guesses.
        for _ in range(3):
            assert (await post_mcp(running.url, CI_TOKEN)).status_code == 200
        # Asking without a token still gets the challenge that tells a client how to sign in.
        assert (await post_mcp(running.url, None)).status_code == 401


async def test_n1_only_callers_served_from_that_address_within_a_day_pass_its_lock_out() -> None:
    clock = Clock()
    limits = Limits(LimitRules(requests=0, window=60, failures=2, failure_window=300), InProcessCounter(clock))
    await limits.served("10.0.0.1", "ci")
    for _ in range(2):
        await limits.failed("10.0.0.1")
    assert await limits.locked_out("10.0.0.1") is not None
    assert await limits.vouched("10.0.0.1", "ci") is True
    assert await limits.vouched("10.0.0.1", "alice") is False  # never served from here
    assert await limits.vouched("10.0.0.2", "ci") is False  # served from elsewhere only
    clock.now += 23 * 3600
    assert await limits.vouched("10.0.0.1", "ci") is True
    clock.now += 2 * 3600
    assert await limits.vouched("10.0.0.1", "ci") is False


async def test_two_servers_on_one_redis_share_the_limit(
    sandbox: Any, tmp_path: Path, redis_server: RedisProcess
) -> None:
    settings = named(
        sandbox, tmp_path, rate_limit=4, rate_window=3600, redis_url=redis_server.url, confirm_secret=SECRET
    )
    async with serving(settings) as first, serving(settings) as second:
        answers = []
        for running in (first, second, first, second, first, second):
            answers.append((await post_mcp(running.url, ALICE_TOKEN)).status_code)
        assert answers == [200, 200, 200, 200, 429, 429]
        assert (await post_mcp(second.url, CI_TOKEN)).status_code == 200


async def test_the_lock_out_holds_across_servers_on_one_redis(
    sandbox: Any, tmp_path: Path, redis_server: RedisProcess
) -> None:
    settings = named(sandbox, tmp_path, auth_failure_limit=2, redis_url=redis_server.url, confirm_secret=SECRET)
    async with serving(settings) as first, serving(settings) as second:
        assert (await post_mcp(first.url, "wrong-1-" + "w" * 40)).status_code == 401
        assert (await post_mcp(second.url, "wrong-2-" + "w" * 40)).status_code == 401
        assert (await post_mcp(first.url, CI_TOKEN)).status_code == 429
        assert (await post_mcp(second.url, CI_TOKEN)).status_code == 429


async def test_n1_a_caller_served_by_one_server_passes_the_lock_out_on_another_sharing_redis(
    sandbox: Any, tmp_path: Path, redis_server: RedisProcess
) -> None:
    settings = named(sandbox, tmp_path, auth_failure_limit=2, redis_url=redis_server.url, confirm_secret=SECRET)
    async with serving(settings) as first, serving(settings) as second:
        assert (await post_mcp(first.url, ALICE_TOKEN)).status_code == 200
        assert (await post_mcp(first.url, "wrong-1-" + "w" * 40)).status_code == 401
        assert (await post_mcp(second.url, "wrong-2-" + "w" * 40)).status_code == 401
        assert (await post_mcp(second.url, ALICE_TOKEN)).status_code == 200
        assert (await post_mcp(second.url, CI_TOKEN)).status_code == 429


async def test_behind_a_trusted_proxy_the_lock_out_is_per_client_address(sandbox: Any, tmp_path: Path) -> None:
    import httpx

    from tests.edge_support import LIST_TOOLS, MCP_HEADERS

    async def through_proxy(url: str, client_address: str, token: str) -> int:
        # The test plays the reverse proxy on loopback, which uvicorn trusts (FORWARDED_ALLOW_IPS).
        headers = {**MCP_HEADERS, "Authorization": f"Bearer {token}", "X-Forwarded-For": client_address}
        async with httpx.AsyncClient(timeout=30.0) as http:
            return (await http.post(url, json=LIST_TOOLS, headers=headers)).status_code

    async with serving(named(sandbox, tmp_path, auth_failure_limit=2)) as running:
        assert [await through_proxy(running.url, "203.0.113.7", "guess-" + "g" * 40) for _ in range(3)] == [
            401,
            401,
            429,
        ]
        assert await through_proxy(running.url, "203.0.113.7", CI_TOKEN) == 429
        assert await through_proxy(running.url, "198.51.100.2", CI_TOKEN) == 200
