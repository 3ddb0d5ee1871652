"""Prometheus metrics: tool calls, guard decisions, PostHog's answers, refusals at the edge.

The hooks are one call each, in the call path (server/app.py), the guard (server/guard/decision.py),
the PostHog client (server/posthog.py) and the HTTP edge (server/http/edge.py). Labels hold
only bounded values: catalog tool names, decisions, methods, status codes, reasons; never
a caller, an id or an argument. Counting starts when an HTTP server starts (stdio has no
/metrics); without the `metrics` extra (prometheus-client) every hook does nothing and
/metrics says how to turn it on.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import mcp.types as types

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Histogram
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

METRICS_PATH = "/metrics"
UNKNOWN_TOOL = "unknown"


@dataclass(frozen=True)
class Collectors:
    registry: CollectorRegistry
    tool_calls: Counter
    tool_seconds: Histogram
    guard_decisions: Counter
    upstream_responses: Counter
    edge_refusals: Counter


# Made by `enable()` when an HTTP server starts: stdio has no /metrics, and
# prometheus-client stays out of its start-up time.
_collectors: Collectors | None = None


def enable() -> bool:
    """Start counting (idempotent); False when the `metrics` extra is not installed."""
    global _collectors
    if _collectors is not None:
        return True
    try:
        import prometheus_client as prom
    except ImportError:
        return False
    registry = prom.CollectorRegistry()
    prom.ProcessCollector(registry=registry)
    _collectors = Collectors(
        registry=registry,
        tool_calls=prom.Counter(
            "posthog_mcp_tool_calls",
            "Tool calls by tool and outcome (ok, error, confirmation_required, input_required).",
            ["tool", "outcome"],
            registry=registry,
        ),
        tool_seconds=prom.Histogram(
            "posthog_mcp_tool_call_duration_seconds",
            "Time to answer a tool call, PostHog's time included.",
            ["tool"],
            registry=registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        ),
        guard_decisions=prom.Counter(
            "posthog_mcp_guard_decisions",
            "Decisions of the confirmation guard, as the audit trail records them.",
            ["tool", "decision"],
            registry=registry,
        ),
        upstream_responses=prom.Counter(
            "posthog_mcp_upstream_responses",
            "PostHog's answers by method and HTTP status.",
            ["method", "status"],
            registry=registry,
        ),
        edge_refusals=prom.Counter(
            "posthog_mcp_http_refusals",
            "HTTP requests refused at the edge, by reason: unauthenticated, insufficient_scope, rate_limited, "
            "locked_out, verifier_unavailable.",
            ["reason"],
            registry=registry,
        ),
    )
    return True


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
            if _collectors is not None:
                tool = _tool_label(params.name)
                _collectors.tool_calls.labels(tool, outcome).inc()
                _collectors.tool_seconds.labels(tool).observe(time.perf_counter() - started)

    return wrapper  # type: ignore[return-value]  # same signature as the wrapped handler


def guard_decision(tool: str, decision: str) -> None:
    if _collectors is not None:
        _collectors.guard_decisions.labels(_tool_label(tool), decision).inc()


def upstream_response(method: str, status: int) -> None:
    if _collectors is not None:
        _collectors.upstream_responses.labels(method.upper(), str(status)).inc()


def refused(reason: str) -> None:
    if _collectors is not None:
        _collectors.edge_refusals.labels(reason).inc()


def routes() -> list[Route]:
    """`/metrics` in Prometheus' text format (501 with what to install when the extra is missing)."""
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    enabled = enable()

    async def endpoint(request: Request) -> Response:
        if not enabled or _collectors is None:
            return JSONResponse(
                {
                    "error": "metrics_not_installed",
                    "message": "Install the metrics extra: pip install 'posthog-batch-exports-mcp[metrics]'.",
                },
                status_code=501,
            )
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(_collectors.registry), media_type=CONTENT_TYPE_LATEST)

    return [Route(METRICS_PATH, endpoint, methods=["GET"])]
