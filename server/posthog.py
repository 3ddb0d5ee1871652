"""The one HTTP client for PostHog: auth, base URL, route family, timeouts, retries, errors.

What a request does decides what a failed answer means (docs/posthog-api.md, "Errors and headers"):
- a read (any GET, and the Query API's POST query/) is retried on server errors and dropped
  connections, waiting what PostHog's Retry-After asks;
- a check (a destination test step) changes nothing in PostHog, so its failure is never "a write
  that may have been applied"; it is not retried either (PostHog's 500 there is deterministic);
- a write that fails ambiguously (timeout, dropped connection, 5xx) is reported, never resent.
Any request is retried on a throttling 429: PostHog refuses a throttled request before doing anything.
A redirect is never followed: the key goes to POSTHOG_HOST and nowhere else.

Every attempt is first admitted by the one PostHog request budget (server/budget/), which paces the key's
requests below PostHog's rate limits for every caller and replica; a 429 that comes anyway closes the
budget for the wait PostHog asks. A tool's call may also have a cap of its own (`ProjectUpstream`).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import anyio
import httpx

from server import __version__, log_bodies, metrics
from server.budget import Budget
from server.budget.ledger import InProcessLedger
from server.config import UPSTREAM_CALL_TIMEOUTS
from tools.upstream import HttpMethod, OverBudget, Request, UpstreamError

log = logging.getLogger(__name__)

MAX_RETRY_AFTER = 30.0
_READ_RETRIES = 2
_BACKOFF = (0.25, 1.0)
_RETRYABLE_STATUS = frozenset({500, 502, 503, 504})
_EXPECTED_IN = re.compile(r"available in (\d+) seconds?")
_TITLE = re.compile(r"<title>(.*?)</title>", re.I | re.S)
_NO_PERSONAL_KEYS = re.compile(r"does not support personal api key access", re.I)
_MISSING_SCOPE = re.compile(r"missing required scope '([^']+)'", re.I)
_AUTH_PARAM = re.compile(r'(\w+)="([^"]*)"')

RequestKind = Literal["read", "check", "write"]
WriteOutcome = Literal["not applied", "unknown", "probably applied"]

UPDATE_KEY_HINT = (
    "create a personal API key with scopes (batch_export:read and batch_export:write; query:read for logs) "
    "in PostHog under Settings > Personal API keys, and set it as POSTHOG_PERSONAL_API_KEY"
)
_POSSIBLY_APPLIED = "the write may or may not have been applied: check the current state before trying again."
_CHECK_STATE = "batch-export-get, batch-export-runs-list or batch-export-backfills-list"


@dataclass
class PostHogError(UpstreamError):
    """An answer from PostHog (or the lack of one), ready to show a model in one line.

    `write` says, for a write, what is known of its effect: a model must not resend a write
    that was probably applied, and may resend one that was not applied.
    """

    status: int | None
    detail: str
    code: str | None = None
    attr: str | None = None
    type: str | None = None
    hint: str | None = None
    retry_after: float | None = None
    error_event_id: str | None = None
    write: WriteOutcome | None = None

    def __str__(self) -> str:
        head = f"PostHog HTTP {self.status}" if self.status else "PostHog unreachable"
        parts = [head]
        if self.code:
            parts.append(f"code={self.code}")
        if self.attr:
            parts.append(f"attr={self.attr}")
        if self.error_event_id:
            parts.append(f"error_event_id={self.error_event_id}")
        line = " ".join(parts) + f": {self.detail}"
        return f"{line} Hint: {self.hint}" if self.hint else line

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def request_kind(method: str, path: str) -> RequestKind:
    """Whether a request reads, only checks a destination, or writes (see the module docstring)."""
    if method == "GET":
        return "read"
    tail = path.rstrip("/").rsplit("/", 1)[-1]
    if method == "POST" and tail == "query":
        return "read"
    if method == "POST" and tail in ("run_test_step", "run_test_step_new"):
        return "check"
    return "write"


def _hint(
    status: int,
    code: str | None,
    detail: str,
    kind: RequestKind,
    path: str = "",
    key_scopes: tuple[str, ...] | None = None,
) -> str | None:
    if status == 401:
        return "check POSTHOG_PERSONAL_API_KEY: the key is missing, wrong or revoked."
    if status == 403:
        if _NO_PERSONAL_KEYS.search(detail):
            return (
                "this PostHog serves this action to no scoped personal API key, whatever its scopes (not even *): "
                "older PostHog serves it to legacy unscoped keys only; newer PostHog serves logs through its "
                "Query API to keys with scope query:read."
            )
        scope = _MISSING_SCOPE.search(detail)
        if scope and key_scopes is not None and (not key_scopes or "*" in key_scopes):
            # PostHog reports a legacy key without stored scopes as ["*"], then refuses it everything.
            return (
                "the key reports scope * but PostHog refused it: it is a legacy personal API key without "
                f"stored scopes, which current PostHog refuses for batch exports; {UPDATE_KEY_HINT}."
            )
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
    if status >= 500 and kind == "check":
        return (
            "PostHog could not run this test step; it changes nothing, so nothing was applied. PostHog has test "
            "steps for AwsS3, S3Compatible, BigQuery, Snowflake, Databricks and AzureBlob only, and step must be "
            "below the number of steps batch-export-test-steps lists."
        )
    if status >= 500 and kind == "write":
        return _POSSIBLY_APPLIED
    if status == 503 and code == "database_unavailable":
        return "PostHog's database was briefly unavailable; try again in a few seconds."
    return None


def _where(location: str) -> str:
    """A redirect target fit to show: no query string or credentials, and short."""
    if not location:
        return "no address (the answer had no Location header)"
    parts = urlsplit(location)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    shown = f"{parts.scheme}://{host}{parts.path}" if parts.scheme else parts.path
    shown = shown if len(shown) <= 160 else shown[:157] + "..."
    return shown + (" (query omitted)" if parts.query else "")


def _redirect_error(response: httpx.Response, kind: RequestKind) -> PostHogError:
    status = response.status_code
    detail = (
        f"PostHog answered with a redirect to {_where(response.headers.get('location', ''))}, which this server "
        "does not follow: the API key is only ever sent to POSTHOG_HOST."
    )
    fix = (
        "set POSTHOG_HOST to the address PostHog's API answers on itself (for PostHog Cloud https://us.posthog.com "
        "or https://eu.posthog.com; a redirect often means http:// instead of https://, or a proxy in front)"
    )
    if kind == "write":
        return PostHogError(
            status=status,
            detail=detail,
            hint=f"the write is not known to have happened: check the current state ({_CHECK_STATE}) "
            f"before trying again; {fix}.",
            write="unknown",
        )
    return PostHogError(status=status, detail=detail, hint=fix + ".")


def _www_authenticate(response: httpx.Response) -> str | None:
    """The reason a 401's WWW-Authenticate header gives (error_description, else error), if any."""
    params = dict(_AUTH_PARAM.findall(response.headers.get("www-authenticate", "")))
    reason = params.get("error_description") or params.get("error")
    return reason[:160] if reason else None


