"""The one PostHog request budget (server/budget/): its ledger's rules in this process and in a real Redis,
the waits and refusals a call meets, a 429 closing it, the Query API's slots, and batch-export-wait polling
within it (finding N8)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import respx

from posthog_sandbox import DEFAULT_API_KEY
from server.budget import Budget, ClassLimits, Rate, RequestClass, confirmed, parse_limits
from server.budget.ledger import InProcessLedger, RedisLedger, Window
from server.caller import current_caller
from server.config import ConfigError, Settings
from server.posthog import PostHogClient
from tests.redis_server import RedisServer, running_redis
from tests.support import SandboxControl, connect, data, running_app, settings_for
from tools.answers import wait as wait_module
from tools.answers.wait import MAX_REQUESTS, WaitParams
from tools.upstream import OverBudget

HOST = "https://posthog.test"
WINDOW = (Window(seconds=60.0, limit=10, reserve=2),)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with running_redis(tmp_path / "redis") as server:
        yield server


# --- the ledger's rules ------------------------------------------------------------------------------


async def test_reads_stop_at_the_reserve_writes_use_it_and_the_window_slides() -> None:
    clock = Clock()
    ledger = InProcessLedger(clock)
    admitted = [await ledger.admit("s", WINDOW, "a", False, str(n)) for n in range(9)]
    assert admitted == [0.0] * 8 + [pytest.approx(60.0)]  # 8 reads: the last 2 of 10 are kept for writes
    assert await ledger.admit("s", WINDOW, "a", True, "w1") == 0.0
    assert await ledger.admit("s", WINDOW, "a", True, "w2") == 0.0
    assert await ledger.admit("s", WINDOW, "a", True, "w3") == pytest.approx(60.0)  # PostHog's limit, not more
    clock.now += 30.0
    assert await ledger.admit("s", WINDOW, "a", True, "w4") == pytest.approx(30.0)  # sliding, not a fixed window
    clock.now += 30.0
    assert await ledger.admit("s", WINDOW, "a", False, "r") == 0.0


async def test_a_second_caller_keeps_its_share_while_the_first_one_floods() -> None:
    clock = Clock()
    ledger = InProcessLedger(clock)
    assert await ledger.admit("s", WINDOW, "reader", False, "r0") == 0.0  # the reader is active in the window
    flood = [await ledger.admit("s", WINDOW, "loader", False, f"l{n}") for n in range(8)]
    assert flood.count(0.0) == 4, flood  # past half the window, the loader holds only its half of the reads
    reads = [await ledger.admit("s", WINDOW, "reader", False, f"r{n}") for n in range(1, 4)]
    assert reads == [0.0, 0.0, 0.0]


async def test_a_block_holds_every_request_of_its_scope() -> None:
    clock = Clock()
    ledger = InProcessLedger(clock)
    await ledger.block("s", 3.0)
    assert await ledger.admit("s", WINDOW, "a", True, "w") == pytest.approx(3.0)
    assert await ledger.admit("other", WINDOW, "a", True, "w") == 0.0
    clock.now += 3.0
    assert await ledger.admit("s", WINDOW, "a", True, "w") == 0.0


@pytest.mark.parametrize("kind", ["in_process", "redis"])
async def test_both_ledgers_follow_the_same_rules(kind: str, tmp_path: Path) -> None:
    """The same scenario on the in-process ledger and on a real Redis (its script, its own clock)."""
    window = (Window(seconds=2.0, limit=6, reserve=1),)
    with running_redis(tmp_path / "redis") as redis_server:
        ledger: Any = InProcessLedger() if kind == "in_process" else RedisLedger(redis_server.url)
        try:
            reads = [await ledger.admit("pbe:s", window, "a", False, f"r{n}") for n in range(6)]
            assert [w == 0.0 for w in reads] == [True] * 5 + [False]
            assert 1.5 < reads[-1] <= 2.0
            assert await ledger.admit("pbe:s", window, "a", True, "w") == 0.0
            assert await ledger.admit("pbe:s", window, "b", True, "w2") > 0.0
            assert await ledger.take_slot("pbe:q", "x", 1, 5.0)
            assert not await ledger.take_slot("pbe:q", "y", 1, 5.0)
            await ledger.free_slot("pbe:q", "x")
            assert await ledger.take_slot("pbe:q", "y", 1, 5.0)
            await ledger.block("pbe:b", 1.0)
            assert 0.5 < await ledger.admit("pbe:b", window, "a", True, "z") <= 1.0
            await anyio.sleep(2.05)
            assert await ledger.admit("pbe:s", window, "a", False, "again") == 0.0
        finally:
            await ledger.aclose()


async def test_redis_unreachable_paces_in_this_process() -> None:
    ledger = RedisLedger("redis://127.0.0.1:1/0")
    try:
        assert await ledger.admit("pbe:s", WINDOW, "a", False, "r") == 0.0
        assert ledger._paused()
    finally:
        await ledger.aclose()


# --- what a call meets ----------------------------------------------------------------------------------


def small_budget(requests: int = 10, seconds: float = 60.0, share: float = 1.0) -> Budget:
    limits = {
        RequestClass.CRUD: ClassLimits((Rate(requests, seconds),)),
        RequestClass.QUERY: ClassLimits((Rate(3, 60.0),), 1),
    }
    return Budget(InProcessLedger(), limits, share=share)


async def test_a_read_past_the_budget_is_told_when_to_try_again_and_a_confirmed_one_is_not() -> None:
    budget = small_budget()
    for _ in range(9):
        async with budget.spend("GET", "/api/projects/1/batch_exports/", write=False):
            pass
    with pytest.raises(OverBudget) as spent:
        async with budget.spend("GET", "/api/projects/1/batch_exports/", write=False):
            pass
    message = spent.value.detail
    assert (
        "Try again at " in message
        and "Nothing was sent to PostHog" in message
        and "10 requests a minute" in message
        and "reads leave 1 a minute" in message
    )
    assert spent.value.retry_at is not None and spent.value.retry_at > time.time() + 30
    with confirmed():  # a confirmed call's re-check uses the reserve
        async with budget.spend("GET", "/api/projects/1/batch_exports/x/", write=False):
            pass


async def test_a_read_waits_a_short_turn_rather_than_failing() -> None:
    budget = small_budget(requests=4, seconds=1.0)
    started = time.monotonic()
    for _ in range(6):
        async with budget.spend("GET", "/api/projects/1/batch_exports/", write=False):
            pass
    assert 0.9 < time.monotonic() - started < 4.0  # the fourth and later waited for the window to slide


async def test_the_query_api_holds_its_slots() -> None:
    budget = small_budget()
    held = anyio.Event()
    order: list[str] = []

    async def first() -> None:
        async with budget.spend("POST", "/api/projects/1/query/", write=False):
            held.set()
            await anyio.sleep(0.5)
            order.append("first done")

    async def second() -> None:
        await held.wait()
        async with budget.spend("POST", "/api/projects/1/query/", write=False):
            order.append("second ran")

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(first)
        tasks.start_soon(second)
    assert order == ["first done", "second ran"]


async def test_a_429_closes_the_budget_for_the_wait_posthog_asks() -> None:
    """PostHog throttled the key anyway (its other users): this read is retried after the wait PostHog asks,
    and another caller's read, arriving meanwhile, waits for it too instead of drawing a second 429."""
    budget = small_budget(requests=100)
    client = PostHogClient(HOST, "phx_test", budget=budget, timeout=10.0)
    path = "/api/projects/1/batch_exports/"
    sent: list[float] = []
    answers = [
        httpx.Response(
            429, json={"type": "throttled_error", "code": "throttled", "detail": "x"}, headers={"Retry-After": "1"}
        ),
        httpx.Response(200, json={"results": []}),
        httpx.Response(200, json={"results": []}),
    ]

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(time.monotonic())
        return answers[len(sent) - 1]

    with respx.mock(base_url=HOST) as mock:
        mock.get(path).mock(side_effect=answer)
        async with anyio.create_task_group() as tasks:
            tasks.start_soon(client.request, "GET", path)
            await anyio.sleep(0.2)  # the other caller's read comes while PostHog's wait runs
            tasks.start_soon(client.request, "GET", path)
    await client.aclose()
    assert len(sent) == 3
    assert all(later - sent[0] >= 0.95 for later in sent[1:]), [t - sent[0] for t in sent]


