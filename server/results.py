"""The one place that shapes what a tool returns: secrets stripped, PostHog's text cleaned, size kept in
budget, structuredContent plus the same JSON as text for clients that read only text, marked there as
PostHog's data (server/untrusted.py)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

import mcp.types as types

from server import untrusted
from tools import secrets as secret_walker

# Results, previews, the audit trail and the log filter walk secrets one way (tools/secrets.py).
REDACTED = secret_walker.REDACTED
strip_secrets = secret_walker.strip
redact = secret_walker.redact
secret_values = secret_walker.collect

# Roughly 12k tokens: enough for a page of runs or logs, small enough not to flood a context.
MAX_RESULT_BYTES = 48_000


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


def without_nulls(value: Any) -> Any:
    """Fields whose value is null left out, at any depth: they say nothing and cost context."""
    if isinstance(value, dict):
        return {k: without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [without_nulls(v) for v in value]
    return value


def safe(value: Any, secrets: Iterable[str] = ()) -> Any:
    """Secrets stripped and redacted, then every string cleaned: what any answer may show of `value`.

    Redacted before cleaning (a secret is found as it was sent) and after it too (a secret holding a
    character the cleaner drops would otherwise reappear without it).
    """
    known = set(secrets)
    redacted = redact(strip_secrets(value), known)
    return redact(untrusted.clean_data(redacted), {untrusted.clean(s) for s in known})


def success(value: Any, secrets: Iterable[str] = ()) -> types.CallToolResult:
    shaped = fit_budget(without_nulls(safe(value, secrets)))
    text = untrusted.mark(dumps(shaped))
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], structured_content=shaped)


def failure(
    message: str,
    secrets: Iterable[str] = (),
    details: dict[str, Any] | None = None,
    *,
    quotes: Iterable[str] = (),
) -> types.CallToolResult:
    """A tool error: one clear line for the model, in text only.

    No structuredContent: it would have to match the tool's outputSchema, which describes
    success, and some clients (the Inspector among them) check it even on errors. `details`
    go to the result's `_meta` instead, for clients and tests that want them. `quotes` are the
    parts of the message PostHog wrote (its error's detail, a reason built from its state): the
    line marks them as data where they appear.
    """
    known = set(secrets)
    text = untrusted.clean_line(safe(message, known))
    quoted = [untrusted.clean_line(safe(quote, known)).strip() for quote in quotes]
    text = untrusted.mark_inline(text, [quote for quote in quoted if quote])
    meta = {"posthog-batch-exports-mcp/error": safe(details, known)} if details else None
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True, _meta=meta)
