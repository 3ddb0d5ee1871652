"""State the guard must share between replicas: spent confirmations, writes in flight, previewed plans.

Three kinds of operation, each one atomic step in the store:
- `spend(name, seconds)`: true the first time a confirmation is spent, false ever after (while it
  could still be valid). A confirmation is spent before its write is sent, so two replicas given
  the same token, or the same requestState and answer, cannot both write.
- `hold(name, holder, seconds)` / `release`: a lock while a write that adds something runs (its life
  covers the slowest re-check and write POSTHOG_MCP_TIMEOUT allows: `server.guard.in_flight_seconds`),
  so a copy of it (a client retrying on another replica after a timeout) is refused with what is
  in flight, instead of adding a second export, backfill or retry.
- `keep(name, value, seconds)` / `recall(name)`: a previewed plan, held until its confirmation
  expires, so whichever replica the confirmation reaches applies exactly the plan the person saw.

`InProcessState` serves one process (stdio). `RedisState` serves replicas sharing one Redis
(POSTHOG_MCP_REDIS_URL); when Redis cannot be reached, its operations raise `StateUnavailable`
and the guard refuses the write: without the ledger a write could happen twice.
Names come from `TokenSigner.store_name`: keyed hashes, never a token, nonce or argument.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

KEY_PREFIX = "posthog-batch-exports-mcp:"


class StateUnavailable(Exception):
    """The shared store could not be asked; the message names it (never its password)."""


class SharedState(Protocol):
    where: str
    """Where the state lives, for messages: "in this process" or "Redis at host:port/db"."""

    async def spend(self, name: str, seconds: int) -> bool: ...

    async def hold(self, name: str, holder: dict[str, Any], seconds: int) -> dict[str, Any] | None:
        """Take the lock and answer None, or leave it and answer its current holder."""
        ...

    async def release(self, name: str, holder: dict[str, Any]) -> None: ...

    async def keep(self, name: str, value: dict[str, Any], seconds: int) -> None: ...

    async def recall(self, name: str) -> dict[str, Any] | None:
        """What `keep` stored under this name, or None once it expired (or was never kept here)."""
        ...

    async def aclose(self) -> None: ...


class InProcessState:
    """The same operations for one process; entries expire, so memory stays bounded."""

    where = "in this process"

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self._spent: dict[str, float] = {}
        self._held: dict[str, tuple[float, dict[str, Any]]] = {}
        self._kept: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    def _forget_expired(self, now: float) -> None:
        self._spent = {name: until for name, until in self._spent.items() if until > now}
        self._held = {name: entry for name, entry in self._held.items() if entry[0] > now}
        self._kept = {name: entry for name, entry in self._kept.items() if entry[0] > now}

    async def spend(self, name: str, seconds: int) -> bool:
        with self._lock:
            now = self.clock()
            self._forget_expired(now)
            if name in self._spent:
                return False
            self._spent[name] = now + seconds
            return True

    async def hold(self, name: str, holder: dict[str, Any], seconds: int) -> dict[str, Any] | None:
        with self._lock:
            now = self.clock()
            self._forget_expired(now)
            if name in self._held:
                return self._held[name][1]
            self._held[name] = (now + seconds, holder)
            return None

    async def release(self, name: str, holder: dict[str, Any]) -> None:
        with self._lock:
            entry = self._held.get(name)
            if entry is not None and entry[1] == holder:
                del self._held[name]

    async def keep(self, name: str, value: dict[str, Any], seconds: int) -> None:
        with self._lock:
            now = self.clock()
            self._forget_expired(now)
            self._kept[name] = (now + seconds, json.dumps(value))  # a copy: the caller's dict may change

    async def recall(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            self._forget_expired(self.clock())
            entry = self._kept.get(name)
        return _decoded(entry[1]) if entry is not None else None

    async def aclose(self) -> None:
        return None


def _decoded(text: str | bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(text)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


# Delete the lock only if it is still ours: it may have expired and been taken by another copy.
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


def describe_redis(url: str) -> str:
    """host:port/db of a Redis URL, without its user or password."""
    parts = urlsplit(url)
    db = parts.path.strip("/") or "0"
    return f"Redis at {parts.hostname or 'localhost'}:{parts.port or 6379}/{db}"


class RedisState:
    """The operations on Redis: `SET NX` with an expiry, and a compare-and-delete release."""

    def __init__(self, url: str, *, timeout: float = 2.0) -> None:
        from redis.asyncio import Redis
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        self.where = describe_redis(url)
        # Short timeouts and one retry: an unreachable Redis must refuse a write within seconds,
        # and a Redis that came back is used again on the next call (a fresh connection).
        self._redis: Any = Redis.from_url(
            url,
            socket_connect_timeout=timeout,
            socket_timeout=timeout,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 1),
            health_check_interval=0,
        )
        self._release = self._redis.register_script(_RELEASE)

    async def _ask(self, operation: Callable[[], Any]) -> Any:
        from redis.exceptions import RedisError

        try:
            return await operation()
        except (RedisError, OSError) as error:
            raise StateUnavailable(f"{self.where} could not be reached ({type(error).__name__})") from None

    async def spend(self, name: str, seconds: int) -> bool:
        done = await self._ask(lambda: self._redis.set(KEY_PREFIX + name, b"1", nx=True, ex=max(1, seconds)))
        return bool(done)

    async def hold(self, name: str, holder: dict[str, Any], seconds: int) -> dict[str, Any] | None:
        value = json.dumps(holder, sort_keys=True)
        key = KEY_PREFIX + name
        for _ in range(3):  # the holder may let go between our SET and GET
            if await self._ask(lambda: self._redis.set(key, value, nx=True, ex=max(1, seconds))):
                return None
            current = await self._ask(lambda: self._redis.get(key))
            if current is not None:
                try:
                    found = json.loads(current)
                except ValueError:
                    found = {}
                return found if isinstance(found, dict) else {}
        return {}

    async def release(self, name: str, holder: dict[str, Any]) -> None:
        value = json.dumps(holder, sort_keys=True)
        await self._ask(lambda: self._release(keys=[KEY_PREFIX + name], args=[value]))

    async def keep(self, name: str, value: dict[str, Any], seconds: int) -> None:
        text = json.dumps(value, sort_keys=True)
        await self._ask(lambda: self._redis.set(KEY_PREFIX + name, text, ex=max(1, seconds)))

    async def recall(self, name: str) -> dict[str, Any] | None:
        found = await self._ask(lambda: self._redis.get(KEY_PREFIX + name))
        return _decoded(found) if found is not None else None

    async def aclose(self) -> None:
        await self._redis.aclose()


def open_shared_state(redis_url: str | None) -> SharedState:
    return RedisState(redis_url) if redis_url else InProcessState()
