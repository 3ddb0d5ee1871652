"""SQLite persistence (stdlib sqlite3): one row per object, its fields as JSON, a few indexed columns.

One lock serialises every transaction, so concurrent requests never lose an update or see a half-written
export. Datetimes live in memory as aware `datetime`s and on disk as fixed-width UTC text.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from .timeutil import from_db, to_db

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS integrations (id INTEGER PRIMARY KEY, team_id INTEGER, kind TEXT);
CREATE TABLE IF NOT EXISTS exports (id TEXT PRIMARY KEY, team_id INTEGER, deleted INTEGER, created_at TEXT, data TEXT,
                                    next_tick TEXT);
CREATE INDEX IF NOT EXISTS exports_next_tick ON exports (next_tick);
CREATE TABLE IF NOT EXISTS runs (id TEXT PRIMARY KEY, export_id TEXT, backfill_id TEXT, status TEXT,
                                 created_at TEXT, data TEXT);
CREATE INDEX IF NOT EXISTS runs_export ON runs (export_id, created_at);
CREATE INDEX IF NOT EXISTS runs_status ON runs (status);
CREATE TABLE IF NOT EXISTS backfills (id TEXT PRIMARY KEY, export_id TEXT, team_id INTEGER, status TEXT,
                                      created_at TEXT, data TEXT);
CREATE INDEX IF NOT EXISTS backfills_export ON backfills (export_id);
CREATE TABLE IF NOT EXISTS logs (seq INTEGER PRIMARY KEY AUTOINCREMENT, export_id TEXT, timestamp TEXT,
                                 level TEXT, message TEXT, instance_id TEXT);
CREATE INDEX IF NOT EXISTS logs_export ON logs (export_id, timestamp);
CREATE TABLE IF NOT EXISTS integration_details (id INTEGER PRIMARY KEY, integration_id TEXT, config TEXT,
                                                sensitive_config TEXT, errors TEXT, created_at TEXT, created_by INTEGER);
CREATE TABLE IF NOT EXISTS activity_log (seq INTEGER PRIMARY KEY AUTOINCREMENT, id TEXT, team_id INTEGER, scope TEXT,
                                         item_id TEXT, activity TEXT, user_id INTEGER, created_at TEXT, detail TEXT);
CREATE INDEX IF NOT EXISTS activity_log_team ON activity_log (team_id, created_at);
CREATE INDEX IF NOT EXISTS activity_log_item ON activity_log (team_id, scope, item_id);
"""

DATETIME_FIELDS = {
    "exports": ("created_at", "last_updated_at", "last_paused_at", "start_at", "end_at", "next_tick"),
    "runs": ("data_interval_start", "data_interval_end", "created_at", "finished_at", "last_updated_at"),
    "backfills": (
        "start_at",
        "end_at",
        "created_at",
        "finished_at",
        "last_updated_at",
        "adjusted_start_at",
        "_running_at",
        "_effective_end",
    ),
}
ACTIVE = ("Starting", "Running")


def _encode(table: str, obj: dict[str, Any]) -> str:
    out = dict(obj)
    for name in DATETIME_FIELDS[table]:
        if isinstance(out.get(name), datetime):
            out[name] = to_db(out[name])
    return json.dumps(out)


def _decode(table: str, text: str) -> dict[str, Any]:
    obj: dict[str, Any] = json.loads(text)
    for name in DATETIME_FIELDS[table]:
        if obj.get(name) is not None:
            obj[name] = from_db(obj[name])
    return obj


