"""The route table (docs/posthog-api.md, "Routes"): path pattern → per-method handler and required scope per generation.

Scopes: `read`/`write` mean `batch_export:read`/`batch_export:write`; `INTERNAL` is grantable only via `*`;
`None` means the action maps to no scope (personal keys get 403, docs/posthog-api.md, "Keys and scopes").
The routes outside `batch_exports/` name their own scopes (`query:read`, `activity_log:read`, `integration:*`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import activity_log, errors, integrations
from . import handlers as h

READ, WRITE, INTERNAL = "batch_export:read", "batch_export:write", "INTERNAL"
QUERY_READ = "query:read"
ACTIVITY_READ = "activity_log:read"
INTEGRATION_READ, INTEGRATION_WRITE = "integration:read", "integration:write"


@dataclass(frozen=True)
class Action:
    handler: Callable[..., tuple[int, Any]]
    scope_gen3: str | None
    scope_gen1: str | None
    generations: tuple[int, ...] = (1, 3)
    # The logs route: its scope is `None` (every personal key refused) when the sandbox is started with
    # logs_for_keys="refused" (docs/posthog-api.md, "Logs and the Query API").
    refusable: bool = False

    def scope(self, generation: int) -> str | None:
        return self.scope_gen3 if generation >= 3 else self.scope_gen1


def _same(handler: Callable[..., tuple[int, Any]], scope: str) -> Action:
    return Action(handler, scope, scope)


_ID = r"(?P<id>[^/]+)"
_EID = r"(?P<batch_export_id>[^/]+)"

# Order matters: list-level actions (`test`, `run_test_step_new`) come before the `{id}` detail routes.
BATCH_EXPORT_ROUTES: list[tuple[re.Pattern[str], dict[str, Action]]] = [
    (re.compile(p + "$"), m)
    for p, m in [
        ("", {"GET": _same(h.list_exports, READ), "POST": _same(h.create_export, WRITE)}),
        ("/test", {"GET": Action(h.destination_test, READ, INTERNAL)}),
        ("/run_test_step_new", {"POST": Action(h.run_test_step_new, WRITE, INTERNAL)}),
        (
            f"/{_ID}",
            {
                "GET": _same(h.retrieve_export, READ),
                "PUT": _same(h.update_export, WRITE),
                "PATCH": _same(h.partial_update_export, WRITE),
                "DELETE": _same(h.destroy_export, WRITE),
            },
        ),
        (f"/{_ID}/pause", {"POST": _same(h.pause_export, WRITE)}),
        (f"/{_ID}/unpause", {"POST": _same(h.unpause_export, WRITE)}),
        (f"/{_ID}/backfill", {"POST": Action(h.deprecated_backfill, WRITE, WRITE, generations=(1,))}),
        (f"/{_ID}/logs", {"GET": Action(h.export_logs, READ, None, refusable=True)}),
        (f"/{_ID}/run_test_step", {"POST": Action(h.run_test_step, WRITE, INTERNAL)}),
        (f"/{_EID}/runs", {"GET": _same(h.list_runs, READ)}),
        (f"/{_EID}/runs/{_ID}", {"GET": _same(h.retrieve_run, READ)}),
        (f"/{_EID}/runs/{_ID}/retry", {"POST": _same(h.retry_run, WRITE)}),
        (f"/{_EID}/runs/{_ID}/cancel", {"POST": _same(h.cancel_run, WRITE)}),
        (f"/{_EID}/runs/{_ID}/logs", {"GET": Action(h.run_logs, READ, None)}),
        (f"/{_EID}/backfills", {"GET": _same(h.list_backfills, READ), "POST": _same(h.create_backfill, WRITE)}),
        (f"/{_EID}/backfills/{_ID}", {"GET": _same(h.retrieve_backfill, READ)}),
        (f"/{_EID}/backfills/{_ID}/cancel", {"POST": _same(h.cancel_backfill, WRITE)}),
    ]
]

PROJECT_PREFIX = re.compile(r"^/api/(?:projects|environments)/(?P<project>[^/]+)/batch_exports(?P<rest>(?:/[^/]+)*)/?$")
QUERY = re.compile(r"^/api/(?:projects|environments)/(?P<project>[^/]+)/query/?$")
# Without sqlglot (the optional extra `sandbox`) the route answers as a PostHog that does not serve the
# Query API; clients that fall back to the logs route (batch-export-errors does) keep working.
QUERY_NEEDS_SQLGLOT = (
    "This sandbox's Query API parses HogQL with sqlglot, which is not installed: install the optional extra "
    "with pip install 'posthog-batch-exports-mcp[sandbox]' (or uv sync --extra sandbox)."
)


def query(ctx: Any) -> tuple[int, Any]:
    """The Query API, imported on first use: its parser is optional and weighs more than the rest of the sandbox."""
    try:
        from . import query_api
    except ModuleNotFoundError as missing:
        if (missing.name or "").partition(".")[0] != "sqlglot":
            raise
        raise errors.not_found(QUERY_NEEDS_SQLGLOT) from None
    return query_api.query(ctx)


QUERY_ACTION = Action(query, QUERY_READ, QUERY_READ)
CURRENT_KEY = re.compile(r"^/api/personal_api_keys/(?P<key_id>[^/]+)/?$")
# Outside batch_exports/ (docs/posthog-api.md, "Activity log", "Integrations"); both generations serve them.
ACTIVITY_LOG = re.compile(r"^/api/(?:projects|environments)/(?P<project>[^/]+)/activity_log/?$")
ACTIVITY_LOG_ACTIONS = {"GET": _same(activity_log.list_activity, ACTIVITY_READ)}
INTEGRATIONS = re.compile(r"^/api/(?:projects|environments)/(?P<project>[^/]+)/integrations(?:/(?P<id>[^/]+))?/?$")
INTEGRATION_LIST_ACTIONS = {
    "GET": _same(integrations.list_integrations, INTEGRATION_READ),
    "POST": _same(integrations.create_integration, INTEGRATION_WRITE),
}
# No update: IntegrationViewSet has no UpdateModelMixin, so PUT and PATCH are 405.
INTEGRATION_DETAIL_ACTIONS = {
    "GET": _same(integrations.retrieve_integration, INTEGRATION_READ),
    "DELETE": _same(integrations.destroy_integration, INTEGRATION_WRITE),
}


@dataclass
class Match:
    methods: dict[str, Action]
    project: str | None
    params: dict[str, str]


def match(path: str, generation: int) -> Match | None:
    found = PROJECT_PREFIX.match(path)
    if found:
        rest = found["rest"]
        for pattern, methods in BATCH_EXPORT_ROUTES:
            m = pattern.fullmatch(rest)
            if m:
                available = {k: a for k, a in methods.items() if generation in a.generations}
                if not available:
                    continue
                return Match(available, found["project"], m.groupdict())
        return None
    found = QUERY.match(path)
    if found:
        return Match({"POST": QUERY_ACTION}, found["project"], {})
    found = ACTIVITY_LOG.match(path)
    if found:
        return Match(ACTIVITY_LOG_ACTIONS, found["project"], {})
    found = INTEGRATIONS.match(path)
    if found:
        if found["id"] is None:
            return Match(INTEGRATION_LIST_ACTIONS, found["project"], {})
        return Match(INTEGRATION_DETAIL_ACTIONS, found["project"], {"id": found["id"]})
    found = CURRENT_KEY.match(path)
    if found and found["key_id"] == "@current":
        return Match({"GET": Action(h.current_key, None, None)}, None, {})
    return None
