"""Request limits at the HTTP edge: so many requests per caller per window, a share of the connections
per caller (`InFlight`), and a lock-out for addresses that keep presenting wrong bearer tokens.

One address may be many people (behind a reverse proxy that names no client, or a NAT), so a
locked-out address still lets in the callers it was serving: each caller served from an address is
remembered there for a day ("vouched"). Anything else from a locked address waits, a right token
never served from it included, so guessing from it stays slow and a 429 says nothing about a guess.

Counters are fixed windows. With POSTHOG_MCP_REDIS_URL they live in Redis, so every replica
counts against the same limit; otherwise in this process. When Redis cannot be reached the
counters fall back to this process (each replica then limits on its own) rather than
letting every request through or refusing every request: a limit protects PostHog's rate
limit and slows guessing, and neither needs Redis to do so roughly.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from server.config import Settings

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

KEY_PREFIX = "pbe-mcp"
# A model-driven client makes a few calls a minute; 240 leaves room for bursts and an app's refreshes
# while one caller cannot spend the whole of PostHog's rate limit for the key everyone shares.
DEFAULT_REQUESTS_PER_WINDOW = 240
AUTH_FAILURE_WINDOW_SECONDS = 300.0
REDIS_TIMEOUT_SECONDS = 0.5
REDIS_PAUSE_AFTER_ERROR_SECONDS = 5.0
FALLBACK_WARNING_EVERY_SECONDS = 60.0
MAX_IN_PROCESS_KEYS = 100_000
VOUCH_SECONDS = 24 * 3600.0
"""How long an address remembers a caller it served: that caller gets past the address's lock-out."""
VOUCH_REFRESH_SECONDS = 600.0
"""A caller's every request renews the memory, but one process writes it at most this often."""


class WindowCounter(Protocol):
    async def hit(self, key: str, window: float) -> tuple[int, float]:
        """Count one more in the current window: (count so far, seconds until the window ends)."""
        ...

    async def peek(self, key: str, window: float) -> tuple[int, float]:
        """The current window's count, without adding to it."""
        ...

    async def mark(self, key: str, seconds: float) -> None:
        """Remember `key` for `seconds` from now."""
        ...

    async def marked(self, key: str) -> bool:
        """Whether `key` is remembered."""
        ...

    async def aclose(self) -> None: ...


def _window(now: float, window: float) -> tuple[int, float]:
    index = int(now // window)
    return index, (index + 1) * window - now


class InProcessCounter:
    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._counts: dict[str, tuple[int, int]] = {}
        self._marks: dict[str, float] = {}  # key -> until, oldest first

    async def hit(self, key: str, window: float) -> tuple[int, float]:
        index, remaining = _window(self.clock(), window)
        held_index, count = self._counts.get(key, (index, 0))
        count = count + 1 if held_index == index else 1
        if len(self._counts) >= MAX_IN_PROCESS_KEYS and key not in self._counts:
            self._forget_old(index)
        self._counts[key] = (index, count)
        return count, remaining

    async def peek(self, key: str, window: float) -> tuple[int, float]:
        index, remaining = _window(self.clock(), window)
        held_index, count = self._counts.get(key, (index, 0))
        return (count if held_index == index else 0), remaining

    def _forget_old(self, index: int) -> None:
        # Only keys of past windows go; if every key is current the dict holds at most the live callers.
        self._counts = {k: v for k, v in self._counts.items() if v[0] == index}

    async def mark(self, key: str, seconds: float) -> None:
        now = self.clock()
        if len(self._marks) >= MAX_IN_PROCESS_KEYS and key not in self._marks:
            self._marks = {k: until for k, until in self._marks.items() if until > now}
            if len(self._marks) >= MAX_IN_PROCESS_KEYS:
                self._marks.pop(next(iter(self._marks)))  # the oldest
        self._marks.pop(key, None)
        self._marks[key] = now + seconds

    async def marked(self, key: str) -> bool:
        return self._marks.get(key, float("-inf")) > self.clock()

    async def aclose(self) -> None:
        return None


class RedisCounter:
    """INCR on a key per window, which expires with its window; every replica shares it."""

    def __init__(self, url: str, clock: Callable[[], float] = time.time) -> None:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError, TimeoutError

        self.clock = clock
        self.redis: Redis = Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            # One immediate retry on a fresh connection: a pooled one may predate a Redis restart.
            retry=Retry(NoBackoff(), 1),
            retry_on_error=[ConnectionError, TimeoutError],
        )
        self.fallback = InProcessCounter(clock)
        self.pause = REDIS_PAUSE_AFTER_ERROR_SECONDS
        self._paused_until = float("-inf")
        self._warned_at = float("-inf")

    def _paused(self) -> bool:
        # After a failure, requests do not each wait for Redis's timeout while it is away.
        return time.monotonic() < self._paused_until

    async def hit(self, key: str, window: float) -> tuple[int, float]:
        index, remaining = _window(self.clock(), window)
        name = f"{key}:{index}"
        if self._paused():
            return await self.fallback.hit(key, window)
        try:
            # One round trip; no MULTI needed: the EXPIRE always follows its INCR and only bounds the key's life.
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.incr(name)
                pipe.expire(name, int(window) + 1)
                count, _ = await pipe.execute()
            return int(count), remaining
        except Exception as error:  # redis.RedisError, OSError, timeouts: count here instead
            self._warn(error)
            return await self.fallback.hit(key, window)

    async def peek(self, key: str, window: float) -> tuple[int, float]:
        index, remaining = _window(self.clock(), window)
        if self._paused():
            return await self.fallback.peek(key, window)
        try:
            value = await self.redis.get(f"{key}:{index}")
            return int(value or 0), remaining
        except Exception as error:
            self._warn(error)
            return await self.fallback.peek(key, window)

    async def mark(self, key: str, seconds: float) -> None:
        if self._paused():
            return await self.fallback.mark(key, seconds)
        try:
            await self.redis.set(key, b"1", ex=max(1, int(seconds)))
        except Exception as error:
            self._warn(error)
            await self.fallback.mark(key, seconds)

    async def marked(self, key: str) -> bool:
        if self._paused():
            return await self.fallback.marked(key)
        try:
            return bool(await self.redis.exists(key))
        except Exception as error:
            self._warn(error)
            return await self.fallback.marked(key)

    def _warn(self, error: Exception) -> None:
        now = time.monotonic()
        self._paused_until = now + self.pause
        if now - self._warned_at >= FALLBACK_WARNING_EVERY_SECONDS:
            self._warned_at = now
            log.warning(
                "Redis is unreachable for request limits (%s); counting in this process until it is back.",
                type(error).__name__,
            )

    async def aclose(self) -> None:
        await self.redis.aclose()