def error_from_response(
    response: httpx.Response, method: str, key_scopes: tuple[str, ...] | None = None
) -> PostHogError:
    status = response.status_code
    try:
        path = response.request.url.path
    except RuntimeError:  # a response built without a request (tests)
        path = ""
    kind = request_kind(method, path)
    if 300 <= status < 400:
        return _redirect_error(response, kind)
    retry_after = _retry_after(response)
    try:
        body = response.json()
    except ValueError:
        body = None
    write: WriteOutcome | None = None
    if kind == "write":
        # A refusal (4xx) happens before PostHog changes anything; a 5xx may come after.
        write = "not applied" if status < 500 else "unknown"
    if isinstance(body, dict) and "detail" in body:
        detail = str(body.get("detail"))
        code = body.get("code")
        event_id = body.get("error_event_id")
        error = PostHogError(
            status=status,
            detail=detail,
            code=code,
            attr=body.get("attr"),
            type=body.get("type"),
            hint=_hint(status, code, detail, kind, path, key_scopes),
            retry_after=retry_after,
            error_event_id=str(event_id)[:64] if event_id else None,
            write=write,
        )
    else:
        text = response.text.strip()
        if not text:
            detail = "empty response body"
        elif "<html" in text[:500].lower() or "<!doctype" in text[:500].lower():
            title = _TITLE.search(text)
            detail = f"an HTML error page ({title.group(1).strip()[:120] if title else 'no title'}), not the API's JSON"
        else:
            detail = text[:200]
        error = PostHogError(
            status=status,
            detail=detail,
            hint=_hint(status, None, detail, kind, path, key_scopes),
            retry_after=retry_after,
            write=write,
        )
    if status == 401:
        reason = _www_authenticate(response)
        if reason and reason not in error.detail:
            error.detail += f" ({reason})"
    if error.error_event_id and status >= 500:
        error.hint = (error.hint + " " if error.hint else "") + (
            f"If it persists, quote error_event_id {error.error_event_id} to PostHog support."
        )
    return error


