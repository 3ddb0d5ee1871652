"""Who is asking: the name of the caller of the current request, for audit and log lines.

The HTTP transport sets it from the authenticated bearer token's name or the JWT's subject;
over stdio there is one local user. It is a name, never a token.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar

LOCAL_CALLER = "local"

current_caller: ContextVar[str] = ContextVar("posthog_mcp_caller", default=LOCAL_CALLER)


def caller_name() -> str:
    """The current request's caller, as the audit trail and the logs name it."""
    return current_caller.get()


class CallerField(logging.Filter):
    """Gives every log record a `caller` field, so each line of a call says who made it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.caller = caller_name()
        return True
