"""The batch-export endpoints (docs/posthog-api.md, "Routes"): each handler takes a request context and returns
`(status, body)`, where a `None` body means an empty response."""

from __future__ import annotations

import copy
import heapq
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from . import activity_log, history, serializers, simulation
from . import destinations as d
from .config import SandboxKey
from .errors import ApiError, empty, invalid_choice, not_found, server_error, validation
from .exports import make_export
from .pagination import cursor_page, limit_offset, limit_offset_page, page_window
from .state import USER_ID, Sandbox
from .store import Store
from .timeutil import drf, parse_drf_datetime, relative_date_parse, to_db
from .validation import ValidationContext, parse_backfill_bounds, parse_unpause_backfill, validate_export

Result = tuple[int, Any]
RUN_STATUSES = [
    "Cancelled",
    "Completed",
    "ContinuedAsNew",
    "Failed",
    "FailedRetryable",
    "FailedBilling",
    "Terminated",
    "TimedOut",
    "Running",
    "Starting",
]


@dataclass
class Ctx:
    sb: Sandbox
    project: int
    key: SandboxKey
    query: Any  # starlette QueryParams (supports getlist)
    body: Any
    url: str
    now: datetime

    @property
    def store(self) -> Store:
        return self.sb.store

    @property
    def gen(self) -> int:
        return self.sb.generation

    def validation_context(self, instance: dict[str, Any] | None, partial: bool) -> ValidationContext:
        return ValidationContext(self.gen, lambda i: self.store.get_integration(i, self.project), instance, partial)


# ---------------------------------------------------------------------------------------------- helpers


def _uuid(value: str) -> str | None:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError):
        return None


def get_export(ctx: Ctx, id_: str, include_deleted: bool = False, detail: str = "Not found.") -> dict[str, Any]:
    key = _uuid(id_)
    export = ctx.store.get_export(key) if key else None
    if export is None or export["team_id"] != ctx.project or (export.get("deleted") and not include_deleted):
        raise not_found(detail)
    return export


def render_export(ctx: Ctx, export: dict[str, Any]) -> dict[str, Any]:
    return serializers.export(export, ctx.gen, runs_of(ctx.store, export, limit=10))