def _retry_after(response: httpx.Response) -> float | None:
    header = response.headers.get("retry-after")
    if header:
        try:
            return max(0.0, float(header))
        except ValueError:
            pass
        try:  # the HTTP-date form
            when = parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return max(0.0, (when - datetime.now(UTC)).total_seconds())
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
        budget: Budget | None = None,
    ) -> None:
        self.api_route = api_route
        # Without one given (unit tests, one-off clients), PostHog's published limits counted in this process.
        self.budget = budget if budget is not None else Budget(InProcessLedger())
        self._timeout = timeout
        self._api_key = api_key
        # What @current said the key may do (None until asked): a refusal is explained with it.
        self.key_scopes: tuple[str, ...] | None = None
        self._http = httpx.AsyncClient(
            base_url=host.rstrip("/"),
            headers={
                "Authorization": f"Bearer {api_key}",
                "User-Agent": f"posthog-batch-exports-mcp/{__version__}",
                "Accept": "application/json",
            },
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            transport=transport,
            follow_redirects=False,  # never: a redirect would carry the key elsewhere
        )

    async def aclose(self) -> None:
        await self._http.aclose()
        await self.budget.aclose()

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
        kind = request_kind(method, path)
        started = anyio.current_time()
        deadline = started + UPSTREAM_CALL_TIMEOUTS * self._timeout
        attempt = 0
        while True:
            try:
                async with self.budget.spend(method, path, write=kind != "read", deadline=deadline):
                    remaining = deadline - anyio.current_time()
                    response = await self._http.request(
                        method,
                        path,
                        params=_query(query),
                        json=json_body if method != "GET" else None,
                        timeout=httpx.Timeout(max(remaining, 0.1), connect=min(remaining, 10.0)),
                    )
            except httpx.TimeoutException:
                if kind == "read" and attempt < _READ_RETRIES and deadline - anyio.current_time() > 1.0:
                    attempt += 1
                    continue
                raise PostHogError(
                    status=None,
                    detail=f"no answer after {anyio.current_time() - started:.1f} s "
                    f"({attempt + 1} attempt{'s' if attempt else ''}, {self._timeout:g} s timeout each)",
                    hint=_ambiguous_hint(kind, "PostHog is slow or unreachable; try again shortly."),
                    write="unknown" if kind == "write" else None,
                ) from None
            except httpx.TransportError as exc:
                if kind == "read" and attempt < _READ_RETRIES and deadline - anyio.current_time() > 1.0:
                    await anyio.sleep(_BACKOFF[attempt])
                    attempt += 1
                    continue
                raise PostHogError(
                    status=None,
                    detail=f"connection failed ({type(exc).__name__})",
                    hint=_ambiguous_hint(kind, "check POSTHOG_HOST and the network."),
                    write="unknown" if kind == "write" else None,
                ) from None
            metrics.upstream_response(method, response.status_code)
            if log.isEnabledFor(logging.DEBUG):
                body = log_bodies.for_log(response.content, (self._api_key,))
                log.debug("PostHog %s %s -> %s: %s", method, path, response.status_code, body)
            if response.status_code < 300:
                return response.status_code, _decode(response, kind)
            error = error_from_response(response, method, self.key_scopes)
            if error.status == 429 and self._should_retry("read", error):
                # The key was throttled (its other users, or a limit lower than we know): nothing of this class
                # goes, from any replica, for the wait PostHog asks.
                await self.budget.throttled(method, path, error.retry_after or _BACKOFF[attempt % 2])
            wait = error.retry_after if error.retry_after is not None else _BACKOFF[attempt % 2]
            fits = wait + 0.5 < deadline - anyio.current_time()
            if attempt < _READ_RETRIES and fits and self._should_retry(kind, error):
                log.info("PostHog answered %s; retrying in %.2f s", error.status, wait)
                await anyio.sleep(wait)
                attempt += 1
                continue
            if error.status == 429 and error.retry_after is not None and error.code != "too_many_concurrent_backfills":
                error.hint = f"PostHog asks to wait {error.retry_after:g} s before the next call; try again then."
            elif attempt and error.status is not None and error.status >= 500:
                error.detail += f" (after {attempt + 1} attempts)"
            raise error

    @staticmethod
    def _should_retry(kind: RequestKind, error: PostHogError) -> bool:
        if error.status == 429:
            # The concurrency cap is a state, not a rate: waiting seconds will not clear it.
            throttled = error.code in (None, "throttled") or error.type == "throttled_error"
            return throttled and (error.retry_after is None or error.retry_after <= MAX_RETRY_AFTER)
        if error.retry_after is not None and error.retry_after > MAX_RETRY_AFTER:
            return False
        return kind == "read" and error.status in _RETRYABLE_STATUS

    async def current_key(self) -> dict[str, Any]:
        """What PostHog says about the key (docs/posthog-api.md, "Keys and scopes"); its scopes are kept."""
        key = await self.request("GET", "/api/personal_api_keys/@current/")
        scopes = key.get("scopes") if isinstance(key, dict) else None
        if isinstance(scopes, list):
            self.key_scopes = tuple(str(s) for s in scopes)
        return key if isinstance(key, dict) else {}


