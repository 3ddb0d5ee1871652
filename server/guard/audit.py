"""The audit trail: one JSON line per guarded call, written off the request path.

A full queue or a failing disk drops lines (with one warning on stderr) rather than
slowing or breaking a call.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


_STOP = object()


class AuditLog:
    """Appends audit lines from a background thread; `record` never blocks or raises."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=10_000)
        self._warned = False
        self._thread: threading.Thread | None = None
        if path is not None:
            self._thread = threading.Thread(target=self._drain, name="audit-log", daemon=True)
            self._thread.start()

    def record(self, **fields: Any) -> None:
        if self._thread is None:
            return
        line = {"time": datetime.now(UTC).isoformat(timespec="milliseconds"), **fields}
        try:
            self._queue.put_nowait(line)
        except queue.Full:
            self._warn("audit queue full; dropping lines")

    def flush(self, timeout: float = 5.0) -> None:
        """Wait until every recorded line is on disk (tests and shutdown)."""
        if self._thread is None:
            return
        done = threading.Event()
        try:
            self._queue.put(done, timeout=timeout)
        except queue.Full:
            return
        done.wait(timeout)

    def close(self, timeout: float = 5.0) -> None:
        """Write what is queued, then stop the writer thread."""
        if self._thread is None:
            return
        self.flush(timeout)
        try:
            self._queue.put(_STOP, timeout=timeout)
        except queue.Full:
            return
        self._thread.join(timeout)
        self._thread = None

    def _drain(self) -> None:
        assert self.path is not None
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            if isinstance(item, threading.Event):
                item.set()
                continue
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                with self.path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(item, default=str, separators=(",", ":")) + "\n")
            except Exception as exc:  # a full disk or a bad path must not kill the writer
                self._warn(f"cannot write audit log {self.path}: {exc}")

    def _warn(self, message: str) -> None:
        if not self._warned:
            self._warned = True
            log.warning(message)
