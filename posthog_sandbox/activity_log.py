"""PostHog's activity log for batch exports (docs/posthog-api.md, "Activity log"): the entries a change to an
export writes, the seeded history, and `GET /api/projects/{id}/activity_log/`.

PostHog logs a `BatchExport` row whenever the model is saved: `created` (no changes), `updated` with the
fields that differ from the stored row (an update that changes no logged field writes nothing). The
destination is a separate model, so its config (and any secret in it) never appears in an entry. Rows live
in the `activity_log` table (`store.py`); this module owns its SQL.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from . import organization
from .errors import not_found, server_error
from .history import HISTORY
from .pagination import cursor_page, replace_query
from .store import Store
from .timeutil import drf, from_db, to_db


class Ctx(Protocol):
    """What a route handler here reads of `handlers.Ctx` (not imported: handlers imports this module)."""

    @property
    def store(self) -> Store: ...

    project: int
    query: Any
    url: str


SCOPE = "BatchExport"
# BatchExport's model fields that changes_between compares, in model order, with field_exclusions and the
# common exclusions (id, created_at, last_modified_by, team, ...) removed. `destination` is a foreign key
# whose row keeps its id on update, so it never differs; hogql_query lives inside `schema`.
FIELDS = (
    "name",
    "interval",
    "paused",
    "deleted",
    "start_at",
    "end_at",
    "schema",
    "model",
    "filters",
    "timezone",
    "interval_offset",
    "incremental_mode",
)
DISPLAY_NAMES = {"paused": "enabled"}  # field_name_overrides: the name changes, the values do not
PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000

Result = tuple[int, Any]


# ---------------------------------------------------------------------------------------------- entries


def _empty(value: Any) -> bool:
    """Django's `empty_values` (None, "", [], (), {}): an empty value on both sides is no change."""
    return value is None or (isinstance(value, (str, list, tuple, dict)) and not value)


def _plain(value: Any) -> Any:
    """A value as ActivityDetailEncoder writes it: datetimes in Python's isoformat."""
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def changes_between(before: dict[str, Any] | None, after: dict[str, Any]) -> list[dict[str, Any]]:
    """PostHog's changes_between for a BatchExport: nothing for a creation."""
    if before is None:
        return []
    out = []
    for field in FIELDS:
        left, right = before.get(field), after.get(field)
        left_empty, right_empty = _empty(left), _empty(right)
        change = {"type": SCOPE, "field": DISPLAY_NAMES.get(field, field), "before": None, "after": None}
        if left_empty and right_empty:
            continue
        if left_empty:
            out.append({**change, "action": "created", "after": _plain(right)})
        elif right_empty:
            out.append({**change, "action": "deleted", "before": _plain(left)})
        elif left != right:
            out.append({**change, "action": "changed", "before": _plain(left), "after": _plain(right)})
    return [{k: c[k] for k in ("type", "action", "field", "before", "after")} for c in out]


def detail(export: dict[str, Any], changes: list[dict[str, Any]]) -> dict[str, Any]:
    """`Detail(changes, name, context)` as handle_batch_export_change builds it."""
    destination_type = export["destination"]["type"]
    name = export.get("name") or "Unnamed Export"
    return {
        "name": f"'{name}' ({destination_type})",
        "short_id": None,
        "type": None,
        "changes": changes,
        "trigger": None,
        "context": {
            "name": name,
            "destination_type": destination_type,
            "interval": export.get("interval") or "",
            # BatchExport has no created_by field, so PostHog always writes these as null.
            "created_by_user_id": None,
            "created_by_user_email": None,
            "created_by_user_name": None,
        },
    }


def _entry_id(at: datetime, salt: bytes) -> str:
    """A UUIDT-shaped id: milliseconds first, so ids sort by time like PostHog's."""
    millis = int(at.timestamp() * 1000) & ((1 << 48) - 1)
    rest = int.from_bytes(hashlib.sha256(salt).digest()[:10], "big")
    return str(uuid.UUID(int=(millis << 80) | rest))


