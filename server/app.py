"""Building the MCP server from the catalog: what is listed, and what a call does.

A call goes: listed? -> arguments validated by the tool's pydantic model -> (writes)
the guard -> one request through the PostHog client -> result shaping. Nothing is
sent upstream before the arguments are valid.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import mcp.types as types
from mcp.server import Server, ServerRequestContext
from pydantic import ValidationError

from server import __version__, metrics, results, untrusted
from server.budget import Budget
from server.config import ConfigError, Settings, default_audit_path
from server.definitions import TOKEN_MAX_CHARS, tool_definition
from server.guard.audit import AuditLog
from server.guard.decision import Guard, GuardedCall, PlanCall, in_flight_seconds
from server.guard.result import TOKEN_PARAM
from server.guard.sealing import TokenSigner
from server.guard.shared_state import open_shared_state
from server.host.prompts import Prompts
from server.host.resources import Resources
from server.host.ui import EXTENSION_ID
from server.identity import SERVER_NAME, SERVER_TITLE, instructions_for
from server.posthog import PostHogClient, PostHogError, ProjectUpstream
from server.visibility import KeyAccess, check_names, visible, why_hidden
from tools.answers import capacity, progress
from tools.catalog import ALIASES, BY_NAME, CATALOG
from tools.declaration import NotPossible, ToolSpec
from tools.echo import ECHO_LIMIT, echoed
from tools.params import Params, without_empty
from tools.request import build_request
from tools.upstream import OverBudget, Upstream

log = logging.getLogger(__name__)


async def perform(spec: ToolSpec, params: Params, upstream: Upstream) -> Any:
    """Carry out one catalog entry: the request its declaration builds, amended by its handler if it has one."""
    request = build_request(spec, params)
    if spec.handler is not None:
        data = await spec.handler(upstream, params, request)
    else:
        data = await upstream.send(request)
    return spec.shape(data) if spec.shape is not None else data


_LONG_RUN = re.compile(r"\S{" + str(ECHO_LIMIT + 20) + ",}")


def _schema_at(schema: dict[str, Any], path: tuple[Any, ...]) -> dict[str, Any]:
    """The sub-schema an error location points into (objects only; {} when it leads elsewhere)."""
    for part in path:
        schema = schema.get("properties", {}).get(part, {}) if isinstance(part, str) else schema.get("items", {})
    return schema


def describe_invalid(spec: ToolSpec, error: ValidationError, schema: dict[str, Any]) -> str:
    """Pydantic's errors as one line a model can act on: what is wrong and what is allowed."""
    problems = []
    for item in error.errors()[:6]:
        loc = tuple(item["loc"])
        where = ".".join(str(part) for part in loc) or "arguments"
        where = echoed(where)
        kind = item["type"]
        if kind == "extra_forbidden":
            allowed = sorted(_schema_at(schema, loc[:-1]).get("properties", {}))
            problems.append(f"unknown parameter {where!r} (allowed here: {', '.join(allowed)})")
        elif kind == "missing":
            problems.append(f"{where} is required")
        elif kind == "value_error":
            problems.append(str(item["msg"]).removeprefix("Value error, ").rstrip("."))
        elif kind == "string_pattern_mismatch":
            hint = _schema_at(schema, loc).get("description", "").rstrip(".")
            problems.append(f"{where} is not in an accepted format ({hint})")
        else:
            problems.append(f"{where}: {str(item['msg']).rstrip('.')}")
    # A validator's sentence may quote the caller's value (a destination type, a time): cap any long run
    # so the message keeps its advice and costs a line.
    problems = [_LONG_RUN.sub(lambda run: echoed(run.group(0)), problem) for problem in problems]
    return f"Invalid arguments for {spec.name}: " + "; ".join(problems) + ". Nothing was sent to PostHog."


