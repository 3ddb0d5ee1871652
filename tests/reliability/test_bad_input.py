"""Bad input, generated: arguments for every tool drawn from its inputSchema (with the limits the
server enforces on call, server/definitions.py), and
mutations of them (wrong types, missing and extra keys, huge strings, ids that try to leave their
path segment, extreme numbers, bad dates).

Every reply must be a tool result with a clear message; nothing may reach PostHog for arguments
the advertised schema rejects; and every request that does reach it stays under
/api/projects/<n>/ in the shape of one of the catalog's routes (or the Query API route the logs
fall back to), each id a canonical
UUID in its own segment. One sandbox and one server per protocol era serve the whole module:
hypothesis examples run on a blocking portal into the server's event loop.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import mcp.types as types
import pytest
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from posthog_sandbox import DEFAULT_API_KEY, SandboxConfig, SandboxKey, start_sandbox
from server.definitions import enforced_input_schema
from tests.reliability.schema_strategies import from_schema, mutated, validator
from tests.support import MODES, SandboxControl, connect, running_app, settings_for, text
from tools.catalog import BY_NAME, CATALOG
from tools.logs import QUERY_PATH

EXAMPLES = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
# Tools that POST without changing anything in PostHog (connection tests), so are not guarded.
UNGUARDED_POSTS = {s.name for s in CATALOG if s.method == "POST" and not s.is_guarded}
MAX_MESSAGE = 2_000


def route_pattern(template: str) -> re.Pattern[str]:
    body = re.sub(r"\\\{\w+\\\}", UUID, re.escape(template))
    if template.startswith("/api/"):  # a route outside the project, as the key's own record
        return re.compile(rf"^{body}$")
    return re.compile(rf"^/api/projects/(?P<project>\d+)/{body}$")


QUERY_ROUTE = route_pattern(QUERY_PATH)  # a POST that only reads: PostHog's Query API
# A POST that changes nothing in PostHog: a destination test step (a plan checks its destination with one).
CHECK_ROUTE = re.compile(rf"^/api/projects/(?P<project>\d+)/batch_exports/{UUID}/run_test_step/$")
INTEGRATION_ROUTE = re.compile(r"^/api/projects/(?P<project>\d+)/integrations/\d+/$")  # one integration, read
ROUTES = [route_pattern(spec.path) for spec in CATALOG] + [QUERY_ROUTE, CHECK_ROUTE, INTEGRATION_ROUTE]


@dataclass
class Live:
    portal: BlockingPortal
    client: Client
    control: SandboxControl
    schemas: dict[str, dict[str, Any]]
    named: dict[str, st.SearchStrategy[Any]]

    def call(self, name: str, arguments: dict[str, Any]) -> Any:
        self.control.clear_requests()
        result = self.portal.call(self.client.call_tool, name, arguments)
        return result, self.control.requests()


@pytest.fixture(scope="module", params=MODES)
def live_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    # A key that may use every tool, the integration ones included.
    scopes = ["batch_export:read", "batch_export:write", "integration:read", "integration:write"]
    sandbox = start_sandbox(SandboxConfig(generation=3, throttle=False, keys=[SandboxKey(DEFAULT_API_KEY, scopes)]))
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    exports = [e["id"] for e in control.api("GET", "1/batch_exports/").json()["results"]]
    state = control.state()
    named = {
        "project_id": st.sampled_from([1, 2, 3]) | st.integers(min_value=1),
        "batch_export_id": st.sampled_from(exports) | st.uuids().map(str),
        "run_id": st.sampled_from([r["id"] for r in state["runs"]][:20]) | st.uuids().map(str),
        # batch-export-wait may follow an unfinished backfill for up to 50 s: past the test client's 30 s
        # read timeout, and what it checks is the arguments, not the waiting (tests/test_answers.py).
        "timeout_seconds": st.integers(min_value=1, max_value=3),
        "backfill_id": st.sampled_from([b["id"] for b in state["backfills"]] or [None]).filter(bool)
        | st.uuids().map(str),
    }
    audit = tmp_path_factory.mktemp("audit")
    server_settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, audit, include_deprecated=True, timeout=5.0)
    try:
        with start_blocking_portal() as portal:
            with portal.wrap_async_context_manager(running_app(server_settings)) as app:
                with portal.wrap_async_context_manager(connect(app, request.param)) as client:
                    tools = portal.call(client.list_tools).tools
                    # Drawn from the schema a call is held to: the listed one plus the limits only the
                    # server needs (server/definitions.py), so a mutation past a length is refused too.
                    schemas = {
                        tool.name: enforced_input_schema(
                            BY_NAME[tool.name], pinned_project=False, guarded=app.guard.applies(BY_NAME[tool.name])
                        )
                        for tool in tools
                    }
                    yield Live(portal, client, control, schemas, named)
    finally:
        control.close()
        sandbox.close()


def assert_clear_reply(result: Any) -> str:
    """A tool result (not a protocol error, not a crash) whose text says something useful."""
    assert isinstance(result, types.CallToolResult)
    message = text(result)
    assert message.strip(), "empty reply"
    if result.is_error:
        assert "\n" not in message, f"error not on one line: {message[:300]!r}"
        assert len(message) <= MAX_MESSAGE, f"error of {len(message)} characters: {message[:200]!r}..."
        assert "Error executing tool" not in message and "inside the MCP server" not in message, message
    return message


def assert_requests_stay_in_their_segments(name: str, arguments: dict[str, Any], requests: list[dict]) -> None:
    for request in requests:
        path = request["path"]
        match = next((m for route in ROUTES if (m := route.match(path))), None)
        assert match, f"{name} sent {request['method']} {path}, which is not one of the catalog's routes"
        if "project" in match.groupdict():
            assert match["project"] == str(arguments.get("project_id")), f"{name} sent {path} for {arguments!r}"
        if request["method"] not in ("GET",) and not QUERY_ROUTE.match(path) and not CHECK_ROUTE.match(path):
            assert name in UNGUARDED_POSTS, f"{name} wrote upstream without a confirmation: {request}"


TOOL_NAMES = [spec.name for spec in CATALOG]


@pytest.mark.parametrize("name", TOOL_NAMES)
@EXAMPLES
@given(data=st.data())
def test_schema_valid_arguments_get_a_clear_answer(live_server: Live, name: str, data: st.DataObject) -> None:
    schema = live_server.schemas[name]
    arguments = data.draw(from_schema(schema, live_server.named), label="arguments")
    result, requests = live_server.call(name, arguments)
    assert_clear_reply(result)
    assert_requests_stay_in_their_segments(name, arguments, requests)


@pytest.mark.parametrize("name", TOOL_NAMES)
@EXAMPLES
@given(data=st.data())
def test_mutated_arguments_are_refused_before_anything_is_sent(
    live_server: Live, name: str, data: st.DataObject
) -> None:
    schema = live_server.schemas[name]
    valid = data.draw(from_schema(schema, live_server.named), label="valid")
    kind, arguments = data.draw(mutated(valid, schema), label="mutation")
    result, requests = live_server.call(name, arguments)
    message = assert_clear_reply(result)
    # Deliberate tolerance (tools/params.py `Arguments`, for strict converters): null or "" for an optional
    # parameter means absent, and so does [] for one that needs an item.
    required, properties = set(schema.get("required", [])), schema.get("properties", {})

    def not_given(name: str, value: Any) -> bool:
        needs_item = properties.get(name, {}).get("minItems", 0) > 0
        return name in properties and name not in required and (value in (None, "") or (value == [] and needs_item))

    as_read = {k: v for k, v in arguments.items() if not not_given(k, v)}
    if validator(schema).is_valid(as_read):
        assert_requests_stay_in_their_segments(name, arguments, requests)
        return
    assert result.is_error, f"{kind}: schema-invalid arguments were accepted: {message[:300]}"
    assert not requests, f"{kind}: schema-invalid arguments reached PostHog: {requests}"
    assert name in message or "confirmation_token" in message, message


def test_every_tool_is_covered(live_server: Live) -> None:
    assert set(live_server.schemas) == set(BY_NAME), "include_deprecated should list the whole catalog"
