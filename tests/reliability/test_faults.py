"""Upstream faults injected through the sandbox's /_sandbox/faults: every call ends within its
time budget with one clear line, reads are retried a bounded number of times, and the number
of attempts is checked in the sandbox's own request log."""

from __future__ import annotations

import time
from typing import Any

import pytest

from posthog_sandbox import DEFAULT_API_KEY
from server.posthog import MAX_RETRY_AFTER
from tests.support import SandboxControl, connect, data, running_app, settings_for, text

EXPORT = "Hourly events to S3"
# One try plus the client's two read retries (server/posthog.py).
READ_ATTEMPTS = 3


def attempts(control: SandboxControl, path_part: str, method: str = "GET") -> list[dict[str, Any]]:
    return [r for r in control.requests() if r["method"] == method and path_part in r["path"]]


def settled_attempts(control: SandboxControl, path_part: str, settle: float) -> list[dict[str, Any]]:
    """Attempts seen once the sandbox is done with requests still sleeping in it (bounded wait)."""
    deadline = time.monotonic() + settle
    seen, quiet_since = attempts(control, path_part), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = attempts(control, path_part)
        if len(now) != len(seen):
            seen, quiet_since = now, time.monotonic()
        elif seen and time.monotonic() - quiet_since > 0.3:
            break
    return seen


def assert_clear_failure(result: Any, *phrases: str) -> str:
    assert result.is_error, text(result)
    message = text(result)
    assert message and "\n" not in message, f"not one line: {message!r}"
    assert "Error executing tool" not in message and "inside the MCP server" not in message, message
    for phrase in phrases:
        assert phrase in message, f"{phrase!r} missing from {message!r}"
    assert result.structured_content is None  # errors are text only: the outputSchema describes success
    return message


async def timed_get(
    live: Any, mode: str, fault: dict[str, Any], timeout: float = 5.0, settle: float = 1.0
) -> tuple[Any, float, list]:
    """Inject `fault` on reads of one export, call batch-export-get once; the result, seconds taken, attempts."""
    sandbox, control = live
    export_id = control.export_id(EXPORT)
    path = f"/batch_exports/{export_id}/"
    arguments = {"project_id": 1, "batch_export_id": export_id}
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, timeout=timeout)) as app:
        async with connect(app, mode) as client:
            # The first call in a process pays one-off costs (imports, schema builds: 0.7 s seen on a busy
            # box) that would eat the timing bounds' slack; warm the same path up before measuring it.
            assert data(await client.call_tool("batch-export-get", arguments))["name"] == EXPORT
            control.clear_requests()
            control.fault(method="GET", path_contains=path, **fault)
            started = time.monotonic()
            result = await client.call_tool("batch-export-get", arguments)
            elapsed = time.monotonic() - started
    control.clear_faults()
    return result, elapsed, settled_attempts(control, path, settle)


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_on_reads_are_retried_until_they_pass(live: Any, mode: str, status: int) -> None:
    result, elapsed, tries = await timed_get(live, mode, {"status": status, "count": READ_ATTEMPTS - 1})
    assert data(result)["name"] == EXPORT
    assert [t["status"] for t in tries] == [status, status, 200]
    assert elapsed >= 1.2, "two backoffs (0.25 s, 1 s) expected between the attempts"
    assert elapsed < 5.0


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_past_the_retry_limit_fail_with_one_clear_line(live: Any, mode: str, status: int) -> None:
    result, elapsed, tries = await timed_get(live, mode, {"status": status, "count": -1})
    assert_clear_failure(result, f"PostHog HTTP {status}")
    assert len(tries) == READ_ATTEMPTS, "retries must be bounded"
    assert elapsed < 5.0


async def test_throttling_with_a_short_retry_after_is_waited_out(live: Any, mode: str) -> None:
    result, elapsed, tries = await timed_get(live, mode, {"status": 429, "retry_after": "1", "count": 1})
    assert data(result)["name"] == EXPORT
    assert [t["status"] for t in tries] == [429, 200]
    assert 1.0 <= elapsed < 3.0


