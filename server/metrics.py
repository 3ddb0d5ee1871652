"""Prometheus metrics: tool calls, guard decisions, PostHog's answers, refusals at the edge.

The hooks are one call each, in the call path (server/app.py), the guard (server/guard.py),
the PostHog client (server/posthog.py) and the HTTP edge (server/edge.py). Labels hold
only bounded values: catalog tool names, decisions, methods, status codes, reasons; never
a caller, an id or an argument. Without the `metrics` extra (prometheus-client) every
hook does nothing and /metrics says how to turn it on.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import mcp.types as types
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

try:
    import prometheus_client
except ImportError:  # the optional extra is not installed
    prometheus_client = None  # type: ignore[assignment]

METRICS_PATH = "/metrics"
UNKNOWN_TOOL = "unknown"

if prometheus_client is not None:
    REGISTRY = prometheus_client.CollectorRegistry()
    prometheus_client.ProcessCollector(registry=REGISTRY)
    TOOL_CALLS = prometheus_client.Counter(
        "posthog_mcp_tool_calls",
        "Tool calls by tool and outcome (ok, error, confirmation_required, input_required).",
        ["tool", "outcome"],
        registry=REGISTRY,
    )
    TOOL_SECONDS = prometheus_client.Histogram(
        "posthog_mcp_tool_call_duration_seconds",
        "Time to answer a tool call, PostHog's time included.",
        ["tool"],
        registry=REGISTRY,
        buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
    )
    GUARD_DECISIONS = prometheus_client.Counter(
        "posthog_mcp_guard_decisions",
        "Decisions of the confirmation guard, as the audit trail records them.",
        ["tool", "decision"],
        registry=REGISTRY,
    )
    UPSTREAM_RESPONSES = prometheus_client.Counter(
        "posthog_mcp_upstream_responses",
        "PostHog's answers by method and HTTP status ('error' when no answer came).",
        ["method", "status"],
        registry=REGISTRY,
    )
    EDGE_REFUSALS = prometheus_client.Counter(
        "posthog_mcp_http_refusals",
        "HTTP requests refused at the edge: unauthenticated, insufficient_scope, rate_limited, locked_out, "
        "verifier_unavailable.",
        ["reason"],
        registry=REGISTRY,
    )


def _tool_label(name: str) -> str:
    from tools.catalog import BY_NAME

    # A client may call any name; only catalog names become label values.
    return name if name in BY_NAME else UNKNOWN_TOOL


def outcome_of(result: Any) -> str:
    if isinstance(result, types.InputRequiredResult):
        return "input_required"
    if isinstance(result, types.CallToolResult):
        if result.is_error:
            return "error"
        content = result.structured_content
        if isinstance(content, dict) and content.get("status") == "confirmation_required":
            return "confirmation_required"
    return "ok"


Handler = TypeVar("Handler", bound=Callable[..., Awaitable[Any]])


def counted_call(handler: Handler) -> Handler:
    """Wrap an `on_call_tool` handler `(self, ctx, params)`: count and time every call."""

    @functools.wraps(handler)
    async def wrapper(self: Any, ctx: Any, params: types.CallToolRequestParams) -> Any:
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await handler(self, ctx, params)
            outcome = outcome_of(result)
            return result
        finally:
            if prometheus_client is not None:
                tool = _tool_label(params.name)
                TOOL_CALLS.labels(tool, outcome).inc()
                TOOL_SECONDS.labels(tool).observe(time.perf_counter() - started)

    return wrapper  # type: ignore[return-value]  # same signature as the wrapped handler


def guard_decision(tool: str, decision: str) -> None:
    if prometheus_client is not None:
        GUARD_DECISIONS.labels(_tool_label(tool), decision).inc()


def upstream_response(method: str, status: int | None) -> None:
    if prometheus_client is not None:
        UPSTREAM_RESPONSES.labels(method.upper(), str(status) if status is not None else "error").inc()


def refused(reason: str) -> None:
    if prometheus_client is not None:
        EDGE_REFUSALS.labels(reason).inc()


async def metrics_endpoint(request: Request) -> Response:
    if prometheus_client is None:
        return JSONResponse(
            {
                "error": "metrics_not_installed",
                "message": "Install the metrics extra: posthog-batch-exports-mcp[metrics].",
            },
            status_code=501,
        )
    return Response(prometheus_client.generate_latest(REGISTRY), media_type=prometheus_client.CONTENT_TYPE_LATEST)


def routes() -> list[Route]:
    return [Route(METRICS_PATH, metrics_endpoint, methods=["GET"])]