class Store:
    def __init__(self, path: str | None):
        self.lock = threading.RLock()
        self.conn = sqlite3.connect(path or ":memory:", check_same_thread=False, isolation_level=None)
        self.conn.executescript(SCHEMA)
        self._depth = 0

    def close(self) -> None:
        with self.lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """All-or-nothing; nested calls join the outer transaction."""
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield self
                finally:
                    self._depth -= 1
                return
            self.conn.execute("BEGIN IMMEDIATE")
            self._depth = 1
            try:
                yield self
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            else:
                self.conn.execute("COMMIT")
            finally:
                self._depth = 0

    def wipe(self) -> None:
        with self.transaction():
            for table in (
                "meta",
                "integrations",
                "exports",
                "runs",
                "backfills",
                "logs",
                "integration_details",  # integrations.py
                "activity_log",  # activity_log.py
            ):
                self.conn.execute(f"DELETE FROM {table}")

    # meta
    def get_meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # integrations
    def add_integration(self, id_: int, team_id: int, kind: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO integrations VALUES (?, ?, ?)", (id_, team_id, kind))

    def get_integration(self, id_: int, team_id: int) -> dict[str, Any] | None:
        row = self.conn.execute(
            "SELECT id, team_id, kind FROM integrations WHERE id = ? AND team_id = ?", (id_, team_id)
        ).fetchone()
        return {"id": row[0], "team_id": row[1], "kind": row[2]} if row else None

    def list_integrations(self) -> list[dict[str, Any]]:
        rows = self.conn.execute("SELECT id, team_id, kind FROM integrations ORDER BY id").fetchall()
        return [{"id": r[0], "team_id": r[1], "kind": r[2]} for r in rows]

    # exports
    def put_export(self, export: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO exports VALUES (?, ?, ?, ?, ?, ?)",
            (
                export["id"],
                export["team_id"],
                int(export.get("deleted", False)),
                to_db(export["created_at"]),
                _encode("exports", export),
                to_db(export.get("next_tick")),
            ),
        )

    def exports_due(self, now: datetime) -> list[dict[str, Any]]:
        """Exports whose next schedule tick has come (the only ones a catch-up must look at)."""
        rows = self.conn.execute("SELECT data FROM exports WHERE next_tick <= ? ORDER BY id", (to_db(now),))
        return [_decode("exports", r[0]) for r in rows]

    def get_export(self, id_: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT data FROM exports WHERE id = ?", (id_,)).fetchone()
        return _decode("exports", row[0]) if row else None

    def list_exports(self, team_id: int | None = None, include_deleted: bool = False) -> list[dict[str, Any]]:
        sql, args = "SELECT data FROM exports WHERE 1=1", []
        if team_id is not None:
            sql += " AND team_id = ?"
            args.append(team_id)
        if not include_deleted:
            sql += " AND deleted = 0"
        sql += " ORDER BY created_at DESC, id"
        return [_decode("exports", r[0]) for r in self.conn.execute(sql, args)]

    def page_exports(
        self, team_id: int, hidden_types: tuple[str, ...], limit: int, offset: int
    ) -> tuple[int, list[dict[str, Any]]]:
        """One list page of a project's exports (newest first) and how many there are, without reading
        the others."""
        where = "team_id = ? AND deleted = 0"
        args: list[Any] = [team_id]
        if hidden_types:
            where += f" AND json_extract(data, '$.destination.type') NOT IN ({', '.join('?' * len(hidden_types))})"
            args += hidden_types
        count = int(self.conn.execute(f"SELECT COUNT(*) FROM exports WHERE {where}", args).fetchone()[0])
        rows = self.conn.execute(
            f"SELECT data FROM exports WHERE {where} ORDER BY created_at DESC, id LIMIT ? OFFSET ?",
            [*args, limit, offset],
        )
        return count, [_decode("exports", r[0]) for r in rows]

    # runs
    def put_run(self, run: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO runs VALUES (?, ?, ?, ?, ?, ?)",
            (
                run["id"],
                run["batch_export"],
                run.get("backfill"),
                run["status"],
                to_db(run["created_at"]),
                _encode("runs", run),
            ),
        )

    def get_run(self, id_: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT data FROM runs WHERE id = ?", (id_,)).fetchone()
        return _decode("runs", row[0]) if row else None

    def list_runs(
        self,
        export_id: str | None = None,
        backfill_id: str | None = None,
        active_only: bool = False,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        """Newest `created_at` first."""
        sql, args = "SELECT data FROM runs WHERE 1=1", []
        if export_id is not None:
            sql += " AND export_id = ?"
            args.append(export_id)
        if backfill_id is not None:
            sql += " AND backfill_id = ?"
            args.append(backfill_id)
        if active_only:
            sql += " AND status IN ('Starting', 'Running')"
        sql += " ORDER BY created_at DESC, id DESC"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return [_decode("runs", r[0]) for r in self.conn.execute(sql, args)]

    # backfills
    def put_backfill(self, backfill: dict[str, Any]) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO backfills VALUES (?, ?, ?, ?, ?, ?)",
            (
                backfill["id"],
                backfill["batch_export"],
                backfill["team"],
                backfill["status"],
                to_db(backfill["created_at"]),
                _encode("backfills", backfill),
            ),
        )

    def get_backfill(self, id_: str) -> dict[str, Any] | None:
        row = self.conn.execute("SELECT data FROM backfills WHERE id = ?", (id_,)).fetchone()
        return _decode("backfills", row[0]) if row else None

    def list_backfills(
        self,
        export_id: str | None = None,
        team_id: int | None = None,
        active_only: bool = False,
        written_by: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """Newest first; with `written_by`, only rows the workflow has written by then (created_at <= it)."""
        sql, args = "SELECT data FROM backfills WHERE 1=1", list[Any]()
        if written_by is not None:
            sql += " AND created_at <= ?"
            args.append(to_db(written_by))
        if export_id is not None:
            sql += " AND export_id = ?"
            args.append(export_id)
        if team_id is not None:
            sql += " AND team_id = ?"
            args.append(team_id)
        if active_only:
            sql += " AND status IN ('Starting', 'Running')"
        sql += " ORDER BY created_at DESC, id DESC"
        return [_decode("backfills", r[0]) for r in self.conn.execute(sql, args)]

    # logs
    def add_log(self, export_id: str, timestamp: datetime, level: str, message: str, instance_id: str) -> None:
        self.conn.execute(
            "INSERT INTO logs (export_id, timestamp, level, message, instance_id) VALUES (?, ?, ?, ?, ?)",
            (export_id, to_db(timestamp), level, message, instance_id),
        )

    def list_logs(self, export_id: str) -> list[dict[str, Any]]:
        """Newest first."""
        rows = self.conn.execute(
            "SELECT timestamp, level, message, instance_id FROM logs WHERE export_id = ? "
            "ORDER BY timestamp DESC, seq DESC",
            (export_id,),
        ).fetchall()
        return [
            {
                "log_source_id": export_id,
                "instance_id": r[3],
                "timestamp": from_db(r[0]),
                "level": r[1],
                "message": r[2],
            }
            for r in rows
        ]

    def query_logs(
        self,
        team_id: int,
        export_ids: set[str] | None = None,
        instance_ids: set[str] | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> list[dict[str, Any]]:
        """The project's log rows as the HogQL table `batch_export_log_entries` has them, newest first;
        the filters only narrow (bounds inclusive), the query still applies its own WHERE."""
        sql = (
            "SELECT l.export_id, l.instance_id, l.timestamp, l.message, l.level FROM logs l "
            "JOIN exports e ON e.id = l.export_id WHERE e.team_id = ?"
        )
        args: list[Any] = [team_id]
        for column, values in (("l.export_id", export_ids), ("l.instance_id", instance_ids)):
            if values is not None:
                sql += f" AND {column} IN ({', '.join('?' * len(values))})"
                args += sorted(values)
        if since is not None:
            sql += " AND l.timestamp >= ?"
            args.append(to_db(since))
        if until is not None:
            sql += " AND l.timestamp <= ?"
            args.append(to_db(until))
        sql += " ORDER BY l.timestamp DESC, l.seq DESC"
        return [
            {
                "team_id": team_id,
                "log_source": "batch_export",
                "log_source_id": r[0],
                "instance_id": r[1],
                "timestamp": from_db(r[2]),
                "message": r[3],
                "level": r[4],
            }
            for r in self.conn.execute(sql, args)
        ]

    def count_logs(self) -> int:
        return int(self.conn.execute("SELECT COUNT(*) FROM logs").fetchone()[0])
