"""PostHog's flat error envelope `{type, code, detail, attr}` (docs/posthog-api.md, "Errors and headers"), first error only."""

from __future__ import annotations

import uuid
from typing import Any


class ApiError(Exception):
    """An error answered with the envelope (or an empty body when `empty`)."""

    def __init__(
        self,
        status: int,
        type_: str,
        code: str,
        detail: str,
        attr: str | None = None,
        *,
        empty: bool = False,
        headers: dict[str, str] | None = None,
    ):
        super().__init__(detail)
        self.status = status
        self.type = type_
        self.code = code
        self.detail = detail
        self.attr = attr
        self.empty = empty
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "code": self.code, "detail": self.detail, "attr": self.attr}
        if self.status == 500 and self.type == "server_error":
            # An unhandled exception: PostHog reports it and names the event, so support can find it.
            body["error_event_id"] = uuid.uuid4().hex
        return body


def validation(detail: str, attr: str | None = None, code: str = "invalid_input") -> ApiError:
    # DRF's code `invalid` is rewritten to `invalid_input` by exceptions_hog.
    if code == "invalid":
        code = "invalid_input"
    return ApiError(400, "validation_error", code, detail, attr)


def required(attr: str) -> ApiError:
    return validation("This field is required.", attr, "required")


def invalid_choice(value: Any, attr: str) -> ApiError:
    return validation(f'"{value}" is not a valid choice.', attr, "invalid_choice")


def not_found(detail: str = "Not found.") -> ApiError:
    return ApiError(404, "invalid_request", "not_found", detail)


def permission_denied(detail: str) -> ApiError:
    return ApiError(403, "authentication_error", "permission_denied", detail)


def not_authenticated() -> ApiError:
    return ApiError(401, "authentication_error", "not_authenticated", "Authentication credentials were not provided.")


def authentication_failed(detail: str) -> ApiError:
    return ApiError(401, "authentication_error", "authentication_failed", detail)


def method_not_allowed(method: str) -> ApiError:
    return ApiError(405, "invalid_request", "method_not_allowed", f'Method "{method}" not allowed.')


def parse_error(detail: str) -> ApiError:
    return ApiError(400, "invalid_request", "parse_error", detail)


def server_error() -> ApiError:
    return ApiError(500, "server_error", "error", "A server error occurred.")


def empty(status: int) -> ApiError:
    """A plain `Response(status=...)`: no body at all."""
    return ApiError(status, "", "", "", empty=True)


def throttled(wait: int | None) -> ApiError:
    """DRF's throttled answer; the wait is also sent as `Retry-After` (docs/posthog-api.md, "Errors and headers")."""
    detail = "Request was throttled."
    headers = {}
    if wait is not None:
        unit = "second" if wait == 1 else "seconds"
        detail += f" Expected available in {wait} {unit}."
        headers["Retry-After"] = str(wait)
    return ApiError(429, "throttled_error", "throttled", detail, headers=headers)


def database_unavailable() -> ApiError:
    """A transient database failure: retry after a second (docs/posthog-api.md, "Errors and headers")."""
    return ApiError(
        503,
        "server_error",
        "database_unavailable",
        "The database is temporarily unavailable. Please retry shortly.",
        headers={"Retry-After": "1"},
    )


def generic_for_status(status: int) -> dict[str, Any]:
    """The envelope PostHog would send for a bare status (used by injected faults)."""
    if status == 400:
        return validation("Invalid input.").body()
    if status == 401:
        return not_authenticated().body()
    if status == 403:
        return permission_denied("You do not have permission to perform this action.").body()
    if status == 404:
        return not_found().body()
    if status == 405:
        return method_not_allowed("GET").body()
    if status == 429:
        return throttled(None).body()
    return {"type": "server_error", "code": "error", "detail": "A server error occurred.", "attr": None}
