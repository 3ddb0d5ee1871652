"""The guard's shared state on a real redis-server: what its keys hold, the lock's rules, and
failing closed when Redis cannot be reached (reads go on)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from posthog_sandbox import DEFAULT_API_KEY
from server.budget.pacing import KEY_PREFIX as BUDGET_PREFIX
from server.config import ConfigError
from server.guard.shared_state import KEY_PREFIX, InProcessState, RedisState, SharedState
from tests.redis_server import RedisServer, free_port, running_redis
from tests.support import SandboxControl, connect, guarded_arguments, running_app, settings_for, text

SECRET = b"a confirm secret shared by replicas"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with running_redis(tmp_path / "redis") as server:
        yield server


@pytest.mark.parametrize("kind", ["in_process", "redis"])
async def test_spend_once_and_a_lock_only_its_holder_lifts(kind: str, tmp_path: Path) -> None:
    with running_redis(tmp_path / "redis") as server:
        state: SharedState = InProcessState() if kind == "in_process" else RedisState(server.url)
        try:
            assert await state.spend("spent:a", 10) is True
            assert await state.spend("spent:a", 10) is False
            assert await state.spend("spent:b", 10) is True
            mine, theirs = {"caller": "alice", "id": "1"}, {"caller": "bob", "id": "2"}
            assert await state.hold("in-flight:x", mine, 10) is None
            assert await state.hold("in-flight:x", theirs, 10) == mine
            await state.release("in-flight:x", theirs)  # not theirs to lift
            assert await state.hold("in-flight:x", theirs, 10) == mine
            await state.release("in-flight:x", mine)
            assert await state.hold("in-flight:x", theirs, 10) is None
        finally:
            await state.aclose()


async def test_redis_keys_are_keyed_hashes_that_hold_no_token(
    make_sandbox: Any, redis_server: RedisServer, tmp_path: Path
) -> None:
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    backfill = guarded_arguments(control)["batch-export-backfill-create"]
    settings = settings_for(
        sandbox.base_url, DEFAULT_API_KEY, tmp_path, confirm_secret=SECRET, redis_url=redis_server.url
    )
    async with running_app(settings) as app, connect(app, "legacy") as client:
        first = await client.call_tool("batch-export-backfill-create", backfill)
        token = first.structured_content["confirmation_token"]
        done = await client.call_tool("batch-export-backfill-create", {**backfill, "confirmation_token": token})
        assert done.structured_content["status"] == "executed", text(done)
        again = await client.call_tool("batch-export-backfill-create", {**backfill, "confirmation_token": token})
        assert again.is_error and "already used" in text(again)
    every = [key.decode() for key in redis.Redis.from_url(redis_server.url).keys("*")]
    # The PostHog request budget shares the Redis (server/budget/): its keys name hashes, never a token.
    budget = [key for key in every if key.startswith(BUDGET_PREFIX)]
    assert budget and not any(DEFAULT_API_KEY in key or token[-16:] in key for key in budget), budget
    keys = [key for key in every if key not in budget]
    assert len(keys) == 1 and keys[0].startswith(KEY_PREFIX + "spent:"), keys
    payload = token.partition(".")[0]
    for key in keys:
        name = key.removeprefix(KEY_PREFIX).split(":", 1)[1]
        assert len(name) == 64 and all(c in "0123456789abcdef" for c in name), key
        assert payload[:16] not in key and token[-16:] not in key
        assert backfill["batch_export_id"] not in key
    control.close()


async def test_unreachable_redis_refuses_writes_quickly_and_serves_reads(make_sandbox: Any, tmp_path: Path) -> None:
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    pause = guarded_arguments(control)["batch-export-pause"]
    nowhere = f"redis://:hunter22-redis-password@127.0.0.1:{free_port()}/0"
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, confirm_secret=SECRET, redis_url=nowhere)
    async with running_app(settings) as app, connect(app, "legacy") as client:
        read = await client.call_tool("batch-export-get", pause)
        assert not read.is_error, text(read)
        first = await client.call_tool("batch-export-pause", pause)
        control.clear_requests()
        started = time.monotonic()
        refused = await client.call_tool("batch-export-pause", {**pause, **_token(first)})
        took = time.monotonic() - started
        app.audit.flush()
    message = text(refused)
    assert refused.is_error and "Redis at 127.0.0.1" in message and "Nothing was sent to PostHog" in message
    assert "hunter22-redis-password" not in message
    assert "hunter22-redis-password" not in settings.audit_log.read_text()
    assert took < 10, f"refusing took {took:.1f} s"
    assert control.writes() == []
    control.close()


def _token(preview: Any) -> dict[str, str]:
    return {"confirmation_token": preview.structured_content["confirmation_token"]}


async def test_redis_without_a_shared_confirm_secret_is_refused_at_start(make_sandbox: Any, tmp_path: Path) -> None:
    sandbox = make_sandbox(generation=3)
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, redis_url="redis://127.0.0.1:6379/0")
    with pytest.raises(ConfigError, match="POSTHOG_MCP_CONFIRM_SECRET"):
        async with running_app(settings):
            pass


async def test_n10_the_in_flight_lock_outlives_the_slowest_recheck_and_write_the_timeout_allows(
    make_sandbox: Any, tmp_path: Path
) -> None:
    """With POSTHOG_MCP_TIMEOUT=100 the re-check read and the write may each take 200 s: a copy of the call
    sent 124 s after the first took the lock must still find it held, not write a second backfill."""
    import anyio

    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    tool = "batch-export-backfill-create"
    backfill = guarded_arguments(control)[tool]
    now = [time.time()]

    class Watched(InProcessState):
        def __init__(self) -> None:
            super().__init__(clock=lambda: now[0])
            self.taken = anyio.Event()

        async def hold(self, name: str, holder: dict[str, Any], seconds: int) -> dict[str, Any] | None:
            found = await super().hold(name, holder, seconds)
            self.taken.set()
            return found

    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, confirm_secret=SECRET, timeout=100.0)
    async with running_app(settings) as app, connect(app, "legacy") as client:
        state = Watched()
        app.guard.state = state
        tokens = [_token(await client.call_tool(tool, backfill)) for _ in range(2)]
        control.clear_requests()
        control.fault(latency_ms=2000, method="POST", path_contains="backfills")
        answers: list[Any] = []

        async def confirm(token: dict[str, str]) -> None:
            answers.append(await client.call_tool(tool, {**backfill, **token}))

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(confirm, tokens[0])
            with anyio.fail_after(30):
                await state.taken.wait()
            now[0] += 124  # the first call is still writing (slowly, as a 100 s timeout allows)
            await confirm(tokens[1])
    refused = answers[0]
    assert refused.is_error and "already in flight" in text(refused), text(refused)
    assert answers[1].structured_content["status"] == "executed", text(answers[1])
    assert len([w for w in control.writes() if "backfills" in w["path"]]) == 1, control.writes()
    control.close()