def _key(kind: str, value: str) -> str:
    # Hashed: a key never holds an address or a subject in clear, and stays short.
    return f"{KEY_PREFIX}:{kind}:{hashlib.sha256(value.encode()).hexdigest()[:32]}"


@dataclass(frozen=True)
class LimitRules:
    requests: int
    """Requests per caller per window; 0 turns the limit off."""
    window: float
    failures: int
    """Wrong bearer tokens per address per failure window before that address is locked out."""
    failure_window: float


class Limits:
    def __init__(self, rules: LimitRules, counter: WindowCounter) -> None:
        self.rules = rules
        self.counter = counter
        self._vouched_at: dict[str, float] = {}  # key -> when this process last wrote it (monotonic)

    @classmethod
    def from_settings(cls, settings: Settings, *, authenticated: bool) -> Limits:
        requests = settings.rate_limit
        if requests is None:
            # One local user on an unauthenticated loopback server has nobody to share with.
            requests = DEFAULT_REQUESTS_PER_WINDOW if authenticated else 0
        rules = LimitRules(requests, settings.rate_window, settings.auth_failure_limit, AUTH_FAILURE_WINDOW_SECONDS)
        counter: WindowCounter = RedisCounter(settings.redis_url) if settings.redis_url else InProcessCounter()
        return cls(rules, counter)

    async def admit(self, caller: str) -> float | None:
        """None when the caller may go on; otherwise the seconds to wait."""
        if self.rules.requests <= 0:
            return None
        count, remaining = await self.counter.hit(_key("rate", caller), self.rules.window)
        return remaining if count > self.rules.requests else None

    async def locked_out(self, address: str) -> float | None:
        """None unless the address used up its wrong tokens; then the seconds until it may try again."""
        if self.rules.failures <= 0:
            return None
        count, remaining = await self.counter.peek(_key("authfail", address), self.rules.failure_window)
        return remaining if count >= self.rules.failures else None

    async def failed(self, address: str) -> None:
        if self.rules.failures > 0:
            await self.counter.hit(_key("authfail", address), self.rules.failure_window)

    async def served(self, address: str, caller: str) -> None:
        """Remember that `address` served `caller`, so its lock-out (someone else's guesses) lets the caller in."""
        if self.rules.failures <= 0:
            return
        key = _key("served", f"{address}\n{caller}")
        now = time.monotonic()
        if now - self._vouched_at.get(key, float("-inf")) < VOUCH_REFRESH_SECONDS:
            return
        if len(self._vouched_at) >= MAX_IN_PROCESS_KEYS:
            self._vouched_at.clear()  # only a cache of what was written: the next request writes again
        self._vouched_at[key] = now
        await self.counter.mark(key, VOUCH_SECONDS)

    async def vouched(self, address: str, caller: str) -> bool:
        """Whether `address` served `caller` within VOUCH_SECONDS."""
        return await self.counter.marked(_key("served", f"{address}\n{caller}"))

    async def aclose(self) -> None:
        await self.counter.aclose()


MIN_CALLER_SHARE = 2


class InFlight:
    """Requests in flight per caller in this process, each caller held to its share of the connections.

    A caller's share is the connections divided among the callers holding some, with one part more kept free
    for a caller who holds none yet: alone, a caller may hold half; beside one other, a third; and so on,
    never fewer than MIN_CALLER_SHARE. So however many long calls (a wait holds its connection up to 50 s)
    two callers start, a third one's request still finds a connection. Counted per replica, as connections
    are. A request past its caller's share is answered at once (429), before it holds anything.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._held: dict[str, int] = {}

    def share_of(self, caller: str) -> int:
        others = sum(1 for name, count in self._held.items() if count and name != caller)
        return max(MIN_CALLER_SHARE, self.capacity // (others + 2))

    @contextmanager
    def holding(self, caller: str) -> Iterator[int | None]:
        """Hold one request for `caller` while the block runs (yields None), or yield the share it is at."""
        share = self.share_of(caller)
        if self._held.get(caller, 0) >= share:
            yield share
            return
        self._held[caller] = self._held.get(caller, 0) + 1
        try:
            yield None
        finally:
            left = self._held[caller] - 1
            if left:
                self._held[caller] = left
            else:
                del self._held[caller]