class App:
    """One configured server: settings, the PostHog client, what the key may do, the guard."""

    def __init__(self, settings: Settings, client: PostHogClient, access: KeyAccess) -> None:
        self.settings = settings
        self.client = client
        self.access = access
        if settings.redis_url and not settings.confirm_secret:
            # Replicas name their ledger entries with a key derived from the secret: without a shared
            # one, their in-flight locks would never meet and a copy of a write could go through.
            raise ConfigError(
                "POSTHOG_MCP_REDIS_URL is set, so replicas share state: set POSTHOG_MCP_CONFIRM_SECRET too, the same "
                "on every replica (for example: openssl rand -hex 32)."
            )
        self.audit = AuditLog(settings.audit_log or default_audit_path())
        self.guard = Guard(
            TokenSigner(settings.confirm_secret),
            self.audit,
            settings.confirm,
            open_shared_state(settings.redis_url),
            in_flight=in_flight_seconds(settings.timeout),
        )
        self.specs = visible(CATALOG, settings, access)
        self.definitions = [
            tool_definition(spec, pinned_project=settings.project_id is not None, guarded=self.guard.applies(spec))
            for spec in self.specs
        ]
        self._schemas = {d.name: d.input_schema for d in self.definitions}
        self.prompts = Prompts([spec.name for spec in self.specs], pinned_project=settings.project_id)
        self.resources = Resources(self.specs, settings, client, access)
        self.server: Server[Any] = Server(
            SERVER_NAME,
            version=__version__,
            title=SERVER_TITLE,
            instructions=instructions_for(settings),
            on_list_tools=self._list_tools,
            on_call_tool=self._call_tool,
            on_list_prompts=self.prompts.list_prompts,
            on_get_prompt=self.prompts.get_prompt,
            on_list_resources=self.resources.list_resources,
            on_list_resource_templates=self.resources.list_templates,
            on_read_resource=self.resources.read,
        )
        # MCP Apps (server/ui): hosts that speak it render linked results; others read the text. Declared
        # whatever is listed, as the stdio front declares it before the key's scopes are known; a server
        # whose tools link no view lists no `ui://` resource.
        self.server.extensions[EXTENSION_ID] = {}

    async def _list_tools(
        self, ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=self.definitions)

    @metrics.counted_call
    async def _call_tool(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        secrets = {self.settings.api_key or ""} | results.secret_values(params.arguments or {})
        try:
            with capacity.limited(self.settings.backfill_limit):
                return await self.call(ctx, params, secrets)
        except Exception as exc:  # never a bare "Error executing tool": say what broke, log the rest
            log.exception("tool %s failed", echoed(params.name))
            return results.failure(
                f"{echoed(params.name)} failed inside the MCP server ({type(exc).__name__}).", secrets
            )

    async def call(
        self, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams, secrets: set[str]
    ) -> types.CallToolResult | types.InputRequiredResult:
        spec = BY_NAME.get(params.name) or BY_NAME.get(ALIASES.get(params.name, ""))
        if spec is None:
            names = ", ".join(s.name for s in self.specs)
            return results.failure(f"Unknown tool {echoed(params.name)!r}. Available tools: {names}.")
        hidden = why_hidden(spec, self.settings, self.access)
        if hidden:
            return results.failure(f"{spec.name} is not available here: {hidden}. Nothing was sent to PostHog.")
        arguments = dict(params.arguments or {})
        guarded = self.guard.applies(spec)
        # A strict function (tools/params.py) sends every listed argument: "" or null is no token.
        if guarded and arguments.get(TOKEN_PARAM, 0) in ("", None):
            del arguments[TOKEN_PARAM]
        sent_token = guarded and TOKEN_PARAM in arguments
        token = arguments.pop(TOKEN_PARAM) if sent_token else None
        if sent_token and not (isinstance(token, str) and len(token) <= TOKEN_MAX_CHARS):
            return results.failure(f"{TOKEN_PARAM} must be the string a preview returned.", secrets)
        pinned = self.settings.project_id
        if pinned is not None:
            # The pinned value itself is harmless (a model may echo it from a result); any other is refused.
            if "project_id" in arguments and arguments["project_id"] != pinned:
                return results.failure(
                    f"project_id is not a parameter here: this server is pinned to project {pinned} "
                    "(POSTHOG_PROJECT_ID). Drop project_id and call again.",
                    secrets,
                )
            if "project_id" in spec.params.model_fields:
                arguments["project_id"] = pinned
            else:
                arguments.pop("project_id", None)
        try:
            # Strict JSON validation: what the advertised inputSchema rejects ("1" or true for an
            # integer, 1 for a boolean) is refused here, not coerced and sent to PostHog.
            # "" or null for an optional argument is "not given": a strict function sends every one (tools/params.py).
            given = without_empty(spec.params, arguments)
            model = spec.params.model_validate_json(json.dumps(given, default=str), strict=True)
        except ValidationError as error:
            return results.failure(describe_invalid(spec, error, self._schemas[spec.name]), secrets)

        upstream = ProjectUpstream(self.client, getattr(model, "project_id", 0), cap=spec.max_requests, tool=spec.name)

        async def report(done: float, total: float | None, message: str | None) -> None:
            # A progress message may name a step or an export: PostHog's text, cleaned like a result.
            shown = untrusted.clean_line(results.safe(message, secrets)) if message is not None else None
            await ctx.session.report_progress(done, total, shown)

        async def execute() -> Any:
            with progress.reporting(report):
                return await perform(spec, model, upstream)

        if guarded and spec.plan is not None and spec.plan.asked(model):
            steps = spec.plan
            plan = PlanCall(
                make=lambda: steps.make(upstream, model),
                recheck=lambda write, applied: steps.recheck(upstream, model, write, applied),
                write=lambda write: steps.write(upstream, model, write),
                receipt=lambda made, applied: steps.receipt(model, made, applied),
            )
            call = GuardedCall(
                spec=spec,
                project=model.project_id,
                arguments=model.model_dump(mode="json", exclude_none=True),
                token=token,
                read_preview=None,
                execute=None,
                secrets=secrets,
                upstream_status=lambda: upstream.last_status,
                plan=plan,
            )
            with progress.reporting(report):
                return await self.guard.run(call, ctx, params)
        if guarded:
            assert spec.preview is not None, f"{spec.name} is guarded but declares no preview"
            preview_fn = spec.preview
            call = GuardedCall(
                spec=spec,
                project=model.project_id,
                arguments=model.model_dump(mode="json", exclude_none=True),
                token=token,
                read_preview=lambda: preview_fn(upstream, model),
                execute=execute,
                secrets=secrets,
                upstream_status=lambda: upstream.last_status,
            )
            return await self.guard.run(call, ctx, params)
        try:
            data = await execute()
        except OverBudget as spent:
            return results.failure(spent.detail, secrets)
        except PostHogError as error:
            return results.failure(str(error), secrets, {"upstream": error.as_dict()}, quotes=[error.detail])
        except NotPossible as reason:
            return results.failure(str(reason), secrets, quotes=[str(reason)])
        resume = spec.resume
        if resume is None:
            return results.success(data, secrets)
        # A list cut to the budget continues exactly after its last item shown (tools/continuation.py).
        return results.success(data, secrets, lambda shown: resume(model, data, shown))


async def discover_access(client: PostHogClient, settings: Settings) -> KeyAccess:
    """Ask PostHog once what the key may do; when it will not say, list everything."""
    try:
        key = await client.current_key()
    except PostHogError as error:
        log.warning("Could not read the key's scopes (%s); listing every tool and letting PostHog refuse.", error)
        return KeyAccess()
    scopes = key.get("scopes") if isinstance(key, dict) else None
    teams = key.get("scoped_teams") if isinstance(key, dict) else None
    access = KeyAccess(
        scopes=tuple(str(s) for s in scopes) if isinstance(scopes, list) else None,
        scoped_teams=tuple(int(t) for t in teams) if isinstance(teams, list) else (),
    )
    pinned = settings.project_id
    if pinned is not None and access.scoped_teams and pinned not in access.scoped_teams:
        raise ConfigError(
            f"The personal API key is limited to project(s) {', '.join(map(str, access.scoped_teams))}, "
            f"but POSTHOG_PROJECT_ID is {pinned}. Pin one of those projects or use a key scoped to {pinned}."
        )
    return access


@asynccontextmanager
async def open_app(
    settings: Settings, *, transport: httpx.AsyncBaseTransport | None = None, warned: bool = False
) -> AsyncIterator[App]:
    """Start the PostHog client, learn the key's scopes, and build the server around them. `warned`: the
    caller already logged the settings' start-up warnings."""
    check_names(settings, CATALOG)
    client = PostHogClient(
        settings.host,
        settings.require_key(),
        api_route=settings.api_route,
        timeout=settings.timeout,
        transport=transport,
        budget=Budget.from_settings(settings),
    )
    log.info("PostHog request budget: %s.", client.budget.describe())
    try:
        access = await discover_access(client, settings)
        app = App(settings, client, access)
        for warning in [] if warned else settings.start_warnings():
            log.warning("%s", warning)
        try:
            yield app
        finally:
            app.audit.close()
            await app.guard.state.aclose()
    finally:
        await client.aclose()
