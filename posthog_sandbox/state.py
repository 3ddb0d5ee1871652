"""The running sandbox: configuration, store, clock, throttle, faults and the request log in one place."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from typing import Any

from . import history, integrations, simulation
from .auth import Throttle
from .config import SandboxConfig, SandboxKey
from .faults import Faults, RequestLog
from .large_seed import seed_large
from .organization import KEY_USER
from .seed import seed
from .store import Store
from .timeutil import UTC, from_db, to_db, utcnow

# Every key acts as this user (docs/sandbox.md, "Keys, projects and integrations").
USER_ID = KEY_USER.id


class Sandbox:
    def __init__(self, config: SandboxConfig):
        if config.generation not in (1, 3):
            raise ValueError("generation must be 3 or 1")
        self.config = config
        self.generation = config.generation
        self.keys: dict[str, SandboxKey] = {k.value: k for k in config.accepted_keys()}
        self.store = Store(config.db_path)
        self.throttle = Throttle(config.throttle)
        self.faults = Faults()
        self.requests = RequestLog()
        self.current_key_requires_scope = config.current_key_requires_scope
        stored = self.store.get_meta("clock")
        start = from_db(stored) if stored else _aware(config.now or utcnow())
        self.clock = simulation.Clock(start, config.speed)
        self._snapshot: sqlite3.Connection | None = None
        if stored is None:
            self._initialise(start)
            if config.now is not None:
                # A fixed initial clock makes the seeded state reproducible: keep a copy so reset is cheap.
                self._snapshot = sqlite3.connect(":memory:", check_same_thread=False)
                with self.store.lock:
                    self.store.conn.backup(self._snapshot)

    def _initialise(self, start: datetime) -> None:
        with self.store.transaction():
            self.store.set_meta("clock", to_db(start))
            self.store.set_meta("generation", str(self.generation))
            earliest = (start - timedelta(days=60)).replace(hour=0, minute=0, second=0, microsecond=0)
            self.store.set_meta("earliest_data", to_db(earliest))
            integrations.seed(self.store, start)  # in every new database (docs/sandbox.md)
            if self.config.exports is not None:
                seed_large(
                    self.store, self.generation, self.earliest_data, start, self.config.exports, self.config.hostile
                )
            elif self.config.seed:
                seed(self.store, self.generation, self.earliest_data, start)

    @property
    def earliest_data(self) -> datetime:
        return from_db(self.store.get_meta("earliest_data"))  # type: ignore[return-value]

    def log_rows(
        self,
        team_id: int,
        export_ids: set[str] | None,
        instance_ids: set[str] | None,
        since: datetime | None,
        until: datetime | None,
    ) -> list[dict[str, Any]]:
        """The rows of the HogQL table `batch_export_log_entries` for a project (narrowed, newest first):
        the stored ones and those of the computed past (`history.py`)."""
        stored = self.store.query_logs(team_id, export_ids, instance_ids, since, until)
        pasts = [
            past
            for export in self.store.list_exports(team_id=team_id, include_deleted=True)
            if (export_ids is None or export["id"] in export_ids) and (past := history.of(export)) is not None
        ]
        if not pasts:
            return stored
        computed = (
            {"team_id": team_id, "log_source": "batch_export", **row}
            for past in pasts
            for row in past.logs_desc(since, until)
            if instance_ids is None or row["instance_id"] in instance_ids
        )
        rows = [*stored, *computed]
        rows.sort(key=lambda row: row["timestamp"], reverse=True)
        return rows

    def now(self) -> datetime:
        return self.clock.now()

    def catch_up(self) -> datetime:
        """Advance the simulation to the clock's now, in one transaction; returns now."""
        with self.store.transaction():
            now = self.clock.now()
            simulation.catch_up(self.store, now, self.generation, self.earliest_data)
            self.store.set_meta("clock", to_db(now))
            return now

    @contextmanager
    def transaction(self) -> Iterator[datetime]:
        """Catch up, then run the caller's changes in their own transaction (yields now)."""
        now = self.catch_up()
        with self.store.transaction():
            yield now

    def reset(self) -> None:
        """Wipe everything and start again (reseeding unless the config says not to)."""
        start = _aware(self.config.now or utcnow())
        if self._snapshot is not None:
            with self.store.lock:
                self._snapshot.backup(self.store.conn)
                self.clock = simulation.Clock(start, self.config.speed)
        else:
            with self.store.transaction():
                self.store.wipe()
                self.clock = simulation.Clock(start, self.config.speed)
                self._initialise(start)
        self.throttle.reset()
        self.faults.clear()
        self.requests.clear()

    def close(self) -> None:
        if self._snapshot is not None:
            self._snapshot.close()
        self.store.close()


def _aware(value: datetime) -> datetime:
    """A naive initial clock is taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
