"""One plan confirmation given to two replicas at once sends each of its writes once (issue 20).

Real processes on loopback, as in tests/test_replicas.py: a sandbox of 60 exports with a Snowflake outage
in its past, two `serve --transport http` replicas sharing POSTHOG_MCP_CONFIRM_SECRET and one real
redis-server. Each repetition previews a repair plan on one replica, then sends its confirmation to both
at once: one applies the plan, the other is refused, and the sandbox's request log holds each planned
backfill exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import mcp.types as types
import pytest

from posthog_sandbox import DEFAULT_API_KEY
from tests.redis_server import running_redis
from tests.replica_cluster import Replica, mcp_client, replicas, sandbox_process
from tests.support import SandboxControl, text

REPETITIONS = 20


class Fleet:
    def __init__(self, control: SandboxControl, nodes: list[Replica]) -> None:
        self.control = control
        self.nodes = nodes
        start = (control.now() - timedelta(hours=42)).replace(minute=0, second=0, microsecond=0)
        control.outage("Snowflake", start.isoformat(), (start + timedelta(hours=18)).isoformat())
        iso = "%Y-%m-%dT%H:%M:%SZ"
        self.arguments = {
            "project_id": 1,
            "destination_type": "Snowflake",
            "start": (start - timedelta(hours=24)).strftime(iso),
            "end": (start + timedelta(hours=20)).strftime(iso),
        }

    def backfills_sent(self) -> list[tuple[str, str]]:
        """(path, status) of each backfill POSTed since the log was cleared."""
        return [(r["path"], r["status"]) for r in self.control.requests() if r["method"] == "POST"]

    def tidy(self) -> None:
        """Cancel every running backfill (PostHog allows five a project), then forget the requests."""
        self.control.advance(5)  # the rows of the backfills just started are written a moment later
        for backfill in self.control.state()["backfills"]:
            if backfill["status"] in ("Running", "Starting"):
                path = f"1/batch_exports/{backfill['batch_export']}/backfills/{backfill['id']}/cancel/"
                self.control.api("POST", path).raise_for_status()
        self.control.clear_requests()


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    folder = tmp_path_factory.mktemp("fleet-replicas")
    with running_redis(folder / "redis") as redis, sandbox_process("--exports", "60") as sandbox_url:
        control = SandboxControl(sandbox_url, DEFAULT_API_KEY)
        try:
            with replicas(2, sandbox_url, redis.url, folder) as nodes:
                yield Fleet(control, nodes)
        finally:
            control.close()


def outcome(result: types.CallToolResult) -> str:
    if not result.is_error:
        return str(result.structured_content["status"])
    assert "already used" in text(result), text(result)
    return "refused"


def once_each(fleet: Fleet, receipt: dict[str, Any]) -> None:
    sent = fleet.backfills_sent()
    assert sent and all(status == 201 for _, status in sent), sent
    assert len(sent) == len(receipt["started"]), (sent, receipt)
    bodies = {(s["batch_export_id"], s["start_at"], s["end_at"]) for s in receipt["started"]}
    assert len(bodies) == len(receipt["started"]), "a range started twice"


async def test_one_plan_confirmation_sent_to_two_replicas_at_once_sends_each_write_once(fleet: Fleet) -> None:
    a, b = fleet.nodes
    async with mcp_client(a.url) as one, mcp_client(b.url, mode="legacy") as two:
        for n in range(REPETITIONS):
            first = await one.call_tool("batch-export-gaps-backfill", fleet.arguments)
            assert not first.is_error, text(first)
            preview = first.structured_content
            assert preview["preview"]["plan"]["writes"] >= 2, preview
            fleet.control.clear_requests()
            confirmed = {**fleet.arguments, "confirmation_token": preview["confirmation_token"]}
            both = await asyncio.gather(
                one.call_tool("batch-export-gaps-backfill", confirmed),
                two.call_tool("batch-export-gaps-backfill", confirmed),
            )
            assert sorted(outcome(r) for r in both) == ["executed", "refused"], (n, [text(r) for r in both])
            done = next(r for r in both if not r.is_error)
            receipt = done.structured_content["result"]
            assert len(receipt["started"]) == preview["preview"]["plan"]["writes"]
            once_each(fleet, receipt)
            fleet.tidy()


async def test_one_plan_request_state_and_answer_on_two_replicas_sends_each_write_once(fleet: Fleet) -> None:
    a, b = fleet.nodes
    yes = {"confirm": types.ElicitResult(action="accept", content={"confirm": True})}

    async def never_called(context: Any, params: Any) -> types.ElicitResult:
        raise AssertionError("the rounds are driven by hand")

    async with (
        mcp_client(a.url, elicitation_callback=never_called) as one,
        mcp_client(b.url, elicitation_callback=never_called) as two,
    ):
        for n in range(REPETITIONS):
            asked = await one.session.call_tool(
                "batch-export-gaps-backfill", fleet.arguments, allow_input_required=True
            )
            assert isinstance(asked, types.InputRequiredResult), asked
            fleet.control.clear_requests()
            rounds = [
                session.call_tool(
                    "batch-export-gaps-backfill",
                    fleet.arguments,
                    input_responses=yes,
                    request_state=asked.request_state,
                )
                for session in (one.session, two.session)
            ]
            both = await asyncio.gather(*rounds)
            assert sorted(outcome(r) for r in both) == ["executed", "refused"], (n, [text(r) for r in both])
            receipt = next(r for r in both if not r.is_error).structured_content["result"]
            once_each(fleet, receipt)
            fleet.tidy()