def test_limits_parse_and_refuse_with_an_example() -> None:
    limits = parse_limits("crud=100/minute,1000/hour;query=120/hour,2")
    assert limits[RequestClass.CRUD].rates == (Rate(100, 60.0), Rate(1000, 3600.0))
    assert limits[RequestClass.QUERY].rates == (Rate(120, 3600.0),) and limits[RequestClass.QUERY].concurrency == 2
    assert parse_limits("crud=48/6s")[RequestClass.CRUD].rates == (Rate(48, 6.0),)
    for bad in ("reads=1/minute", "crud=many/minute", "crud=10/fortnight", "crud=3"):
        with pytest.raises(ConfigError, match="for example crud="):
            parse_limits(bad)
    with pytest.raises(ConfigError, match="POSTHOG_MCP_POSTHOG_SHARE"):
        Settings.from_env({"POSTHOG_MCP_POSTHOG_SHARE": "1.5"})
    assert Settings.from_env({"POSTHOG_MCP_POSTHOG_SHARE": "0.5"}).posthog_share == 0.5


# --- batch-export-wait within the budget (N8) ----------------------------------------------------------


class Running:
    """An upstream whose run never finishes, counting looks, with the server's per-call cap."""

    def __init__(self, cap: int | None = MAX_REQUESTS, spent_after: int | None = None) -> None:
        self.looks = 0
        self.cap = cap
        self.spent_after = spent_after

    @property
    def requests_left(self) -> int | None:
        return None if self.cap is None else self.cap - self.looks

    async def send(self, request: Any) -> Any:
        return await self.request(request.method, request.path)

    async def request(self, method: str, path: str, **kwargs: Any) -> Any:
        if self.spent_after is not None and self.looks >= self.spent_after:
            raise OverBudget("spent", retry_at=time.time() + 3600)
        self.looks += 1
        return {"id": "r", "status": "Running", "created_at": "2026-01-01T00:00:00Z"}


