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

LOG_BODY_CHARS = 600
MASK = "[masked]"
# Values of keys that name credentials or confirmations, in JSON text at any depth of quoting (a tool
# result's text block is JSON inside a JSON string).
_KEYED_VALUE = re.compile(
    r'(\\*"(?:[A-Za-z_]*(?:token|secret|password|private_key|api_key|requestState|request_state)[A-Za-z_]*)\\*"'
    r'\s*:\s*\\*")([^"\\]*)'
)
# A confirmation token or request state: base64url payload, a dot, a base64url MAC.
_SIGNED = re.compile(r"[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{22,}")


def mask_text(text: str, known: Iterable[str] = ()) -> str:
    """Text with known secret values, keyed secrets inside JSON text and signed tokens masked."""
    from tools import secrets  # on first use: the logging set up at start-up must not load the catalog's models

    text = secrets.redact(text, [s for s in known if s and len(s) >= 8])
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
    # Every destination secret key counts here, not only those under a config: a log line may be wrong
    # to hide a value, never to show one.
    from tools import secrets

    text = json.dumps(secrets.mask(body, MASK), separators=(",", ":"), ensure_ascii=False, default=str)
    return shorten(mask_text(text, known))


class StreamedBodies(logging.Filter):
    """Shortens and masks the bodies libraries log at DEBUG (sse_starlette's "chunk: ..." lines)."""

    LOGGERS = ("sse_starlette",)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno <= logging.DEBUG and record.name.startswith(self.LOGGERS):
            record.msg, record.args = for_log(record.getMessage()), None
        return True
