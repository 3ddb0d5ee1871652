"""What a tool's functions send to PostHog and what comes back: the `Request`, the `Upstream` that sends
it, and the error a refusal raises. The declaration (`tools/declaration.py`) and the request builder
(`tools/request.py`) both speak these terms, so they live apart from both.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import quote

HttpMethod = Literal["GET", "POST", "PATCH", "DELETE"]


@dataclass(frozen=True)
class Request:
    """One request relative to the project: `/api/<route>/<project_id>/<path>`.

    `query` values are strings, numbers or lists (a list repeats the key); `body` is the
    JSON body, None for none.
    """

    method: HttpMethod
    path: str
    query: dict[str, Any] = field(default_factory=dict)
    body: Any = None


def path_for(template: str, **values: Any) -> str:
    """Fill a path template, escaping each value so it stays inside its own segment."""
    return template.format(**{k: quote(str(v), safe="") for k, v in values.items()})


class Upstream(Protocol):
    """What a tool's own function may ask of PostHog: requests relative to one project.

    Paths are relative to `/api/<route>/<project_id>/`, with their segments already filled
    and escaped (`path_for`). Both return the decoded JSON body (None for an
    empty body) or raise the server's upstream error.
    """

    async def send(self, request: Request) -> Any:
        """Send a built request (usually the one the tool's declaration built, amended)."""
        ...

    async def request(
        self,
        method: HttpMethod,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        """Send a request spelled out by hand (reads a preview or handler needs besides its own)."""
        ...


class UpstreamError(Exception):
    """What the server's upstream error offers a tool that must tell one refusal from another
    (a logs route refused for the key, a test step PostHog cannot run): the HTTP status (None when
    there was no answer), PostHog's `code` and its `detail`. The server raises a subclass."""

    status: int | None
    code: str | None
    detail: str


class OverBudget(UpstreamError):
    """A request that was not sent: the call made as many PostHog requests as its tool may make in one call
    (`ToolSpec.max_requests`; `retry_at` None), or the key's request budget, shared by every caller and
    replica, is spent until `retry_at` (a Unix time). An answer catches it to return what it has and the
    call that goes on; anywhere else its message is the call's answer."""

    status = None
    code = "request_budget"

    def __init__(self, detail: str, *, retry_at: float | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_at = retry_at


def requests_left(upstream: Upstream) -> int | None:
    """How many more PostHog requests this call may make (None: no cap of its own)."""
    left = getattr(upstream, "requests_left", None)
    return left if isinstance(left, int) else None