def _ambiguous_hint(kind: RequestKind, default: str) -> str:
    return _POSSIBLY_APPLIED if kind == "write" else default


def _query(query: Mapping[str, Any] | None) -> list[tuple[str, str | int | float | bool | None]] | None:
    if not query:
        return None
    pairs: list[tuple[str, str | int | float | bool | None]] = []
    for key, value in query.items():
        if value is None:
            continue
        for item in value if isinstance(value, (list, tuple)) else (value,):
            pairs.append((key, "true" if item is True else "false" if item is False else str(item)))
    return pairs


def _decode(response: httpx.Response, kind: RequestKind) -> Any:
    if response.status_code == 204 or not response.content:
        return None
    try:
        return response.json()
    except (ValueError, json.JSONDecodeError):
        if kind == "write":
            # PostHog answered with success: the write was most likely done, only its answer is unreadable.
            raise PostHogError(
                status=response.status_code,
                detail="PostHog answered with success, but the response body is not valid JSON",
                hint=f"the write was probably applied: check the current state ({_CHECK_STATE}) "
                "before trying again, and do not resend it blindly.",
                write="probably applied",
            ) from None
        raise PostHogError(
            status=response.status_code,
            detail="the response body is not valid JSON",
            hint="PostHog or a proxy in front of it answered with something else; try again shortly.",
        ) from None


class ProjectUpstream:
    """The `tools.upstream.Upstream` a tool sees: requests relative to one project, at most `cap` of them
    (its declaration's `max_requests`) in the call."""

    def __init__(self, client: PostHogClient, project_id: int, *, cap: int | None = None, tool: str = "") -> None:
        self._client = client
        self.project_id = project_id
        self.last_status: int | None = None  # of the last successful request (the write, after one)
        self.cap = cap
        self.tool = tool
        self.sent = 0

    @property
    def requests_left(self) -> int | None:
        return None if self.cap is None else max(0, self.cap - self.sent)

    async def request(
        self,
        method: HttpMethod,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        json: Any = None,
    ) -> Any:
        if self.cap is not None and self.sent >= self.cap:
            raise OverBudget(
                f"{self.tool or 'This tool'} makes at most {self.cap} PostHog requests in one call, and this call has "
                "made them; call again to go on."
            )
        self.sent += 1
        # An absolute /api/ path (the key's own record, the project list) is sent as it is.
        target = path if path.startswith("/api/") else self._client.project_path(self.project_id, path)
        self.last_status, body = await self._client.exchange(method, target, query=query, json_body=json)
        return body

    async def send(self, request: Request) -> Any:
        """Send a request a declaration built (tools/request.py), usually amended by the tool."""
        return await self.request(request.method, request.path, query=request.query or None, json=request.body)
