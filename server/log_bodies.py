"""What a log line may show of a message body: its start, with secrets and confirmation tokens masked.

Two kinds of body reach DEBUG logs: PostHog's answers (server/posthog.py logs them) and the MCP
messages the HTTP transport streams (sse_starlette logs every chunk it sends, results included,
and a result may carry a confirmation token). Both are cut to LOG_BODY_CHARS and masked here.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from typing import Any

from tools.models import SECRET_CONFIG_KEYS

LOG_BODY_CHARS = 600
MASK = "[masked]"
# Keys whose values are credentials or confirmations, wherever they sit in a body.
_SECRET_WORDS = ("token", "secret", "password", "private_key", "api_key", "authorization", "request_state")
# The same values inside JSON text (a tool result's text block is JSON in a string).
_KEYED_VALUE = re.compile(
    r'(\\*"(?:[A-Za-z_]*(?:token|secret|password|private_key|api_key|requestState|request_state)[A-Za-z_]*)\\*"'
    r'\s*:\s*\\*")([^"\\]*)'
)
# A confirmation token or request state: base64url payload, a dot, a base64url MAC.
_SIGNED = re.compile(r"[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{22,}")


def _is_secret_key(key: Any) -> bool:
    return isinstance(key, str) and (key in SECRET_CONFIG_KEYS or any(w in key.lower() for w in _SECRET_WORDS))


def mask_value(value: Any) -> Any:
    """A decoded body with every secret-looking value replaced, at any depth."""
    if isinstance(value, dict):
        return {k: MASK if _is_secret_key(k) else mask_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_value(v) for v in value]
    return value


def mask_text(text: str, known: Iterable[str] = ()) -> str:
    """Text with known secret values, keyed secrets inside JSON text and signed tokens masked."""
    for secret in sorted((s for s in known if s and len(s) >= 8), key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = _KEYED_VALUE.sub(lambda m: m.group(1) + MASK, text)
    return _SIGNED.sub(MASK, text)


def shorten(text: str, limit: int = LOG_BODY_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more chars)"


def for_log(body: bytes | str | Any, known: Iterable[str] = ()) -> str:
    """A body (raw bytes, text, or decoded JSON) as one short, masked log fragment."""
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        if not body.strip():
            return "(empty)"
        try:
            body = json.loads(body)
        except ValueError:
            return shorten(mask_text(body, known))
    text = json.dumps(mask_value(body), separators=(",", ":"), ensure_ascii=False, default=str)
    return shorten(mask_text(text, known))


class StreamedBodies(logging.Filter):
    """Shortens and masks the bodies libraries log at DEBUG (sse_starlette's "chunk: ..." lines)."""

    LOGGERS = ("sse_starlette",)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG and record.name.startswith(self.LOGGERS):
            record.msg, record.args = for_log(record.getMessage()), None
        return True
