"""The one place that shapes what a tool returns: secrets stripped, PostHog's text cleaned, size kept in
budget, structuredContent plus the same JSON as text for clients that read only text, marked there as
PostHog's data (server/untrusted.py).

The budget is the fleet rule (docs/architecture.md): at most 16 KB of text an answer. A list cut to fit
says what it left out and the call that continues after the last item shown, in the one shape
`tools/continuation.py` gives every tool; PostHog's `next`/`previous` page links are dropped then,
since following them would skip what was cut.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any

import mcp.types as types

from server import untrusted
from tools import continuation
from tools import secrets as secret_walker

# Results, previews, the audit trail and the log filter walk secrets one way (tools/secrets.py).
REDACTED = secret_walker.REDACTED
strip_secrets = secret_walker.strip
redact = secret_walker.redact
secret_values = secret_walker.collect

# About 4k tokens: what one answer may cost a model's context, at any project size.
MAX_RESULT_BYTES = continuation.BUDGET
# Kept free when fitting: redacting the caller's secrets may lengthen the text a little.
_REDACTION_ROOM = 256
_NOTE_ROOM = 700  # the omitted note a cut list gets
_SHORTEST_CUT = 200  # strings are never cut shorter than this many characters

Resume = Callable[[int], dict[str, Any] | None]


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)


def fit_budget(value: Any, resume: Resume | None = None, budget: int = MAX_RESULT_BYTES) -> Any:
    """The answer within `budget` bytes without losing anything silently.

    A list tool's page (`results`, with `resume` from its declaration) is cut to the items that fit and
    gets the `omitted` note `resume` gives for that many (also when nothing is cut but more follow).
    Anything still too long (one huge item, or an answer without a list) has its longest texts shortened,
    each saying how long it was.
    """
    limit = budget - _REDACTION_ROOM
    if isinstance(value, dict) and isinstance(value.get("results"), list) and resume is not None:
        results = value["results"]
        shown = len(results)
        if continuation.size(value) > limit:
            shown = continuation.fit_prefix(value, "results", limit, room=_NOTE_ROOM)
        more = resume(shown)
        value = {**value, "results": results[:shown]}
        if shown < len(results):
            value = {k: v for k, v in value.items() if k not in ("next", "previous", "omitted")}
        if more is not None:
            value["omitted"] = more
    if continuation.size(value) > limit:
        value = _shorten_texts(value, limit)
    return value


def _shorten_texts(value: Any, limit: int) -> Any:
    """Cut the longest strings in `value`, each marked with its full length, until it fits `limit`."""
    cut = max(_SHORTEST_CUT, limit // 2)
    while continuation.size(value) > limit and cut >= _SHORTEST_CUT:
        value = _cut_strings(value, cut)
        cut //= 2
    return value


def _cut_strings(value: Any, cut: int) -> Any:
    if isinstance(value, str) and len(value) > cut:
        return f"{value[:cut]}… (cut to fit the answer budget: {len(value)} characters in all)"
    if isinstance(value, dict):
        return {k: _cut_strings(v, cut) for k, v in value.items()}
    if isinstance(value, list):
        return [_cut_strings(v, cut) for v in value]
    return value


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


def success(value: Any, secrets: Iterable[str] = (), resume: Resume | None = None) -> types.CallToolResult:
    """A tool's answer; `resume(shown)` is its declaration's continuation for a list cut at `shown`."""
    shaped = fit_budget(without_nulls(safe(value, secrets)), resume)
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