async def test_throttling_with_a_long_retry_after_is_reported_at_once(live: Any, mode: str) -> None:
    wait = int(MAX_RETRY_AFTER) + 90
    result, elapsed, tries = await timed_get(live, mode, {"status": 429, "retry_after": str(wait), "count": -1})
    assert_clear_failure(result, "PostHog HTTP 429", str(wait))
    assert len(tries) == 1
    # Sleeping through it would take 120 s; the bound is the call's own timeout, so that a busy machine
    # cannot fail it while a wait until the 10 s deadline still would.
    assert elapsed < 5.0, "a Retry-After beyond the limit must not be slept through"


async def test_slow_upstream_ends_within_the_timeout_budget(live: Any, mode: str) -> None:
    timeout = 1.0
    result, elapsed, tries = await timed_get(live, mode, {"latency_ms": 3000, "count": -1}, timeout=timeout, settle=3.5)
    assert_clear_failure(result, "PostHog unreachable", "no answer after", "timeout each")
    # The client promises the whole call, retries included, within twice the timeout. Waiting for the
    # injected 3 s answer, or a third 1 s attempt, would take 3 s or more: 0.9 s is left for overhead.
    assert elapsed < 2 * timeout + 0.9
    # The sandbox logs a request once it has answered, i.e. after its injected latency.
    assert 1 <= len(tries) <= READ_ATTEMPTS


async def test_a_dropped_connection_on_a_read_is_retried(live: Any, mode: str) -> None:
    result, elapsed, tries = await timed_get(live, mode, {"drop_connection": True, "count": 1})
    assert data(result)["name"] == EXPORT
    assert len(tries) == 2
    assert elapsed < 3.0


async def test_a_connection_that_keeps_dropping_fails_clearly(live: Any, mode: str) -> None:
    result, elapsed, tries = await timed_get(live, mode, {"drop_connection": True, "count": -1})
    assert_clear_failure(result, "PostHog unreachable", "connection failed")
    assert len(tries) == READ_ATTEMPTS
    assert elapsed < 5.0


async def test_malformed_json_is_a_clear_error(live: Any, mode: str) -> None:
    result, elapsed, tries = await timed_get(live, mode, {"malformed_json": True, "count": -1})
    assert_clear_failure(result, "not valid JSON")
    assert 1 <= len(tries) <= READ_ATTEMPTS
    assert elapsed < 5.0


async def test_an_html_error_page_is_named_not_dumped(live: Any, mode: str) -> None:
    result, elapsed, tries = await timed_get(live, mode, {"html": True, "status": 502, "count": -1})
    message = assert_clear_failure(result, "PostHog HTTP 502", "HTML error page")
    assert "<html" not in message.lower() and "<body" not in message.lower()
    assert len(tries) == READ_ATTEMPTS
    assert elapsed < 5.0


async def test_throttled_write_is_sent_again_and_applied_once(live: Any, mode: str) -> None:
    """PostHog refuses a throttled request before doing anything, so resending a 429'd write is safe."""
    sandbox, control = live
    export_id = control.export_id(EXPORT)
    pause = f"/batch_exports/{export_id}/pause/"
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, confirm="never")
    async with running_app(settings) as app, connect(app, mode) as client:
        # Warm up a write path first, as timed_get does (unpausing an active export changes nothing).
        unpause = {"project_id": 1, "batch_export_id": export_id}
        assert data(await client.call_tool("batch-export-unpause", unpause))["paused"] is False
        control.clear_requests()
        control.fault(method="POST", path_contains=pause, status=429, retry_after="1", count=1)
        started = time.monotonic()
        result = await client.call_tool("batch-export-pause", {"project_id": 1, "batch_export_id": export_id})
        elapsed = time.monotonic() - started
    assert data(result)["paused"] is True
    assert [t["status"] for t in attempts(control, pause, "POST")] == [429, 200]
    assert 1.0 <= elapsed < 3.0
    exported = next(e for e in control.state()["exports"] if e["id"] == export_id)
    assert exported["paused"] is True