def _insert(store: Store, rows: Iterable[tuple[Any, ...]]) -> None:
    store.conn.executemany(
        "INSERT INTO activity_log (id, team_id, scope, item_id, activity, user_id, created_at, detail) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )


def _row(
    export: dict[str, Any], activity: str, user_id: int | None, at: datetime, changes: list[dict[str, Any]], salt: bytes
) -> tuple[Any, ...]:
    return (
        _entry_id(at, salt),
        export["team_id"],
        SCOPE,
        export["id"],
        activity,
        user_id,
        to_db(at),
        json.dumps(detail(export, changes)),
    )


def record(
    store: Store, before: dict[str, Any] | None, after: dict[str, Any], user_id: int | None, at: datetime
) -> bool:
    """Log one save of an export: `created` without `before`, else `updated` when a logged field changed
    (PostHog skips an update without changes). Returns whether an entry was written."""
    changes = changes_between(before, after)
    activity = "created" if before is None else "updated"
    if activity == "updated" and not changes:
        return False
    _insert(store, [_row(after, activity, user_id, at, changes, os.urandom(16))])
    return True


def record_delete(store: Store, export: dict[str, Any], user_id: int | None, at: datetime) -> None:
    """What PostHog's delete writes: it pauses the export first (its own `enabled` entry, unless already
    paused), then saves the instance it read before that pause with `deleted` set, so the second entry also
    shows `enabled` going back (docs/posthog-api.md, "Activity log")."""
    if export["paused"]:
        record(store, export, {**export, "deleted": True}, user_id, at)
        return
    paused = {**export, "paused": True}
    record(store, export, paused, user_id, at)
    record(store, paused, {**export, "deleted": True}, user_id, at)


# ---------------------------------------------------------------------------------------------- seeds


def _author(export: dict[str, Any], offset: int = 0) -> int:
    """A colleague (or the key user) for a seeded entry, the same one every time: by the export's name,
    since the demo seed's ids are new in every database."""
    people = (organization.KEY_USER, *organization.COLLEAGUES)
    digest = int(hashlib.sha256(f"{export['team_id']}:{export['name']}".encode()).hexdigest()[:8], 16)
    return people[(digest + offset) % len(people)].id


def seed_history(
    store: Store, exports: Iterable[dict[str, Any]], renames: dict[str, tuple[str, datetime]] | None = None
) -> int:
    """The past of seeded exports, without running it: `created` when each was made (by a colleague or the
    key user), `updated` with `enabled` when a paused one was paused (by the workers, user null, when it
    was paused after failing), and optional renames `{export id: (old name, when)}`. Returns the count."""
    renames = renames or {}
    rows = []
    for export in exports:
        created = dict(export, paused=False, deleted=False)
        renamed = renames.get(export["id"])
        if renamed:
            old_name, renamed_at = renamed
            created["name"] = old_name
        rows.append(_row(created, "created", _author(export), export["created_at"], [], b"c" + export["id"].encode()))
        current = created
        if renamed:
            current = dict(created, name=export["name"])
            rows.append(
                _row(
                    current,
                    "updated",
                    _author(export, 1),
                    renamed[1],
                    changes_between(created, current),
                    b"r" + export["id"].encode(),
                )
            )
        if export.get("paused") and export.get("last_paused_at"):
            history = export.get(HISTORY) or {}
            # The scenes say who paused it (posthog_sandbox/scenes.py); older seeds only know the pattern.
            by_workers = (
                history["paused_by"] == "posthog"
                if "paused_by" in history
                else history.get("pattern") == "failing_then_paused"
            )
            paused = dict(current, paused=True)
            rows.append(
                _row(
                    paused,
                    "updated",
                    None if by_workers else _author(export, 2),
                    export["last_paused_at"],
                    changes_between(current, paused),
                    b"p" + export["id"].encode(),
                )
            )
    _insert(store, rows)
    return len(rows)


# ---------------------------------------------------------------------------------------------- the route


def _filters(ctx: Ctx) -> tuple[str, list[Any]]:
    """ActivityLogViewSet's query filters: user, scope, scopes (comma-separated), item_id."""
    where: list[str] = ["team_id = ?"]
    args: list[Any] = [ctx.project]
    params = ctx.query
    if params.get("user"):
        try:
            user_id = int(params["user"])
        except ValueError:
            raise server_error() from None  # Django refuses a non-numeric pk: an unhandled 500
        where.append("user_id = ?")
        args.append(user_id)
    if params.get("scope"):
        where.append("scope = ?")
        args.append(params["scope"])
    if params.get("scopes"):
        scopes = str(params["scopes"]).split(",")
        where.append(f"scope IN ({', '.join('?' * len(scopes))})")
        args += scopes
    if params.get("item_id"):
        where.append("item_id = ?")
        args.append(params["item_id"])
    return " AND ".join(where), args


def _render(ctx: Ctx, row: tuple[Any, ...]) -> dict[str, Any]:
    id_, scope, item_id, activity, user_id, created_at, detail_text = row
    return {
        "id": id_,
        "user": organization.basic(user_id),
        "unread": False,  # only a notifications context carries the user's bookmark
        "organization_id": organization.PROJECTS[ctx.project],
        "was_impersonated": False,
        "is_system": user_id is None,
        "activity": activity,
        "item_id": item_id,
        "scope": scope,
        "detail": json.loads(detail_text),
        "created_at": drf(from_db(created_at)),
    }


def _rows(ctx: Ctx, seqs: list[int]) -> list[dict[str, Any]]:
    if not seqs:
        return []
    found = {
        r[0]: r[1:]
        for r in ctx.store.conn.execute(
            "SELECT seq, id, scope, item_id, activity, user_id, created_at, detail FROM activity_log "
            f"WHERE seq IN ({', '.join('?' * len(seqs))})",
            seqs,
        )
    }
    return [_render(ctx, found[seq]) for seq in seqs]


def _positive(value: str | None, default: int, cutoff: int) -> int:
    """DRF's _positive_int(strict=True, cutoff): a bad value means the default."""
    try:
        number = int(value) if value is not None else default
    except ValueError:
        return default
    return min(number, cutoff) if number > 0 else default


def list_activity(ctx: Ctx) -> Result:
    """`GET activity_log/`: newest first; a cursor page of 100 unless `page` asks for numbered pages."""
    where, args = _filters(ctx)
    keys = ctx.store.conn.execute(
        f"SELECT created_at, seq FROM activity_log WHERE {where} ORDER BY created_at DESC, seq DESC", args
    ).fetchall()
    if ctx.query.get("page"):
        return 200, _numbered_page(ctx, keys)
    page = cursor_page(keys, lambda k: [k[0], k[1]], ctx.url, ctx.query.get("cursor"), PAGE_SIZE)
    page["results"] = _rows(ctx, [k[1] for k in page["results"]])
    return 200, page


def _numbered_page(ctx: Ctx, keys: list[Any]) -> dict[str, Any]:
    """DRF's PageNumberPagination (page_size 100, `page_size` up to 1000, `page=last`)."""
    size = _positive(ctx.query.get("page_size"), PAGE_SIZE, MAX_PAGE_SIZE)
    pages = max(1, -(-len(keys) // size))
    raw = ctx.query["page"]
    try:
        number = pages if raw == "last" else int(raw)
    except ValueError:
        raise not_found("Invalid page.") from None
    if not 1 <= number <= pages:
        raise not_found("Invalid page.")
    chunk = keys[(number - 1) * size : number * size]
    next_url = replace_query(ctx.url, page=number + 1) if number < pages else None
    previous = None
    if number > 1:
        previous = replace_query(ctx.url, page=None) if number == 2 else replace_query(ctx.url, page=number - 1)
    return {"count": len(keys), "next": next_url, "previous": previous, "results": _rows(ctx, [k[1] for k in chunk])}
