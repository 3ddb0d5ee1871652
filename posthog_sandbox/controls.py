"""Test controls under `/_sandbox/` (never under `/api/`, no auth): clock, outcomes, faults, request log,
state, integrations, throttle and reset. JSON in, JSON out; errors use the same envelope as the API."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import integrations, serializers, simulation
from .errors import ApiError, not_found, validation
from .faults import parse_rule
from .organization import KEY_USER, PROJECTS
from .scene_controls import scene_routes
from .state import Sandbox
from .timeutil import drf, parse_drf_datetime

Control = Callable[[Sandbox, Request, Any], Any]


def _json_route(path: str, methods: list[str]) -> Callable[[Control], Route]:
    def wrap(fn: Control) -> Route:
        async def endpoint(request: Request) -> Response:
            raw = await request.body()
            try:
                body = json.loads(raw) if raw.strip() else {}
            except json.JSONDecodeError as exc:
                return JSONResponse(validation(f"JSON parse error - {exc}").body(), 400)
            try:
                result = fn(request.app.state.sandbox, request, body)
            except ApiError as exc:
                return JSONResponse(exc.body(), exc.status)
            status, payload = result if isinstance(result, tuple) else (200, result)
            return JSONResponse(payload, status)

        return Route(path, endpoint, methods=methods, name=fn.__name__)

    return wrap


OUTCOMES = ("succeed", "fail", "fail_retryable", "intermittent")


def _clock(sb: Sandbox) -> dict[str, Any]:
    return {"now": drf(sb.catch_up())}


def _plain(obj: dict[str, Any]) -> dict[str, Any]:
    return {k: (drf(v) if hasattr(v, "tzinfo") else v) for k, v in obj.items() if not k.startswith("_")}


def control_routes() -> list[Route]:
    routes: list[Route] = []

    @_json_route("/_sandbox/clock", ["GET"])
    def get_clock(sb: Sandbox, request: Request, body: Any) -> Any:
        return _clock(sb)

    @_json_route("/_sandbox/clock/advance", ["POST"])
    def advance_clock(sb: Sandbox, request: Request, body: Any) -> Any:
        seconds = body.get("seconds") if isinstance(body, dict) else None
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0:
            raise validation("'seconds' must be a non-negative number.", "seconds")
        sb.catch_up()
        with sb.store.lock:
            sb.clock.set(sb.clock.now() + timedelta(seconds=seconds))
            return _clock(sb)

    @_json_route("/_sandbox/clock/set", ["POST"])
    def set_clock(sb: Sandbox, request: Request, body: Any) -> Any:
        try:
            target = parse_drf_datetime(body.get("now") if isinstance(body, dict) else None)
        except ValueError:
            raise validation("'now' must be an ISO-8601 datetime.", "now") from None
        now = sb.catch_up()
        if target < now:
            raise validation("The sandbox clock only moves forward.", "now")
        with sb.store.lock:
            sb.clock.set(target)
            return _clock(sb)

    @_json_route("/_sandbox/exports/{id}/outcome", ["POST"])
    def set_outcome(sb: Sandbox, request: Request, body: Any) -> Any:
        if not isinstance(body, dict) or body.get("outcome") not in OUTCOMES:
            raise validation("'outcome' must be one of 'succeed', 'fail', 'fail_retryable', 'intermittent'.", "outcome")
        records = body.get("records")
        if records is not None and (isinstance(records, bool) or not isinstance(records, int) or records < 0):
            raise validation("'records' must be a non-negative integer or null.", "records")
        with sb.transaction():
            export = sb.store.get_export(request.path_params["id"])
            if export is None:
                raise not_found()
            export["_outcome"] = {"outcome": body["outcome"], "error": body.get("error"), "records": records}
            sb.store.put_export(export)
        return {"id": export["id"], **export["_outcome"]}

    @_json_route("/_sandbox/faults", ["GET", "POST", "DELETE"])
    def faults(sb: Sandbox, request: Request, body: Any) -> Any:
        if request.method == "POST":
            sb.faults.add(parse_rule(body))
            return 201, {"faults": sb.faults.list()}
        if request.method == "DELETE":
            sb.faults.clear()
        return {"faults": sb.faults.list()}

    @_json_route("/_sandbox/requests", ["GET", "DELETE"])
    def requests(sb: Sandbox, request: Request, body: Any) -> Any:
        if request.method == "DELETE":
            sb.requests.clear()
        return {"requests": sb.requests.list()}

    @_json_route("/_sandbox/state", ["GET"])
    def state(sb: Sandbox, request: Request, body: Any) -> Any:
        with sb.transaction() as now:
            store = sb.store
            exports = store.list_exports(include_deleted=True)
            by_id = {e["id"]: e for e in exports}
            out_exports = []
            for e in exports:
                item = _plain(e)
                item.update(
                    deleted=bool(e.get("deleted")), outcome=e["_outcome"], interval_offset=e.get("interval_offset")
                )
                out_exports.append(item)
            return {
                "now": drf(now),
                "generation": sb.generation,
                "exports": out_exports,
                "runs": [serializers.run(r) for r in store.list_runs()],
                "backfills": [
                    serializers.backfill(b, 3, simulation.progress(store, b, by_id.get(b["batch_export"]), now))
                    for b in store.list_backfills(written_by=now)
                ],
                # started (the API answered), but the workflow has not written the row yet
                "pending_backfills": [
                    {"id": b["id"], "batch_export": b["batch_export"], "written_at": drf(b["created_at"])}
                    for b in store.list_backfills()
                    if b["created_at"] > now
                ],
                "log_count": store.count_logs(),
                "integrations": store.list_integrations(),
            }

    @_json_route("/_sandbox/integrations", ["POST"])
    def add_integration(sb: Sandbox, request: Request, body: Any) -> Any:
        """Any kind, including those PostHog's API cannot create (aws-redshift, OAuth kinds)."""
        if not isinstance(body, dict):
            raise validation("Expected a JSON object.")
        kind, team_id = body.get("kind"), body.get("team_id", 1)
        if kind not in integrations.KINDS:
            raise validation(f"'kind' must be one of PostHog's integration kinds, got {kind!r}.", "kind")
        if team_id not in PROJECTS:
            raise validation(f"'team_id' must be one of {sorted(PROJECTS)}.", "team_id")
        name = body.get("integration_id")
        if not isinstance(name, str) or not name:
            raise validation("'integration_id' must be a non-empty string (the name PostHog shows).", "integration_id")
        config, secrets = body.get("config", {}), body.get("sensitive_config", {})
        if not isinstance(config, dict) or not isinstance(secrets, dict):
            raise validation("'config' and 'sensitive_config' must be objects.")
        created_by = body.get("created_by", KEY_USER.id)
        with sb.transaction() as now:
            id_ = integrations.add(sb.store, team_id, kind, name, config, secrets, now, created_by)
            return 201, integrations.render(sb.store, {"id": id_, "kind": kind})

    @_json_route("/_sandbox/throttle", ["POST"])
    def throttle(sb: Sandbox, request: Request, body: Any) -> Any:
        enabled = body.get("enabled") if isinstance(body, dict) else None
        if not isinstance(enabled, bool):
            raise validation("'enabled' must be a boolean.", "enabled")
        sb.throttle.enabled = enabled
        if not enabled:
            sb.throttle.reset()
        return {"enabled": enabled}

    @_json_route("/_sandbox/reset", ["POST"])
    def reset(sb: Sandbox, request: Request, body: Any) -> Any:
        sb.reset()
        return _clock(sb)

    routes += [
        get_clock,
        advance_clock,
        set_clock,
        set_outcome,
        faults,
        requests,
        state,
        add_integration,
        throttle,
        reset,
    ]
    routes += scene_routes(_json_route)  # scenes, outages, hostile text, running backfills
    return routes
