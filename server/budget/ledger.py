"""Where the PostHog request budget is counted: in this process, or in Redis for every replica at once.

PostHog's throttles are DRF's: a sliding log of request times per key and scope, and a request is refused
when the log of the last `duration` seconds already holds `num_requests` (docs/posthog-api.md, "Rate
limits"). The ledger keeps the same log, per class of request and window, so a request it admits is one
PostHog's throttle would admit too, and a fixed window's double burst at its edge cannot happen.

One operation, atomic in its store (a Lua script in Redis): `admit` either records the request in every
window and answers 0, or records nothing and answers how many seconds to wait. Its rules, per window:
- a write (or a confirmed call's re-check) may fill the window to its limit;
- a read stops short of it by a reserve, so writes and confirmations are never starved by reads;
- once a window is half full, a caller whose own reads already hold its share of the window (the limit
  divided among the callers active in it) waits, so one caller's load cannot starve another's reads.
PostHog's answer itself can close a class for a while (`block`, after a 429 with Retry-After), and the
Query API's concurrency is a set of slots that expire if a holder dies.

With Redis unreachable, the ledger counts in this process until it is back (each replica then paces on
its own, and says so in its log once a minute) rather than stopping every request.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

REDIS_TIMEOUT_SECONDS = 0.5
REDIS_PAUSE_AFTER_ERROR_SECONDS = 5.0
WARNING_EVERY_SECONDS = 60.0


@dataclass(frozen=True)
class Window:
    seconds: float
    limit: int
    """What this server may spend of PostHog's limit for the window."""
    reserve: int
    """Kept for writes: reads stop at `limit - reserve`."""


class Ledger(Protocol):
    where: str

    async def admit(self, scope: str, windows: tuple[Window, ...], caller: str, write: bool, entry: str) -> float:
        """Record one request (0.0), or the seconds until it could be admitted (nothing recorded)."""
        ...

    async def block(self, scope: str, seconds: float) -> None:
        """Admit nothing of `scope` for `seconds` (PostHog asked to wait)."""
        ...

    async def take_slot(self, scope: str, entry: str, limit: int, ttl: float) -> bool: ...

    async def free_slot(self, scope: str, entry: str) -> None: ...

    async def aclose(self) -> None: ...


def _wait_for(times: list[float] | deque[float], over: int, seconds: float, now: float) -> float:
    """Seconds until enough of the oldest `times` leave the window that `over` fewer remain."""
    oldest = sorted(times)[over - 1]
    return max(0.001, oldest + seconds - now)


