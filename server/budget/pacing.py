"""The one PostHog request budget: every request the PostHog client sends is admitted here first.

One personal API key serves everyone behind a deployment, and PostHog throttles the key (docs/posthog-api.md,
"Rate limits"). So the server spends at most a share of PostHog's limits (POSTHOG_MCP_POSTHOG_SHARE, 0.9 by
default, the rest left for clock skew and the key's other users), counted in one ledger per key: in Redis when
POSTHOG_MCP_REDIS_URL is set, so every replica spends from the same budget, otherwise in this process
(server/budget/ledger.py). Before a request is sent:
- it waits its turn when the budget is busy: a read up to a few seconds, a write (or a confirmed call's
  re-check) longer, since a reserve is kept for them;
- past that, it is not sent, and the call answers when to try again (`tools.upstream.OverBudget`);
- a Query API request also takes one of PostHog's concurrent query slots.
A 429 PostHog sends anyway (the key's other users) closes the class for the wait it asks, for every replica.
"""

from __future__ import annotations

import hashlib
import math
import random
import secrets
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime

import anyio

from server.budget.ledger import InProcessLedger, Ledger, RedisLedger, Window
from server.budget.limits import PUBLISHED, ClassLimits, RequestClass, parse_limits, request_class
from server.caller import caller_name
from server.config import Settings
from tools.upstream import OverBudget

READ_WAIT_SECONDS = 5.0
"""How long a read waits for room in the budget before its call is told when to try again."""
WRITE_WAIT_SECONDS = 20.0
SLOT_POLL_SECONDS = 0.2
SLOT_SECONDS = 90.0
"""A query slot whose holder died (a replica killed mid-request) frees itself after this long."""
RESERVE = 0.1
"""The share of each window that reads leave to writes and confirmed calls."""
DEFAULT_SHARE = 0.9
KEY_PREFIX = "posthog-batch-exports-mcp:budget:"

_confirmed: ContextVar[bool] = ContextVar("posthog_budget_confirmed", default=False)


@contextmanager
def confirmed() -> Iterator[None]:
    """Requests made inside belong to a write a person confirmed (its re-check, the write): they may use the
    reserve, so a busy budget never starves a confirmation."""
    token = _confirmed.set(True)
    try:
        yield
    finally:
        _confirmed.reset(token)


def _windows(limits: ClassLimits, share: float) -> tuple[Window, ...]:
    windows = []
    for rate in limits.rates:
        limit = max(1, math.floor(rate.requests * share))
        reserve = min(limit - 1, max(1, math.ceil(limit * RESERVE))) if limit > 1 else 0
        windows.append(Window(rate.seconds, limit, reserve))
    return tuple(windows)


def _clock_time(seconds_from_now: float) -> str:
    when = datetime.fromtimestamp(time.time() + seconds_from_now, UTC).replace(microsecond=0)
    return when.isoformat().replace("+00:00", "Z")


