"""Who is asking: the name of the caller of the current request, for audit and log lines.

The HTTP transport sets it from the authenticated bearer token's name or the JWT's subject;
over stdio there is one local user. It is a name, never a token.
"""

from __future__ import annotations

from contextvars import ContextVar

LOCAL_CALLER = "local"

current_caller: ContextVar[str] = ContextVar("posthog_mcp_caller", default=LOCAL_CALLER)


def caller_name() -> str:
    """The current request's caller, as the audit trail and the logs name it."""
    return current_caller.get()
