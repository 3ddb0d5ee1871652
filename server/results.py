"""The one place that shapes what a tool returns: secrets stripped, size kept in budget,
structuredContent plus the same JSON as text for clients that read only text."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import mcp.types as types

from tools.models import SECRET_CONFIG_KEYS

# Roughly 12k tokens: enough for a page of runs or logs, small enough not to flood a context.
MAX_RESULT_BYTES = 48_000
REDACTED = "[redacted]"


def strip_secrets(value: Any, *, in_config: bool = False) -> Any:
    """Drop secret destination keys at any depth under a `config`, as PostHog does on read."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if in_config and key in SECRET_CONFIG_KEYS:
                continue
            out[key] = strip_secrets(item, in_config=in_config or key in ("config", "copy_inputs"))
        return out
    if isinstance(value, list):
        return [strip_secrets(item, in_config=in_config) for item in value]
    return value


def redact(value: Any, secrets: Iterable[str]) -> Any:
    """Replace any known secret string (the API key, secret arguments) wherever it appears."""
    needles = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)
    if not needles:
        return value

    def walk(item: Any) -> Any:
        if isinstance(item, str):
            for needle in needles:
                if needle in item:
                    item = item.replace(needle, REDACTED)
            return item
        if isinstance(item, dict):
            return {k: walk(v) for k, v in item.items()}
        if isinstance(item, list):
            return [walk(v) for v in item]
        return item

    return walk(value)


def secret_values(arguments: Any) -> set[str]:
    """Secret strings a caller passed (destination config secrets), to scrub from every echo."""
    found: set[str] = set()

    def walk(item: Any, in_config: bool) -> None:
        if isinstance(item, dict):
            for key, value in item.items():
                if in_config and key in SECRET_CONFIG_KEYS and isinstance(value, str):
                    found.add(value)
                walk(value, in_config or key in ("config", "copy_inputs"))
        elif isinstance(item, list):
            for value in item:
                walk(value, in_config)

    walk(arguments, False)
    return found


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def fit_budget(value: Any) -> Any:
    """Cut a long `results` list so the answer stays within MAX_RESULT_BYTES, and say so."""
    if not (isinstance(value, dict) and isinstance(value.get("results"), list)):
        return value
    if len(dumps(value)) <= MAX_RESULT_BYTES:
        return value
    results = value["results"]
    kept = len(results)
    while kept > 1 and len(dumps({**value, "results": results[:kept]})) > MAX_RESULT_BYTES:
        kept = max(1, kept * 3 // 4)
    return {
        **value,
        "results": results[:kept],
        "truncated": f"showing {kept} of {len(results)} results to stay within the context budget; "
        "narrow the query (limit, filters) or page on.",
    }


def success(value: Any, secrets: Iterable[str] = ()) -> types.CallToolResult:
    shaped = redact(fit_budget(strip_secrets(value)), secrets)
    return types.CallToolResult(content=[types.TextContent(type="text", text=dumps(shaped))], structured_content=shaped)


def failure(message: str, secrets: Iterable[str] = (), details: dict[str, Any] | None = None) -> types.CallToolResult:
    """A tool error: one clear line for the model, in text only.

    No structuredContent: it would have to match the tool's outputSchema, which describes
    success, and some clients (the Inspector among them) check it even on errors. `details`
    go to the result's `_meta` instead, for clients and tests that want them.
    """
    text = redact(message, secrets)
    meta = {"posthog-batch-exports-mcp/error": redact(strip_secrets(details), secrets)} if details else None
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True, _meta=meta)