class Budget:
    """PostHog's limits for one key, the share of them this server spends, and the ledger that counts them."""

    def __init__(
        self,
        ledger: Ledger,
        limits: dict[RequestClass, ClassLimits] | None = None,
        *,
        share: float = DEFAULT_SHARE,
        scope: str = KEY_PREFIX + "local",
    ) -> None:
        self.ledger = ledger
        self.limits = dict(limits or PUBLISHED)
        self.share = share
        self.scope = scope
        self.windows = {kind: _windows(limits, share) for kind, limits in self.limits.items()}

    @classmethod
    def from_settings(cls, settings: Settings) -> Budget:
        # One budget per key (and host): replicas sharing a Redis for several keys keep them apart. Hashed,
        # so the key never appears in Redis.
        identity = f"{settings.host}\n{settings.api_key or ''}".encode()
        scope = KEY_PREFIX + hashlib.sha256(identity).hexdigest()[:24]
        ledger: Ledger = RedisLedger(settings.redis_url) if settings.redis_url else InProcessLedger()
        return cls(ledger, parse_limits(settings.posthog_limits), share=settings.posthog_share, scope=scope)

    def describe(self) -> str:
        """What this server spends, for the start-up log and the docs."""
        parts = []
        for kind, windows in self.windows.items():
            spent = ", ".join(f"{w.limit} per {w.seconds:g} s" for w in windows)
            parts.append(f"{kind.value} {spent} (of {self.limits[kind]})")
        return "; ".join(parts) + f", {self.ledger.where}"

    @asynccontextmanager
    async def spend(self, method: str, path: str, *, write: bool, deadline: float | None = None) -> AsyncIterator[None]:
        """Admit one request (waiting its turn), hold a query slot while it runs, or raise OverBudget.

        `deadline` is the `anyio.current_time()` by which the request must have been answered: waiting
        never runs past it.
        """
        kind = request_class(method, path)
        first_class = write or _confirmed.get()
        patience = WRITE_WAIT_SECONDS if first_class else READ_WAIT_SECONDS
        if deadline is not None:
            patience = min(patience, max(0.0, deadline - anyio.current_time() - 1.0))
        scope = f"{self.scope}:{kind.value}"
        caller = hashlib.sha256(caller_name().encode()).hexdigest()[:16]
        entry = secrets.token_hex(8)
        waited = 0.0
        while True:
            wait = await self.ledger.admit(scope, self.windows[kind], caller, first_class, entry)
            if wait <= 0:
                break
            if waited + wait > patience:
                raise self._spent(kind, first_class, wait)
            # A little jitter, so callers that waited for the same moment do not all ask at once.
            pause = wait + random.uniform(0.0, 0.05)
            await anyio.sleep(pause)
            waited += pause
        concurrency = self.limits[kind].concurrency
        if concurrency is None:
            yield
            return
        while not await self.ledger.take_slot(scope, entry, concurrency, SLOT_SECONDS):
            if waited + SLOT_POLL_SECONDS > patience:
                raise OverBudget(
                    f"PostHog runs at most {concurrency} queries of this key at once and they are all taken; "
                    f"try again in a few seconds (at {_clock_time(2)}). Nothing was sent to PostHog.",
                    retry_at=time.time() + 2,
                )
            await anyio.sleep(SLOT_POLL_SECONDS)
            waited += SLOT_POLL_SECONDS
        try:
            yield
        finally:
            with anyio.CancelScope(shield=True):
                await self.ledger.free_slot(scope, entry)

    async def throttled(self, method: str, path: str, seconds: float) -> None:
        """PostHog answered 429 and asked to wait `seconds`: nothing of that class goes until then."""
        await self.ledger.block(f"{self.scope}:{request_class(method, path).value}", seconds)

    def _spent(self, kind: RequestClass, first_class: bool, wait: float) -> OverBudget:
        windows = self.windows[kind]
        noun = "queries" if kind is RequestClass.QUERY else "requests"
        spends = " and ".join(
            f"{w.limit} {noun if i == 0 else ''} {_per(w.seconds)}".replace("  ", " ") for i, w in enumerate(windows)
        )
        kept = (
            ""
            if first_class
            else f"; reads leave {windows[0].reserve} {_per(windows[0].seconds)} of it to confirmed writes"
        )
        seconds = max(1, math.ceil(wait))
        return OverBudget(
            f"PostHog's request budget for this key is spent for now: this server sends PostHog at most {spends} "
            f"({self.share:.0%} of PostHog's limits, {self.limits[kind]}), shared by every caller and replica{kept}. "
            f"Try again at {_clock_time(seconds)} (in {seconds} s). Nothing was sent to PostHog.",
            retry_at=time.time() + seconds,
        )

    async def aclose(self) -> None:
        await self.ledger.aclose()


def _per(seconds: float) -> str:
    return {60.0: "a minute", 3600.0: "an hour", 86400.0: "a day", 1.0: "a second"}.get(seconds, f"per {seconds:g} s")