class InProcessLedger:
    where = "in this process"

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._logs: dict[str, deque[float]] = {}
        self._callers: dict[str, dict[str, deque[float]]] = {}
        self._blocked: dict[str, float] = {}
        self._slots: dict[str, dict[str, float]] = {}

    def _log(self, name: str, seconds: float, now: float) -> deque[float]:
        log_ = self._logs.setdefault(name, deque())
        while log_ and log_[0] <= now - seconds:
            log_.popleft()
        return log_

    def _caller_logs(self, name: str, seconds: float, now: float) -> dict[str, deque[float]]:
        callers = self._callers.setdefault(name, {})
        for caller in list(callers):
            times = callers[caller]
            while times and times[0] <= now - seconds:
                times.popleft()
            if not times:
                del callers[caller]
        return callers

    async def admit(self, scope: str, windows: tuple[Window, ...], caller: str, write: bool, entry: str) -> float:
        now = self.clock()
        wait = max(0.0, self._blocked.get(scope, 0.0) - now)
        found = []
        for window in windows:
            name = f"{scope}:{window.seconds:g}"
            times = self._log(name, window.seconds, now)
            callers = self._caller_logs(name, window.seconds, now)
            allowed = window.limit if write else window.limit - window.reserve
            if len(times) >= allowed:
                wait = max(wait, _wait_for(times, len(times) - allowed + 1, window.seconds, now))
            elif not write and 2 * len(times) >= allowed:
                active = len(callers) + (0 if caller in callers else 1)
                share = max(1, allowed // active)
                mine = callers.get(caller, deque())
                if len(mine) >= share:
                    wait = max(wait, _wait_for(mine, len(mine) - share + 1, window.seconds, now))
            found.append((times, callers))
        if wait > 0:
            return wait
        for times, callers in found:
            times.append(now)
            callers.setdefault(caller, deque()).append(now)
        return 0.0

    async def block(self, scope: str, seconds: float) -> None:
        self._blocked[scope] = max(self._blocked.get(scope, 0.0), self.clock() + seconds)

    async def take_slot(self, scope: str, entry: str, limit: int, ttl: float) -> bool:
        now = self.clock()
        slots = {k: v for k, v in self._slots.get(scope, {}).items() if v > now}
        self._slots[scope] = slots
        if len(slots) >= limit:
            return False
        slots[entry] = now + ttl
        return True

    async def free_slot(self, scope: str, entry: str) -> None:
        self._slots.get(scope, {}).pop(entry, None)

    async def aclose(self) -> None:
        return None


# KEYS: none (names are built from the scope, so every key of one budget shares its prefix).
# ARGV: scope, caller, entry, write (1/0), then per window: seconds, limit, reserve.
# Times are Redis's own (TIME), so replicas with drifting clocks still share one log.
_ADMIT = """
local scope, caller, entry, write = ARGV[1], ARGV[2], ARGV[3], ARGV[4] == '1'
local t = redis.call('time')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local wait = 0
local blocked = tonumber(redis.call('get', scope .. ':blocked') or '0')
if blocked > now then wait = blocked - now end
local found = {}
local i = 5
while ARGV[i] do
  local seconds, limit, reserve = tonumber(ARGV[i]), tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  local name = scope .. ':' .. ARGV[i]
  local mine = name .. ':caller:' .. caller
  local callers = name .. ':callers'
  redis.call('zremrangebyscore', name, '-inf', now - seconds)
  redis.call('zremrangebyscore', callers, '-inf', now - seconds)
  redis.call('zremrangebyscore', mine, '-inf', now - seconds)
  local count = redis.call('zcard', name)
  local allowed = limit
  if not write then allowed = limit - reserve end
  if count >= allowed then
    local oldest = redis.call('zrange', name, count - allowed, count - allowed, 'withscores')
    wait = math.max(wait, tonumber(oldest[2]) + seconds - now, 0.001)
  elseif (not write) and 2 * count >= allowed then
    local active = redis.call('zcard', callers)
    if not redis.call('zscore', callers, caller) then active = active + 1 end
    local share = math.max(1, math.floor(allowed / active))
    local held = redis.call('zcard', mine)
    if held >= share then
      local oldest = redis.call('zrange', mine, held - share, held - share, 'withscores')
      wait = math.max(wait, tonumber(oldest[2]) + seconds - now, 0.001)
    end
  end
  found[#found + 1] = {name, mine, callers, seconds}
  i = i + 3
end
if wait > 0 then return tostring(wait) end
for _, w in ipairs(found) do
  local life = math.ceil(w[4]) + 1
  redis.call('zadd', w[1], now, entry)
  redis.call('expire', w[1], life)
  redis.call('zadd', w[2], now, entry)
  redis.call('expire', w[2], life)
  redis.call('zadd', w[3], now, caller)
  redis.call('expire', w[3], life)
end
return '0'
"""

# ARGV: scope, seconds.
_BLOCK = """
local t = redis.call('time')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local until_ = now + tonumber(ARGV[2])
local held = tonumber(redis.call('get', ARGV[1] .. ':blocked') or '0')
if until_ > held then
  redis.call('set', ARGV[1] .. ':blocked', tostring(until_), 'px', math.ceil(tonumber(ARGV[2]) * 1000) + 1)
end
return 1
"""

# ARGV: scope, entry, limit, ttl seconds.
_TAKE_SLOT = """
local t = redis.call('time')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local name = ARGV[1] .. ':slots'
redis.call('zremrangebyscore', name, '-inf', now)
if redis.call('zcard', name) >= tonumber(ARGV[3]) then return 0 end
redis.call('zadd', name, now + tonumber(ARGV[4]), ARGV[2])
redis.call('expire', name, math.ceil(tonumber(ARGV[4])) + 1)
return 1
"""


class RedisLedger:
    """The same operations in Redis, one script each, shared by every replica."""

    def __init__(self, url: str, clock: Callable[[], float] = time.monotonic) -> None:
        from redis.asyncio import Redis
        from redis.asyncio.retry import Retry
        from redis.backoff import NoBackoff
        from redis.exceptions import ConnectionError, TimeoutError

        self.where = "Redis"
        self.redis: Redis = Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT_SECONDS,
            socket_connect_timeout=REDIS_TIMEOUT_SECONDS,
            retry=Retry(NoBackoff(), 1),
            retry_on_error=[ConnectionError, TimeoutError],
        )
        self._admit = self.redis.register_script(_ADMIT)
        self._block = self.redis.register_script(_BLOCK)
        self._take = self.redis.register_script(_TAKE_SLOT)
        self.fallback = InProcessLedger(clock)
        self._paused_until = float("-inf")
        self._warned_at = float("-inf")

    def _paused(self) -> bool:
        return time.monotonic() < self._paused_until

    def _failed(self, error: Exception) -> None:
        now = time.monotonic()
        self._paused_until = now + REDIS_PAUSE_AFTER_ERROR_SECONDS
        if now - self._warned_at >= WARNING_EVERY_SECONDS:
            self._warned_at = now
            log.warning(
                "%s is unreachable for the PostHog request budget (%s); pacing in this process until it is back.",
                self.where,
                type(error).__name__,
            )

    async def admit(self, scope: str, windows: tuple[Window, ...], caller: str, write: bool, entry: str) -> float:
        if self._paused():
            return await self.fallback.admit(scope, windows, caller, write, entry)
        args: list[Any] = [scope, caller, entry, "1" if write else "0"]
        for window in windows:
            args += [f"{window.seconds:g}", window.limit, window.reserve]
        try:
            answer = await self._admit(keys=[], args=args)
        except Exception as error:  # redis.RedisError, OSError, timeouts: pace here instead
            self._failed(error)
            return await self.fallback.admit(scope, windows, caller, write, entry)
        wait = float(answer.decode() if isinstance(answer, bytes) else answer)
        return wait if math.isfinite(wait) else 1.0

    async def block(self, scope: str, seconds: float) -> None:
        await self.fallback.block(scope, seconds)
        if self._paused():
            return
        try:
            await self._block(keys=[], args=[scope, f"{seconds:.3f}"])
        except Exception as error:
            self._failed(error)

    async def take_slot(self, scope: str, entry: str, limit: int, ttl: float) -> bool:
        if self._paused():
            return await self.fallback.take_slot(scope, entry, limit, ttl)
        try:
            return bool(await self._take(keys=[], args=[scope, entry, limit, f"{ttl:.3f}"]))
        except Exception as error:
            self._failed(error)
            return await self.fallback.take_slot(scope, entry, limit, ttl)

    async def free_slot(self, scope: str, entry: str) -> None:
        await self.fallback.free_slot(scope, entry)
        if self._paused():
            return
        try:
            await self.redis.zrem(f"{scope}:slots", entry)
        except Exception as error:
            self._failed(error)

    async def aclose(self) -> None:
        await self.redis.aclose()
