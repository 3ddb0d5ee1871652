"""The HTTP application: request pipeline for `/api/` (faults, auth, scopes, project, throttle, handler),
the `/_sandbox/` controls, and the request log."""

from __future__ import annotations

import asyncio
import json
import sys
import traceback
from collections.abc import MutableMapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import errors
from .auth import check_scope, find_key
from .config import SandboxConfig
from .controls import control_routes
from .errors import ApiError
from .faults import FaultRule
from .handlers import Ctx
from .organization import CURRENT_PROJECT, PROJECTS, USER_ORGANIZATION
from .routes import match
from .state import Sandbox

ALL_METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]


def _parse_body(raw: bytes, content_type: str) -> Any:
    if not raw.strip():
        return None
    if "application/x-www-form-urlencoded" in content_type:
        return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise errors.parse_error(f"JSON parse error - {exc}") from None


def _resolve_project(raw: str) -> int:
    if raw == "@current":
        return CURRENT_PROJECT
    if not raw.isdigit():
        raise errors.not_found("Project not found.")
    return int(raw)


def dispatch(sb: Sandbox, request: Request, raw_body: bytes) -> tuple[int, Any]:
    """Everything between the socket and a handler, in DRF's order. Returns `(status, body or None)`."""
    route = match(request.url.path, sb.generation)
    if route is None:
        raise errors.not_found()
    parse_failure: ApiError | None = None
    try:
        body = _parse_body(raw_body, request.headers.get("content-type", ""))
    except ApiError as exc:
        body, parse_failure = None, exc
    key = find_key(request.headers, body, request.query_params, sb.keys)
    if parse_failure:
        raise parse_failure
    action = route.methods.get(request.method)
    if action is None:
        raise errors.method_not_allowed(request.method)
    project = _resolve_project(route.project) if route.project is not None else None
    required = action.scope(sb.generation)
    if action.refusable and sb.config.logs_for_keys == "refused":
        required = None
    if route.project is None:  # GET /api/personal_api_keys/@current/
        if sb.current_key_requires_scope and key.scopes:  # a legacy key may always read itself
            check_scope(key, "personal_api_key:read", None, sb.generation)
    else:
        check_scope(key, required, project, sb.generation)
        if project not in PROJECTS:
            raise errors.not_found("Project not found.")
        if PROJECTS[project] != USER_ORGANIZATION:
            raise errors.permission_denied("You don't have access to the project.")
    sb.throttle.check(key.value)
    with sb.transaction() as now:
        # DRF's request.data is an empty dict for an empty body
        ctx = Ctx(
            sb,
            project or CURRENT_PROJECT,
            key,
            request.query_params,
            {} if body is None else body,
            str(request.url),
            now,
        )
        return action.handler(ctx, **route.params)


async def api_endpoint(request: Request) -> Response:
    sb: Sandbox = request.app.state.sandbox
    raw = await request.body()
    try:
        status, body = dispatch(sb, request, raw)
    except ApiError as exc:
        headers = dict(exc.headers)
        if exc.status == 401:
            # Where an OAuth client learns how to get a token (docs/posthog-api.md, "Errors and headers").
            metadata = f"{request.base_url}.well-known/oauth-protected-resource"
            headers["WWW-Authenticate"] = f'Bearer resource_metadata="{metadata}"'
        if exc.empty:
            return Response(status_code=exc.status, headers=headers)
        return JSONResponse(exc.body(), exc.status, headers=headers)
    except Exception:  # noqa: BLE001 - PostHog answers the generic 500 envelope
        traceback.print_exc(file=sys.stderr)
        return JSONResponse(errors.server_error().body(), 500)
    if body is None:
        return Response(status_code=status)
    return JSONResponse(body, status)


def _fault_response(rule: FaultRule) -> Response:
    if rule.database_unavailable:
        error = errors.database_unavailable()
        return JSONResponse(error.body(), error.status, headers=error.headers)
    if rule.malformed_json:
        return Response(
            '{"count": 3, "next": null, "previous": null, "results": [{"id": "0190f4b2-',
            status_code=rule.status or 200,
            media_type="application/json",
        )
    if rule.detail is not None:
        # PostHog's own envelope, carrying text it stored or was told (a name, a destination's message).
        status = rule.status or 400
        body = errors.generic_for_status(status)
        return JSONResponse({**body, "detail": rule.detail}, status)
    status = rule.status or 502
    if rule.html:
        return Response(
            f"<!DOCTYPE html><html><head><title>{status}</title></head><body><h1>{status} Bad Gateway"
            "</h1><p>The upstream server is temporarily unavailable.</p></body></html>",
            status_code=status,
            media_type="text/html",
        )
    body = errors.generic_for_status(status)
    headers = {}
    if status == 429 and rule.retry_after is not None:
        headers["Retry-After"] = rule.retry_after
        if rule.retry_after.isdigit():
            body = errors.throttled(int(rule.retry_after)).body()
    return JSONResponse(body, status, headers=headers)


async def _drop_connection(send: Any) -> None:
    """Close the socket without writing a response (uvicorn passes its cycle's bound `send`)."""
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is None:
        raise ConnectionAbortedError("sandbox fault: drop connection")
    transport.abort()
    await asyncio.sleep(0.01)  # let uvicorn see the disconnect before the app returns


async def _read_request_first(receive: Any) -> Any:
    """Read the whole request body now; return a `receive` that replays it, then listens as usual."""
    pending: list[dict[str, Any]] = []
    while True:
        message = await receive()
        pending.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break

    async def replay() -> dict[str, Any]:
        return pending.pop(0) if pending else await receive()

    return replay


class SandboxApp(Starlette):
    """Starlette plus the outermost layer for `/api/`: record the request, apply injected faults."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/api/"):
            await super().__call__(scope, receive, send)
            return
        sb: Sandbox = self.state.sandbox
        seen: dict[str, Any] = {"status": None}

        rule = sb.faults.take(scope["method"], scope["path"])

        def record() -> None:
            if seen.get("recorded"):
                return
            seen["recorded"] = True
            sb.requests.add(
                {
                    "method": scope["method"],
                    "path": scope["path"],
                    "query": scope.get("query_string", b"").decode("latin-1"),
                    "status": seen["status"],
                    "time": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
                }
            )

        async def capture(message: MutableMapping[str, Any]) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = message["status"]
                record()  # before the client can see the response, so the log is never behind it
            await send(message)

        if rule and rule.latency_ms:
            # A slow PostHog has the request in hand and does the work even if the client stops waiting;
            # sleeping before reading the body would turn a late answer into a write that never happens.
            receive = await _read_request_first(receive)
            await asyncio.sleep(rule.latency_ms / 1000)
        if rule and rule.drop_connection:
            record()  # before the socket goes, so the log is complete when the client sees the failure
            await _drop_connection(send)
            return
        try:
            if rule and (
                rule.status or rule.html or rule.malformed_json or rule.database_unavailable or rule.detail is not None
            ):
                await _fault_response(rule)(scope, receive, capture)
            else:
                await super().__call__(scope, receive, capture)
        finally:
            record()


def create_app(config: SandboxConfig) -> Starlette:
    """A Starlette app serving the sandbox for `config` (state is created now, seeded if the database is new)."""
    sandbox = Sandbox(config)
    app = SandboxApp(routes=[*control_routes(), Route("/{path:path}", api_endpoint, methods=ALL_METHODS)])
    app.state.sandbox = sandbox
    return app
