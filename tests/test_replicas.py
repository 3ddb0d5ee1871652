"""Several replicas, one truth: the attacks that made two writes across replicas, each repeated.

Real processes on loopback: one sandbox, two `serve --transport http` replicas sharing
POSTHOG_MCP_CONFIRM_SECRET and one real redis-server. Each attack must end in exactly one write,
counted in the sandbox's request log, every time.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mcp.types as types
import pytest
from mcp import Client

from posthog_sandbox import DEFAULT_API_KEY
from tests.redis_server import RedisServer, running_redis
from tests.replica_cluster import Replica, mcp_client, replicas, sandbox_process
from tests.support import SandboxControl, text

REPETITIONS = 21  # a multiple of the three adding tools, at least 20
ADDING = ("batch-export-create", "batch-export-backfill-create", "batch-export-run-retry")
REFUSED = ("already used", "already in flight")


class Cluster:
    def __init__(self, redis: RedisServer, control: SandboxControl, nodes: list[Replica]) -> None:
        self.redis = redis
        self.control = control
        self.nodes = nodes
        self.s3 = control.export_id("Hourly events to S3")
        self.snowflake = control.export_id("Daily events to Snowflake")
        runs = control.state()["runs"]
        self.failed_run = next(r["id"] for r in runs if r["batch_export"] == self.snowflake and r["status"] == "Failed")

    def arguments(self, tool: str, n: int) -> dict[str, Any]:
        if tool == "batch-export-create":
            destination = {"type": "HTTP", "config": {"url": "https://us.i.posthog.com/batch/", "token": "canary-rep"}}
            return {"project_id": 1, "name": f"Replica probe {n}", "interval": "hour", "destination": destination}
        if tool == "batch-export-backfill-create":
            window = {"start_at": "2026-11-01T00:00:00+00:00", "end_at": "2026-11-01T03:00:00+00:00"}
            return {"project_id": 1, "batch_export_id": self.s3, **window}
        return {"project_id": 1, "batch_export_id": self.snowflake, "run_id": self.failed_run}

    def writes(self) -> list[dict[str, Any]]:
        return self.control.writes()

    def tidy(self) -> None:
        """Cancel the backfills the attacks started (PostHog allows five running per team), then forget them."""
        self.control.advance(5)  # the rows of the backfills just started are written a moment later
        for backfill in self.control.state()["backfills"]:
            if backfill["status"] in ("Running", "Starting"):
                path = f"1/batch_exports/{backfill['batch_export']}/backfills/{backfill['id']}/cancel/"
                self.control.api("POST", path).raise_for_status()
        self.control.clear_requests()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    folder = tmp_path_factory.mktemp("replicas")
    with running_redis(folder / "redis") as redis, sandbox_process() as sandbox_url:
        control = SandboxControl(sandbox_url, DEFAULT_API_KEY)
        try:
            with replicas(2, sandbox_url, redis.url, folder) as nodes:
                yield Cluster(redis, control, nodes)
        finally:
            control.close()


async def preview_token(client: Client, tool: str, arguments: dict[str, Any]) -> str:
    first = await client.call_tool(tool, arguments)
    assert not first.is_error, text(first)
    return str(first.structured_content["confirmation_token"])


def outcome(result: types.CallToolResult) -> str:
    if not result.is_error:
        return str(result.structured_content["status"])
    message = text(result)
    assert any(reason in message for reason in REFUSED), message
    return "refused"


async def test_one_token_sent_to_two_replicas_at_once_writes_once(cluster: Cluster) -> None:
    a, b = cluster.nodes
    async with mcp_client(a.url) as one, mcp_client(b.url, mode="legacy") as two:
        for n in range(REPETITIONS):
            tool = ADDING[n % 3]
            arguments = cluster.arguments(tool, n)
            token = await preview_token(one, tool, arguments)
            cluster.control.clear_requests()
            confirmed = {**arguments, "confirmation_token": token}
            both = await asyncio.gather(one.call_tool(tool, confirmed), two.call_tool(tool, confirmed))
            assert sorted(outcome(r) for r in both) == ["executed", "refused"], (n, tool, [text(r) for r in both])
            assert len(cluster.writes()) == 1, (n, tool, cluster.writes())
            cluster.tidy()


def confirmed_lines(replica: Replica) -> int:
    if not replica.audit.exists():
        return 0
    return sum(json.loads(line)["decision"] == "confirmed" for line in replica.audit.read_text().splitlines())


async def until_confirmed(replica: Replica, count: int) -> None:
    for _ in range(300):  # bounded: 30 s
        if confirmed_lines(replica) >= count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"replica {replica.index} never confirmed the call")


LATE_MS = 1000


async def test_a_call_timed_out_on_one_replica_then_sent_to_another_writes_once(cluster: Cluster) -> None:
    a, b = cluster.nodes
    async with mcp_client(a.url) as one, mcp_client(b.url) as two:
        for n in range(REPETITIONS):
            tool = ADDING[n % 3]
            arguments = cluster.arguments(tool, 100 + n)
            token = await preview_token(one, tool, arguments)
            cluster.control.clear_requests()
            # The write reaches PostHog and is applied, but its answer is late: the client stops
            # waiting for A and sends the same call to B (A's call is left to finish on its own).
            cluster.control.fault(latency_ms=LATE_MS, method="POST", count=1)
            confirmed = {**arguments, "confirmation_token": token}
            seen = confirmed_lines(a)
            on_a = asyncio.ensure_future(one.call_tool(tool, confirmed))
            await until_confirmed(a, seen + 1)
            again = await two.call_tool(tool, confirmed)
            assert outcome(again) == "refused", text(again)
            # A fresh preview and confirmation on B while A's write is pending: refused, it is in flight.
            retry = {**arguments, "confirmation_token": await preview_token(two, tool, arguments)}
            fresh = await two.call_tool(tool, retry)
            assert fresh.is_error and "already in flight" in text(fresh), (n, tool, text(fresh))
            first = await on_a
            assert first.structured_content["status"] == "executed", text(first)
            assert len(cluster.writes()) == 1, (n, tool, cluster.writes())
            cluster.tidy()


async def test_one_request_state_and_answer_on_two_replicas_writes_once(cluster: Cluster) -> None:
    a, b = cluster.nodes
    yes = {"confirm": types.ElicitResult(action="accept", content={"confirm": True})}

    async def never_called(context: Any, params: Any) -> types.ElicitResult:
        raise AssertionError("the rounds are driven by hand")

    async with (
        mcp_client(a.url, elicitation_callback=never_called) as one,
        mcp_client(b.url, elicitation_callback=never_called) as two,
    ):
        for n in range(REPETITIONS):
            tool = ADDING[n % 3]
            arguments = cluster.arguments(tool, 200 + n)
            asked = await one.session.call_tool(tool, arguments, allow_input_required=True)
            assert isinstance(asked, types.InputRequiredResult), asked
            cluster.control.clear_requests()
            rounds = [
                session.call_tool(tool, arguments, input_responses=yes, request_state=asked.request_state)
                for session in (one.session, two.session)
            ]
            both = await asyncio.gather(*rounds)
            assert sorted(outcome(r) for r in both) == ["executed", "refused"], (n, [text(r) for r in both])
            assert len(cluster.writes()) == 1, (n, tool, cluster.writes())
            cluster.tidy()


async def test_a_spent_token_replayed_on_a_restarted_replica_after_the_export_is_deleted(cluster: Cluster) -> None:
    a, b = cluster.nodes
    spent = []
    async with mcp_client(a.url) as one:
        for n in range(REPETITIONS - 1):
            arguments = cluster.arguments("batch-export-create", 300 + n)
            token = await preview_token(one, "batch-export-create", arguments)
            done = await one.call_tool("batch-export-create", {**arguments, "confirmation_token": token})
            assert done.structured_content["status"] == "executed", text(done)
            created = done.structured_content["result"]["id"]
            cluster.control.api("DELETE", f"1/batch_exports/{created}/").raise_for_status()
            spent.append({**arguments, "confirmation_token": token})
    b.restart()
    cluster.control.clear_requests()
    async with mcp_client(b.url) as two:
        for replay in spent:
            result = await two.call_tool("batch-export-create", replay)
            assert result.is_error and "already used" in text(result), text(result)
    assert cluster.writes() == []


async def test_without_redis_writes_are_refused_and_reads_go_on_then_work_again(cluster: Cluster) -> None:
    a, _ = cluster.nodes
    pause = {"project_id": 1, "batch_export_id": cluster.s3}
    async with mcp_client(a.url) as one:
        token = await preview_token(one, "batch-export-pause", pause)
        cluster.redis.stop()
        try:
            cluster.control.clear_requests()
            read = await one.call_tool("batch-export-get", pause)
            assert not read.is_error and read.structured_content["id"] == cluster.s3, text(read)
            refused = await one.call_tool("batch-export-pause", {**pause, "confirmation_token": token})
            message = text(refused)
            assert refused.is_error and "Redis at 127.0.0.1" in message and "Nothing was sent" in message, message
            assert cluster.writes() == []
        finally:
            cluster.redis.start()
        done = await one.call_tool("batch-export-pause", {**pause, "confirmation_token": token})
        assert done.structured_content["status"] == "executed", text(done)
        assert len(cluster.writes()) == 1
    lines = [json.loads(line) for line in Path(a.audit).read_text().splitlines()]
    assert any(line["decision"] == "refused" and "Redis" in line["reason"] for line in lines)
    assert all(line["caller"] == "local" for line in lines)
    cluster.control.api("POST", f"1/batch_exports/{cluster.s3}/unpause/").raise_for_status()
    cluster.tidy()