def runs_of(
    store: Store,
    export: dict[str, Any],
    lo: datetime | None = None,
    hi: datetime | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """The export's runs, stored and computed (`history.py`), newest `created_at` first; `lo`/`hi` may
    narrow the computed past to a superset of what the caller keeps."""
    stored = store.list_runs(export_id=export["id"], limit=limit)
    past = history.of(export)
    if past is None:
        return stored
    computed = past.runs(lo, hi, limit)
    merged = sorted([*stored, *computed], key=lambda r: (r["created_at"], r["id"]), reverse=True)
    return merged[:limit] if limit is not None else merged


def logs_of(store: Store, export: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The export's log rows, stored and computed, newest first (lazily: callers stop at their limit)."""
    stored = store.list_logs(export["id"])
    past = history.of(export)
    if past is None:
        return iter(stored)
    return heapq.merge(stored, past.logs_desc(), key=lambda row: row["timestamp"], reverse=True)


# ---------------------------------------------------------------------------------------------- exports


def list_exports(ctx: Ctx) -> Result:
    limit, offset = page_window(ctx.query, 100)
    hidden = ("Workflows",) if ctx.gen >= 3 else ()
    count, exports = ctx.store.page_exports(ctx.project, hidden, limit, offset)
    return 200, limit_offset_page(count, [render_export(ctx, e) for e in exports], ctx.url, limit, offset)


def create_export(ctx: Ctx) -> Result:
    fields = validate_export(ctx.validation_context(None, partial=False), ctx.body)
    export = make_export(ctx.store, ctx.gen, ctx.project, fields, ctx.now)
    activity_log.record(ctx.store, None, export, USER_ID, ctx.now)
    return 201, render_export(ctx, export)


def retrieve_export(ctx: Ctx, id: str) -> Result:
    return 200, render_export(ctx, get_export(ctx, id))


def update_export(ctx: Ctx, id: str, partial: bool = False) -> Result:
    export = get_export(ctx, id)
    before = copy.deepcopy(export)
    fields = validate_export(ctx.validation_context(export, partial=partial), ctx.body)
    reschedule = any(k in fields for k in ("interval", "interval_offset", "timezone")) or (
        export["paused"] and fields.get("paused") is False
    )
    if "destination" in fields:
        new = fields.pop("destination")
        stored = export["destination"]
        config = d.deep_merge(stored["config"], new["config"]) if new["type"] == stored["type"] else new["config"]
        sent = ctx.body["destination"]
        integration = (
            new["integration"] if ("integration" in sent or "integration_id" in sent) else stored.get("integration")
        )
        export["destination"] = {"type": new["type"], "config": config, "integration": integration}
    export.update(fields)
    export["last_updated_at"] = ctx.now
    if reschedule:
        export["next_tick"] = simulation.next_tick_after(export, ctx.now)
    ctx.store.put_export(export)
    activity_log.record(ctx.store, before, export, USER_ID, ctx.now)
    return 200, render_export(ctx, export)


def partial_update_export(ctx: Ctx, id: str) -> Result:
    return update_export(ctx, id, partial=True)


def destroy_export(ctx: Ctx, id: str) -> Result:
    export = get_export(ctx, id)
    activity_log.record_delete(ctx.store, export, USER_ID, ctx.now)
    export["deleted"] = True
    ctx.store.put_export(export)
    # Gen-3 cancels what is Running only, not what is still Starting (docs/posthog-api.md, "Exports and
    # destinations"); Gen-1 cancels the active backfills and leaves the runs alone.
    cancelled = ("Running",) if ctx.gen >= 3 else ("Starting", "Running")
    for backfill in ctx.store.list_backfills(export_id=export["id"], active_only=True, written_by=ctx.now):
        if backfill["status"] in cancelled:
            simulation.cancel_backfill(ctx.store, backfill, ctx.now, cancel_runs=ctx.gen >= 3)
    if ctx.gen >= 3:
        for run in ctx.store.list_runs(export_id=export["id"], active_only=True):
            if run["status"] == "Running":
                simulation.cancel_run(ctx.store, run, ctx.now)
    return 204, None


def pause_export(ctx: Ctx, id: str) -> Result:
    export = get_export(ctx, id)
    if not export["paused"]:
        before = dict(export)
        export.update(paused=True, last_paused_at=ctx.now, last_updated_at=ctx.now)
        ctx.store.put_export(export)
        activity_log.record(ctx.store, before, export, USER_ID, ctx.now)
    return 200, {"paused": True}


def unpause_export(ctx: Ctx, id: str) -> Result:
    export = get_export(ctx, id)
    backfill = parse_unpause_backfill(ctx.body, ctx.gen)
    if export["paused"]:
        before = dict(export)
        export.update(paused=False, last_updated_at=ctx.now)
        export["next_tick"] = simulation.next_tick_after(export, ctx.now)
        ctx.store.put_export(export)
        activity_log.record(ctx.store, before, export, USER_ID, ctx.now)
        if backfill and export.get("last_paused_at") and export["last_paused_at"] < ctx.now:
            simulation.new_backfill(ctx.store, export, export["last_paused_at"], ctx.now, _row_written_at(ctx))
    return 200, {"paused": False}


# ---------------------------------------------------------------------------------------------- logs


def export_logs(ctx: Ctx, id: str) -> Result:
    export = get_export(ctx, id)
    limit_raw = ctx.query.get("limit")
    limit = 50
    if limit_raw is not None:
        try:
            limit = int(limit_raw)
        except ValueError:
            raise validation("A valid integer is required.", "limit", "invalid") from None
        if limit > 500:
            raise validation("Ensure this value is less than or equal to 500.", "limit", "max_value")
        if limit < 1:
            raise validation("Ensure this value is greater than or equal to 1.", "limit", "min_value")
    bounds = {}
    for name in ("after", "before"):
        if ctx.query.get(name):
            try:
                bounds[name] = parse_drf_datetime(ctx.query[name])
            except ValueError:
                raise validation(
                    "Datetime has wrong format. Use one of these formats instead: "
                    "YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].",
                    name,
                    "invalid",
                ) from None
    levels = {part.strip().upper() for value in ctx.query.getlist("level") for part in value.split(",") if part.strip()}
    search = (ctx.query.get("search") or "").lower()
    instance_id = ctx.query.get("instance_id")
    rows = []
    for row in logs_of(ctx.store, export):
        if "after" in bounds and not row["timestamp"] > bounds["after"]:
            break  # rows come newest first: every later one is older still
        if "before" in bounds and not row["timestamp"] < bounds["before"]:
            continue
        if levels and row["level"] not in levels:
            continue
        if search and search not in row["message"].lower():
            continue
        if instance_id and row["instance_id"] != instance_id:
            continue
        rows.append(serializers.log_entry(row))
        if len(rows) >= limit:
            break  # `limit` is also the query limit (docs/posthog-api.md, "Logs and the Query API")
    return 200, limit_offset(rows, ctx.url, ctx.query, limit)


def run_logs(ctx: Ctx, batch_export_id: str, id: str) -> Result:
    raise server_error()  # the route exists but cannot work (docs/posthog-api.md, "Logs and the Query API")


# ---------------------------------------------------------------------------------------------- tests


def _test_steps(ctx: Ctx, type_: str) -> list[tuple[str, str]] | None:
    if ctx.gen >= 3 and type_ == "S3" or ctx.gen < 3 and type_ in ("AwsS3", "S3Compatible"):
        return None
    return d.TEST_STEPS.get(type_)


def destination_test(ctx: Ctx) -> Result:
    type_ = ctx.query.get("destination")
    if not type_:
        raise empty(400)
    steps = _test_steps(ctx, type_)
    if steps is None:
        raise empty(404)
    return 200, {"steps": [{"name": n, "description": desc, "result": None} for n, desc in steps]}


def _run_step(ctx: Ctx, body: Any, export: dict[str, Any] | None) -> Result:
    # An existing export's step is validated against that export, so its destination type cannot change
    # (docs/posthog-api.md, "Destination tests").
    fields = validate_export(ctx.validation_context(export, partial=False), body)
    steps = _test_steps(ctx, fields["destination"]["type"])
    if steps is None:
        if ctx.gen >= 3:
            raise server_error()  # no destination test for the type: an uncaught ValueError
        raise empty(404)
    step = body.get("step", 0)
    if not isinstance(step, int) or isinstance(step, bool) or not 0 <= step < len(steps):
        raise server_error()  # out-of-range step (docs/posthog-api.md, "Destination tests")
    name, description = steps[step]
    outcome = export["_outcome"] if export else simulation.default_outcome()
    if outcome["outcome"] == "succeed":
        result = {"status": "Passed", "message": None}
    else:
        error = outcome.get("error") or d.DEFAULT_ERRORS.get(fields["destination"]["type"], "Test failed")
        result = {"status": "Failed", "message": error}
    return 200, {"name": name, "description": description, "result": result}


def run_test_step_new(ctx: Ctx) -> Result:
    return _run_step(ctx, ctx.body, None)


def run_test_step(ctx: Ctx, id: str) -> Result:
    export = get_export(ctx, id)
    body = ctx.body
    if (
        isinstance(body, dict)
        and isinstance(body.get("destination"), dict)
        and isinstance(body["destination"].get("config"), dict)
    ):
        destination = dict(body["destination"])
        stored = export["destination"]
        known = d.fields_for(ctx.gen, stored["type"]) or {}
        # stored values fill in what the body leaves out (legacy keys the type no longer accepts are skipped)
        base = (
            {k: v for k, v in stored["config"].items() if k in known}
            if destination.get("type") == stored["type"]
            else {}
        )
        destination["config"] = {**base, **destination["config"]}
        if "integration" not in destination and "integration_id" not in destination:
            destination["integration"] = export["destination"].get("integration")
        body = {**body, "destination": destination}
    return _run_step(ctx, body, export)


# ---------------------------------------------------------------------------------------------- backfills


def _start_backfill(ctx: Ctx, export_id: str) -> tuple[dict[str, Any], datetime | None, datetime | None]:
    export = get_export(ctx, export_id, include_deleted=True, detail="BatchExport not found.")
    body = ctx.body if isinstance(ctx.body, dict) else {}
    if ctx.gen >= 3:
        if body.get("start_at") is None:
            raise validation("Backfilling from the beginning of time is not enabled for this team.")
        running = ctx.store.list_backfills(team_id=ctx.project, active_only=True, written_by=ctx.now)
        cap = ctx.sb.config.max_concurrent_backfills
        if len(running) >= cap:
            raise ApiError(
                429,
                "server_error",
                "too_many_concurrent_backfills",
                f"This team already has {cap} batch export backfills running. Wait for some "
                "to finish or cancel them before creating more.",
            )
    start, end = parse_backfill_bounds(body, export, ctx.gen, ctx.now, ctx.sb.earliest_data)
    return export, start, end


def _row_written_at(ctx: Ctx) -> datetime:
    """When the backfill workflow writes the row it was started for (docs/posthog-api.md, "Backfills")."""
    return ctx.now + timedelta(seconds=ctx.sb.config.backfill_row_delay)


def workflow_id(export_id: str, start: datetime | None, end: datetime | None) -> str:
    return f"{export_id}-Backfill-{start.isoformat() if start else 'START'}-{end.isoformat() if end else 'END'}"


def create_backfill(ctx: Ctx, batch_export_id: str) -> Result:
    export, start, end = _start_backfill(ctx, batch_export_id)
    backfill = simulation.new_backfill(ctx.store, export, start, end, _row_written_at(ctx))
    if ctx.gen >= 3:
        return 201, {"backfill_id": backfill["id"]}
    return 200, {"backfill_id": workflow_id(export["id"], start, end)}


def deprecated_backfill(ctx: Ctx, id: str) -> Result:
    return create_backfill(ctx, id)


def _get_backfill(ctx: Ctx, batch_export_id: str, id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    export = get_export(ctx, batch_export_id, include_deleted=True)
    key = _uuid(id)
    backfill = ctx.store.get_backfill(key) if key else None
    if backfill is None or backfill["batch_export"] != export["id"] or backfill["created_at"] > ctx.now:
        raise not_found()
    return export, backfill


def _render_backfill(ctx: Ctx, backfill: dict[str, Any], export: dict[str, Any]) -> dict[str, Any]:
    return serializers.backfill(backfill, ctx.gen, simulation.progress(ctx.store, backfill, export, ctx.now))


def list_backfills(ctx: Ctx, batch_export_id: str) -> Result:
    # The listing filters the project's backfills by the id it is given: an id no export of this project has
    # lists nothing rather than 404 (docs/posthog-api.md, "Backfills"). A malformed id stays 404.
    if _uuid(batch_export_id) is None:
        raise not_found()
    export = ctx.store.get_export(str(_uuid(batch_export_id)))
    if export is None or export["team_id"] != ctx.project:
        return 200, {"next": None, "previous": None, "results": []}
    ordering = ctx.query.get("ordering") or "-created_at"
    if ordering not in ("created_at", "-created_at", "start_at", "-start_at"):
        ordering = "-created_at"
    field = ordering.lstrip("-")

    def key(b: dict[str, Any]) -> list[Any]:
        return [to_db(b[field]) or "", b["id"]]

    items = sorted(
        ctx.store.list_backfills(export_id=export["id"], written_by=ctx.now), key=key, reverse=ordering.startswith("-")
    )
    page = cursor_page(items, key, ctx.url, ctx.query.get("cursor"), 50)
    page["results"] = [_render_backfill(ctx, b, export) for b in page["results"]]
    return 200, page


def retrieve_backfill(ctx: Ctx, batch_export_id: str, id: str) -> Result:
    export, backfill = _get_backfill(ctx, batch_export_id, id)
    return 200, _render_backfill(ctx, backfill, export)


def cancel_backfill(ctx: Ctx, batch_export_id: str, id: str) -> Result:
    _, backfill = _get_backfill(ctx, batch_export_id, id)
    if backfill["status"] not in ("Starting", "Running"):
        raise validation(f"Cannot cancel a backfill that is in '{backfill['status']}' status")
    simulation.cancel_backfill(ctx.store, backfill, ctx.now, cancel_runs=ctx.gen >= 3)
    return 200, {"cancelled": True}


# ---------------------------------------------------------------------------------------------- runs


def _runs_in_window(ctx: Ctx, export: dict[str, Any]) -> tuple[list[dict[str, Any]], str]:
    """The runs queryset with the ordering-dependent window and the status filter (docs/posthog-api.md, "Runs")."""
    ordering = ctx.query.get("ordering") or "-created_at"
    if ordering not in ("created_at", "-created_at", "data_interval_start", "-data_interval_start"):
        ordering = "-created_at"
    q = ctx.query
    tz = ctx.sb.config.project_timezone
    if ordering.lstrip("-") == "created_at":
        after = relative_date_parse(q.get("after") or "-7d", ctx.now, tz)
        before = relative_date_parse(q["before"], ctx.now, tz) if q.get("before") else ctx.now
        runs = [r for r in runs_of(ctx.store, export, after, before) if after <= r["created_at"] <= before]
    else:
        start = relative_date_parse(q.get("start") or "-7d", ctx.now, tz)
        end = relative_date_parse(q["end"], ctx.now, tz) if q.get("end") else ctx.now
        runs = runs_of(ctx.store, export, start, end)
        runs = [
            r
            for r in runs
            if r["data_interval_start"] is not None
            and r["data_interval_start"] >= start
            and r["data_interval_end"] <= end
        ]
    if ctx.gen >= 3:
        statuses = q.getlist("status")
        for status in statuses:
            if status not in RUN_STATUSES:
                raise invalid_choice(status, "status")
        if statuses:
            runs = [r for r in runs if r["status"] in statuses]
    return runs, ordering


def _get_run(ctx: Ctx, batch_export_id: str, id: str) -> tuple[dict[str, Any], dict[str, Any]]:
    export = get_export(ctx, batch_export_id, include_deleted=True)
    runs, _ = _runs_in_window(ctx, export)
    for run in runs:
        if run["id"] == id:
            return export, run
    raise not_found()


def list_runs(ctx: Ctx, batch_export_id: str) -> Result:
    export = get_export(ctx, batch_export_id, include_deleted=True)
    runs, ordering = _runs_in_window(ctx, export)
    field = ordering.lstrip("-")

    def key(r: dict[str, Any]) -> list[Any]:
        return [to_db(r[field]) or "", r["id"]]

    runs.sort(key=key, reverse=ordering.startswith("-"))
    page = cursor_page(runs, key, ctx.url, ctx.query.get("cursor"), 100)
    page["results"] = [serializers.run(r, ctx.gen) for r in page["results"]]
    return 200, page


def retrieve_run(ctx: Ctx, batch_export_id: str, id: str) -> Result:
    return 200, serializers.run(_get_run(ctx, batch_export_id, id)[1], ctx.gen)


def retry_run(ctx: Ctx, batch_export_id: str, id: str) -> Result:
    export, run = _get_run(ctx, batch_export_id, id)
    start, end = run["data_interval_start"], run["data_interval_end"]
    simulation.new_backfill(ctx.store, export, start, end, _row_written_at(ctx))
    return (201 if ctx.gen >= 3 else 200), {"backfill_id": workflow_id(export["id"], start, end)}


def cancel_run(ctx: Ctx, batch_export_id: str, id: str) -> Result:
    _, run = _get_run(ctx, batch_export_id, id)
    if run["status"] not in ("Starting", "Running"):
        raise validation(f"Cannot cancel a run that is in '{run['status']}' status")
    simulation.cancel_run(ctx.store, run, ctx.now)
    return 200, {"cancelled": True}


# ---------------------------------------------------------------------------------------------- keys


def current_key(ctx: Ctx) -> Result:
    value = ctx.key.value
    return 200, {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox-key:{value}")),
        "label": "Sandbox key",
        "value": None,
        "mask_value": f"{value[:4]}...{value[-4:]}",
        "created_at": "2024-01-01T00:00:00Z",
        "last_used_at": drf(ctx.now),
        "user_id": USER_ID,
        "scopes": list(ctx.key.scopes) or ["*"],
        "scoped_teams": list(ctx.key.scoped_teams),
        "scoped_organizations": [],
        "last_rolled_at": None,
    }