@pytest.fixture
def fast_time(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """batch-export-wait's clock and sleep, without waiting."""
    clock = Clock()

    async def sleep(seconds: float) -> None:
        clock.now += seconds

    monkeypatch.setattr(wait_module.time, "monotonic", clock)
    monkeypatch.setattr(wait_module.anyio, "sleep", sleep)
    return clock


async def test_n8_a_fifty_second_wait_looks_a_bounded_number_of_times(fast_time: Clock) -> None:
    upstream = Running()
    params = WaitParams(
        project_id=1,
        batch_export_id="0190f4b2-0000-7000-8000-000000000001",
        run_id="0190f4b2-0000-7000-8000-000000000002",
        timeout_seconds=50,
    )
    answer = await wait_module.wait(upstream, params)
    assert upstream.looks <= 9, upstream.looks  # was 50: one look a second
    assert answer["done"] is False and answer["next"]["tool"] == "batch-export-wait"
    assert 40 <= answer["waited_seconds"] <= 50


async def test_a_wait_stops_at_its_cap_and_when_the_budget_is_busy(fast_time: Clock) -> None:
    params = WaitParams(
        project_id=1,
        batch_export_id="0190f4b2-0000-7000-8000-000000000001",
        run_id="0190f4b2-0000-7000-8000-000000000002",
        timeout_seconds=50,
    )
    capped = Running(cap=3)
    answer = await wait_module.wait(capped, params)
    assert capped.looks == 3 and "made its" in answer["next"]["why"]
    busy = Running(spent_after=2)
    answer = await wait_module.wait(busy, params)
    assert busy.looks == 2 and "budget is busy" in answer["next"]["why"] and answer["status"] == "Running"


async def test_n8_forty_waits_make_a_bounded_number_of_requests(
    make_sandbox: Callable[..., Any], tmp_path: Path
) -> None:
    """Forty waits at once on a run that keeps running (the sandbox's clock is frozen): before, each looked
    every second (40 waits of 12 s made 520 requests); now each looks at 0, 1, 3, 6 and 11 s."""
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    bigquery = control.export_id("Events to BigQuery (backfilling)")
    running = next(r for r in control.state()["runs"] if r["batch_export"] == bigquery and r["status"] == "Running")
    arguments = {"project_id": 1, "batch_export_id": bigquery, "run_id": running["id"], "timeout_seconds": 12}
    answers: list[Any] = []
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        control.clear_requests()

        async def one(n: int) -> None:
            token = current_caller.set(f"caller-{n % 4}")
            try:
                async with connect(app, "legacy") as client:
                    answers.append(data(await client.call_tool("batch-export-wait", arguments)))
            finally:
                current_caller.reset(token)

        async with anyio.create_task_group() as tasks:
            for n in range(40):
                tasks.start_soon(one, n)
    sent = [r for r in control.requests() if "/runs/" in r["path"]]
    control.close()
    assert len(answers) == 40 and all(a["status"] == "Running" and not a["done"] for a in answers)
    assert len(sent) <= 40 * 5, f"{len(sent)} requests for 40 waits"
    assert not [r for r in sent if r["status"] == 429]
