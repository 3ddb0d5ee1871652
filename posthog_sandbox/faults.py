"""Injected upstream faults and the log of every `/api/` request received (test controls)."""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import asdict, dataclass
from typing import Any

from .errors import validation


@dataclass
class FaultRule:
    status: int | None = None
    retry_after: str | None = None
    latency_ms: int = 0
    drop_connection: bool = False
    malformed_json: bool = False
    html: bool = False
    database_unavailable: bool = False  # 503 `database_unavailable` with Retry-After: 1, the write not applied
    detail: str | None = None  # the envelope's detail (status 400 unless given): an error that quotes stored text
    count: int = 1  # -1 = until cleared
    method: str | None = None
    path_contains: str | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.method and self.method.upper() != method.upper():
            return False
        return not self.path_contains or self.path_contains in path


def parse_rule(body: Any) -> FaultRule:
    if not isinstance(body, dict):
        raise validation("Expected a JSON object.")
    unknown = set(body) - set(FaultRule.__dataclass_fields__)
    if unknown:
        raise validation(f"Unknown fault field/s: {', '.join(sorted(unknown))}")
    rule = FaultRule(**body)
    if rule.status is not None and not (isinstance(rule.status, int) and 100 <= rule.status <= 599):
        raise validation("'status' must be an HTTP status code.", "status")
    if not isinstance(rule.count, int) or rule.count == 0 or rule.count < -1:
        raise validation("'count' must be a positive integer or -1.", "count")
    if rule.retry_after is not None:
        rule.retry_after = str(rule.retry_after)
    if rule.detail is not None and not isinstance(rule.detail, str):
        raise validation("'detail' must be a string.", "detail")
    return rule


class Faults:
    def __init__(self) -> None:
        self._rules: list[FaultRule] = []
        self._lock = threading.Lock()

    def add(self, rule: FaultRule) -> None:
        with self._lock:
            self._rules.append(rule)

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return [asdict(r) for r in self._rules]

    def take(self, method: str, path: str) -> FaultRule | None:
        """The first matching rule, consuming one of its uses."""
        with self._lock:
            for rule in self._rules:
                if rule.matches(method, path):
                    if rule.count > 0:
                        rule.count -= 1
                        if rule.count == 0:
                            self._rules.remove(rule)
                    return rule
        return None


class RequestLog:
    """A bounded ring of the `/api/` requests received."""

    def __init__(self, size: int = 5000):
        self._items: deque[dict[str, Any]] = deque(maxlen=size)
        self._lock = threading.Lock()

    def add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._items.append(entry)

    def list(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
