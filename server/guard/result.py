"""What a guarded tool answers, declared once: the guard builds it, the tool definition advertises it.

A guarded call either executed, or asks for confirmation (a preview, and in the token channel a
token to send back), or the person said no. Refusals and failures are tool errors (text only), so
they are not part of this success shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

TOKEN_PARAM = "confirmation_token"
"""The argument that carries a token back, and the result field that hands it out."""


class GuardedStatus(StrEnum):
    EXECUTED = "executed"
    CONFIRMATION_REQUIRED = "confirmation_required"
    DECLINED = "declined"
    CANCELLED = "cancelled"


STATUSES = [status.value for status in GuardedStatus]

_NOT_SET = object()


@dataclass(frozen=True)
class GuardedResult:
    """The structuredContent of a guarded tool's success; `body()` is what goes on the wire."""

    status: GuardedStatus
    message: str
    result: Any = _NOT_SET
    preview: dict[str, Any] | None = None
    token: str | None = None
    expires_at: str | None = None

    def body(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": self.status.value, "message": self.message}
        if self.result is not _NOT_SET:
            out["result"] = self.result
        if self.preview is not None:
            out["preview"] = self.preview
        if self.token is not None:
            out[TOKEN_PARAM] = self.token
        if self.expires_at is not None:
            out["expires_at"] = self.expires_at
        return out


def guarded_output_schema(result_schema: dict[str, Any]) -> dict[str, Any]:
    """The outputSchema of a guarded tool whose executed `result` follows `result_schema`.

    It names what a caller branches on: the status and, once executed, the result. The message,
    preview, token and expiry a result also carries are read in its text (the token's parameter is
    in the tool's inputSchema), so they are not listed again in every session's context.
    """
    return {
        "type": "object",
        "properties": {"status": {"enum": STATUSES}, "result": result_schema},
        "required": ["status"],
    }
