"""The one HTTP client for PostHog: auth, base URL, route family, timeouts, retries, errors.

Retries are limited to what cannot duplicate a write: reads are retried on server
errors and dropped connections; any method is retried on a throttling 429 with a
short wait (PostHog refuses a throttled request before doing anything). A write that
fails ambiguously (timeout, dropped connection, 5xx) is reported, never resent.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio
import httpx

from server import __version__
from tools.spec import HttpMethod

log = logging.getLogger(__name__)

MAX_RETRY_AFTER = 30.0
_READ_RETRIES = 2
_BACKOFF = (0.25, 1.0)
_RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
_EXPECTED_IN = re.compile(r"available in (\d+) seconds?")
_TITLE = re.compile(r"<title>(.*?)</title>", re.I | re.S)


@dataclass
class PostHogError(Exception):
    """An answer from PostHog (or the lack of one), ready to show a model in one line."""

    status: int | None
    detail: str
    code: str | None = None
    attr: str | None = None
    type: str | None = None
    hint: str | None = None
    retry_after: float | None = None

    def __str__(self) -> str:
        head = f"PostHog HTTP {self.status}" if self.status else "PostHog unreachable"
        parts = [head]
        if self.code:
            parts.append(f"code={self.code}")
        if self.attr:
            parts.append(f"attr={self.attr}")
        line = " ".join(parts) + f": {self.detail}"
        return f"{line} Hint: {self.hint}" if self.hint else line

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def _hint(status: int, code: str | None, detail: str, method: str, path: str = "") -> str | None:
    if status == 401:
        return "check POSTHOG_PERSONAL_API_KEY: the key is missing, wrong or revoked."
    if status == 403:
        if "does not support Personal API Key" in detail:
            return (
                "this PostHog version serves this action to no scoped personal API key (not even *); "
                "use a legacy unscoped key, or a newer PostHog."
            )
        scope = re.search(r"scope '([^']+)'", detail)
        if scope and scope.group(1) == "INTERNAL":
            return "older PostHog allows this only to keys with scope * (or legacy unscoped keys)."
        if scope:
            return f"give the personal API key the scope {scope.group(1)} in PostHog, or use a key that has it."
        return "the key's user or scopes do not allow this project or action."
    if status == 404 and "/runs/" in path:
        return (
            "the id may be wrong or belong to another export; runs older than PostHog's 7-day default "
            "window need a wider after= filter."
        )
    if status == 404:
        return "the id or project may be wrong, belong to another project, or the object was deleted."
    if status == 429 and code == "too_many_concurrent_backfills":
        return "wait for running backfills to finish (batch-export-backfills-list) or cancel one, then try again."
    if status == 429:
        return "PostHog is rate limiting this key; wait before calling again."
    if status >= 500 and method != "GET":
        return "the write may or may not have been applied: check the current state before trying again."
    return None


def error_from_response(response: httpx.Response, method: str) -> PostHogError:
    status = response.status_code
    try:
        path = response.request.url.path
    except RuntimeError:  # a response built without a request (tests)
        path = ""
    retry_after = _retry_after(response)
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "detail" in body:
        detail = str(body.get("detail"))
        code = body.get("code")
        return PostHogError(
            status=status,
            detail=detail,
            code=code,
            attr=body.get("attr"),
            type=body.get("type"),
            hint=_hint(status, code, detail, method, path),
            retry_after=retry_after,
        )
    text = response.text.strip()
    if not text:
        detail = "empty response body"
    elif "<html" in text[:500].lower() or "<!doctype" in text[:500].lower():
        title = _TITLE.search(text)
        detail = f"an HTML error page ({title.group(1).strip()[:120] if title else 'no title'}), not the API's JSON"
    else:
        detail = text[:200]
    return PostHogError(
        status=status, detail=detail, hint=_hint(status, None, detail, method, path), retry_after=retry_after
    )


def _retry_after(response: httpx.Response) -> float | None:
    header = response.headers.get("retry-after")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            return None
    if response.status_code == 429:
        try:
            match = _EXPECTED_IN.search(str(response.json().get("detail", "")))
        except (ValueError, AttributeError):
            match = None
        if match:
            return float(match.group(1))
    return None


class PostHogClient:
    """One `httpx.AsyncClient` per server, shared by every call."""

    def __init__(
        self,
        host: str,
        api_key: str,
        *,
        api_route: str = "projects",
        timeout: float = 20.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.api_route = api_route
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=host.rstrip("/"),
            headers={
                "Authorization": f"Bearer {api_key}",
                "User-Agent": f"posthog-batch-exports-mcp/{__version__}",
                "Accept": "application/json",
            },
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            follow_redirects=False,
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    def project_path(self, project_id: int, path: str) -> str:
        return f"/api/{self.api_route}/{int(project_id)}/{path}"

    async def request(
        self,
        method: HttpMethod,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        json_body: Any = None,
    ) -> Any:
        """Send one request (with the retries above) and decode its JSON body."""
        _, body = await self.exchange(method, path, query=query, json_body=json_body)
        return body

    async def exchange(
        self,
        method: HttpMethod,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        json_body: Any = None,
    ) -> tuple[int, Any]:
        """Like `request`, but also return the HTTP status (the audit trail records it).

        The whole call, retries and waits included, ends within twice the timeout.
        """
        started = anyio.current_time()
        deadline = started + 2 * self._timeout
        attempt = 0
        while True:
            remaining = deadline - anyio.current_time()
            try:
                response = await self._http.request(
                    method,
                    path,
                    params=_query(query),
                    json=json_body if method != "GET" else None,
                    timeout=httpx.Timeout(max(remaining, 0.1), connect=min(remaining, 10.0)),
                )
            except httpx.TimeoutException:
                if method == "GET" and attempt < _READ_RETRIES and deadline - anyio.current_time() > 1.0:
                    attempt += 1
                    continue
                raise PostHogError(
                    status=None,
                    detail=f"no answer after {anyio.current_time() - started:.1f} s "
                    f"({attempt + 1} attempt{'s' if attempt else ''}, {self._timeout:g} s timeout each)",
                    hint=_ambiguous_hint(method, "PostHog is slow or unreachable; try again shortly."),
                ) from None
            except httpx.TransportError as exc:
                if method == "GET" and attempt < _READ_RETRIES and deadline - anyio.current_time() > 1.0:
                    await anyio.sleep(_BACKOFF[attempt])
                    attempt += 1
                    continue
                raise PostHogError(
                    status=None,
                    detail=f"connection failed ({type(exc).__name__})",
                    hint=_ambiguous_hint(method, "check POSTHOG_HOST and the network."),
                ) from None
            if response.status_code < 400:
                return response.status_code, _decode(response)
            error = error_from_response(response, method)
            wait = error.retry_after if error.status == 429 and error.retry_after is not None else _BACKOFF[attempt % 2]
            fits = wait + 0.5 < deadline - anyio.current_time()
            if attempt < _READ_RETRIES and fits and self._should_retry(method, error):
                log.info("PostHog answered %s; retrying in %.2f s", error.status, wait)
                await anyio.sleep(wait)
                attempt += 1
                continue
            if error.status == 429 and error.retry_after is not None:
                error.hint = f"PostHog asks to wait {error.retry_after:g} s before the next call; try again then."
            raise error

    @staticmethod
    def _should_retry(method: str, error: PostHogError) -> bool:
        if error.status == 429:
            # The concurrency cap is a state, not a rate: waiting seconds will not clear it.
            throttled = error.code in (None, "throttled") or error.type == "throttled_error"
            return throttled and (error.retry_after is None or error.retry_after <= MAX_RETRY_AFTER)
        return method == "GET" and error.status in _RETRYABLE_STATUS

    async def current_key(self) -> dict[str, Any]:
        return await self.request("GET", "/api/personal_api_keys/@current/")


def _ambiguous_hint(method: str, default: str) -> str:
    if method == "GET":
        return default
    return "the write may or may not have been applied: check the current state before trying again."


def _query(query: Mapping[str, Any] | None) -> list[tuple[str, str]] | None:
    if not query:
        return None
    pairs: list[tuple[str, str]] = []
    for key, value in query.items():
        if value is None:
            continue
        for item in value if isinstance(value, (list, tuple)) else (value,):
            pairs.append((key, "true" if item is True else "false" if item is False else str(item)))
    return pairs


def _decode(response: httpx.Response) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        raise PostHogError(
            status=response.status_code,
            detail="the response body is not valid JSON",
            hint="PostHog or a proxy in front of it answered with something else; try again shortly.",
        ) from None


class ProjectUpstream:
    """The `tools.spec.Upstream` a tool sees: requests relative to one project."""

    def __init__(self, client: PostHogClient, project_id: int) -> None:
        self._client = client
        self.project_id = project_id
        self.last_status: int | None = None  # of the last successful request (the write, after one)

    async def request(
        self,
        method: HttpMethod,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        # An absolute /api/ path (the key's own record, the project list) is sent as it is.
        target = path if path.startswith("/api/") else self._client.project_path(self.project_id, path)
        self.last_status, body = await self._client.exchange(method, target, query=query, json_body=json)
        return body
