"""Personal API keys, scopes and per-key throttling (docs/posthog-api.md, "Keys and scopes", "Errors and headers")."""

from __future__ import annotations

import math
import re
import threading
import time
from collections import deque
from typing import Any

from .config import SandboxKey
from .errors import authentication_failed, not_authenticated, permission_denied, throttled

NO_PAK_ACCESS = "This action does not support personal API key access"
NO_PAK_ACCESS_GEN1 = "This action does not support Personal API Key access"
_BEARER = re.compile(r"^Bearer\s+(\S.+)$")


def find_key(headers: Any, body: Any, query: Any, keys: dict[str, SandboxKey]) -> SandboxKey:
    """Bearer header, then body `personal_api_key`, then query `personal_api_key`; first match wins."""
    header = headers.get("authorization", "")
    match = _BEARER.match(header)
    if match:
        token = match.group(1).strip()
        if token.startswith("pha_"):
            raise authentication_failed("Invalid access token.")  # an OAuth token, not a PAK
        return _lookup(token, "Authorization header", keys)
    if isinstance(body, dict) and body.get("personal_api_key"):
        return _lookup(str(body["personal_api_key"]), "body", keys)
    if query.get("personal_api_key"):
        return _lookup(query["personal_api_key"], "query string", keys)
    raise not_authenticated()


def _lookup(value: str, source: str, keys: dict[str, SandboxKey]) -> SandboxKey:
    key = keys.get(value)
    if key is None:
        raise authentication_failed(f"Personal API key found in request {source} is invalid.")
    return key


def check_scope(key: SandboxKey, required: str | None, project_id: int | None, generation: int = 3) -> None:
    """APIScopePermission (docs/posthog-api.md, "Keys and scopes").

    Gen-3: an unmapped action fails first, then scoped_teams, `*`, write ⊇ read; a legacy key (no scopes)
    holds none of them. Gen-1: legacy keys pass everything, and the message is capitalised.
    """
    if not key.scopes and generation < 3:
        return
    if required is None:
        raise permission_denied(NO_PAK_ACCESS if generation >= 3 else NO_PAK_ACCESS_GEN1)
    if project_id is not None and key.scoped_teams and project_id not in key.scoped_teams:
        raise permission_denied(f"API key does not have access to the requested project: ID {project_id}.")
    if "*" in key.scopes:
        return
    accepted = {required}
    if required.endswith(":read"):
        accepted.add(required[: -len(":read")] + ":write")
    if not accepted & set(key.scopes):
        raise permission_denied(f"API key missing required scope '{required}'")


class Throttle:
    """DRF's BurstRateThrottle (480/minute) and SustainedRateThrottle (4800/hour), per key, real time."""

    RATES = ((480, 60.0), (4800, 3600.0))

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._history: dict[tuple[str, float], deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        if not self.enabled:
            return
        now = time.monotonic()
        waits = []
        with self._lock:
            histories = []
            for num, duration in self.RATES:
                history = self._history.setdefault((key, duration), deque())
                while history and history[-1] <= now - duration:
                    history.pop()
                if len(history) >= num:
                    remaining = duration - (now - history[-1]) if history else duration
                    available = num - len(history) + 1
                    waits.append(remaining / available if available > 0 else remaining)
                histories.append(history)
            if not waits:
                for history in histories:
                    history.appendleft(now)
                return
        raise throttled(math.ceil(max(waits)))

    def reset(self) -> None:
        with self._lock:
            self._history.clear()
