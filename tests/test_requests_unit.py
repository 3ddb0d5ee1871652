"""Unit tests per tool: the exact request built (method, path, query, body) and the response mapped.

PostHog is mocked with respx here; tests/test_tools_sandbox.py runs every tool against the
sandbox over real HTTP.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
import respx
from mcp import Client

from server.app import open_app, perform
from server.config import Settings
from tests.support import data, text
from tools.catalog import BY_NAME, ENDPOINTS
from tools.request import build_request
from tools.upstream import HttpMethod, Request

HOST = "https://posthog.test"
E = "0190f4b2-6c1e-7c3a-9a51-2b1f0e7a1d11"
R = "11111111-2222-4333-8444-555555555555"
B = "66666666-7777-4888-9999-000000000000"
P = "/api/projects/1/batch_exports"
EXPORT = {
    "id": E,
    "name": "Events to HTTP",
    "interval": "hour",
    "paused": False,
    "destination": {"type": "HTTP", "config": {"url": "https://us.i.posthog.com/batch/", "token": "tok-secret-1"}},
    "last_updated_at": "2025-01-01T00:00:00Z",
    "last_paused_at": None,
    "latest_runs": [],
}
RUN = {
    "id": R,
    "status": "Failed",
    "data_interval_start": "2025-01-01T00:00:00Z",
    "data_interval_end": "2025-01-01T01:00:00Z",
    "created_at": "2025-01-01T01:00:05Z",
    "finished_at": "2025-01-01T01:02:00Z",
    "latest_error": "boom",
}
BACKFILL = {"id": B, "status": "Running", "start_at": "2025-01-01T00:00:00Z", "end_at": "2025-01-02T00:00:00Z"}
DEST = {"type": "HTTP", "config": {"url": "https://us.i.posthog.com/batch/", "token": "tok-secret-2"}}
# Test steps exist only for six destination types (docs/posthog-api.md, section "Destination tests").
TESTABLE_DEST = {"type": "Snowflake", "config": {"database": "d", "warehouse": "w", "schema": "s"}, "integration_id": 7}
SNOWFLAKE_EXPORT = {**EXPORT, "destination": {"type": "Snowflake", "config": {"database": "d"}, "integration": 7}}
WIDE = {"after": "2000-01-01T00:00:00Z"}

# tool, arguments, (method, path, query, json body), response body, expected structured result
CASES: list[tuple[str, dict[str, Any], tuple[str, str, dict[str, Any], Any], Any, Any]] = [
    (
        "batch-export-list",
        {"limit": 5, "offset": 10},
        ("GET", f"{P}/", {"limit": "5", "offset": "10"}, None),
        {"count": 1, "next": None, "previous": None, "results": [EXPORT]},
        None,
    ),
    ("batch-export-get", {"batch_export_id": E}, ("GET", f"{P}/{E}/", {}, None), EXPORT, None),
    (
        "batch-export-create",
        {"name": "n", "interval": "day", "destination": DEST, "paused": True},
        ("POST", f"{P}/", {}, {"name": "n", "interval": "day", "destination": DEST, "paused": True}),
        EXPORT,
        None,
    ),
    (
        "batch-export-update",
        {"batch_export_id": E, "name": "renamed"},
        ("PATCH", f"{P}/{E}/", {}, {"name": "renamed"}),
        EXPORT,
        None,
    ),
    (
        "batch-export-delete",
        {"batch_export_id": E},
        ("DELETE", f"{P}/{E}/", {}, None),
        None,
        {"deleted": True, "id": E},
    ),
    ("batch-export-pause", {"batch_export_id": E}, ("POST", f"{P}/{E}/pause/", {}, {}), {"paused": True}, None),
    (
        "batch-export-unpause",
        {"batch_export_id": E, "backfill": True},
        ("POST", f"{P}/{E}/unpause/", {}, {"backfill": True}),
        {"paused": False},
        None,
    ),
    (
        "batch-export-logs",
        {"batch_export_id": E, "level": ["ERROR", "WARNING"], "search": "failed", "limit": 20},
        ("GET", f"{P}/{E}/logs/", {"level": "ERROR,WARNING", "search": "failed", "limit": "20"}, None),
        {"count": 0, "next": None, "previous": None, "results": []},
        None,
    ),
    (
        "batch-export-runs-list",
        {"batch_export_id": E, "status": ["Failed", "FailedRetryable"], "after": "2026-11-01T09:30:00+01:00"},
        # Always UTC with the offset spelled out: PostHog reads a bare time in the project's zone.
        ("GET", f"{P}/{E}/runs/", {"status": ["Failed", "FailedRetryable"], "after": "2026-11-01T08:30:00Z"}, None),
        {"next": None, "previous": None, "results": [RUN]},
        None,
    ),
    ("batch-export-run-get", {"batch_export_id": E, "run_id": R}, ("GET", f"{P}/{E}/runs/{R}/", WIDE, None), RUN, None),
    (
        "batch-export-run-retry",
        {"batch_export_id": E, "run_id": R},
        ("POST", f"{P}/{E}/runs/{R}/retry/", WIDE, {}),
        {"backfill_id": "x-Backfill-a-b"},
        None,
    ),
    (
        "batch-export-run-cancel",
        {"batch_export_id": E, "run_id": R},
        ("POST", f"{P}/{E}/runs/{R}/cancel/", WIDE, {}),
        {"cancelled": True},
        None,
    ),
    (
        "batch-export-backfills-list",
        {"batch_export_id": E, "ordering": "-start_at"},
        ("GET", f"{P}/{E}/backfills/", {"ordering": "-start_at"}, None),
        {"next": None, "results": [BACKFILL]},
        None,
    ),
    (
        "batch-export-backfill-get",
        {"batch_export_id": E, "backfill_id": B},
        ("GET", f"{P}/{E}/backfills/{B}/", {}, None),
        BACKFILL,
        None,
    ),
    (
        "batch-export-backfill-create",
        {"batch_export_id": E, "start_at": "2025-01-01", "end_at": "2025-01-08"},
        (
            "POST",
            f"{P}/{E}/backfills/",
            {},
            {"start_at": "2025-01-01T00:00:00+00:00", "end_at": "2025-01-08T00:00:00+00:00"},
        ),
        {"backfill_id": B},
        None,
    ),
    (
        "batch-export-backfill-cancel",
        {"batch_export_id": E, "backfill_id": B},
        ("POST", f"{P}/{E}/backfills/{B}/cancel/", {}, {}),
        {"cancelled": True},
        None,
    ),
    (
        "batch-export-backfill-legacy",
        {"batch_export_id": E, "start_at": "2025-01-01T00:00:00Z", "end_at": "2025-01-02T00:00:00+00:00"},
        (
            "POST",
            f"{P}/{E}/backfill/",
            {},
            {"start_at": "2025-01-01T00:00:00+00:00", "end_at": "2025-01-02T00:00:00+00:00"},
        ),
        {"backfill_id": "wf"},
        None,
    ),
    (
        "batch-export-test-steps",
        {"destination": "AwsS3"},
        ("GET", f"{P}/test/", {"destination": "AwsS3"}, None),
        {"steps": [{"name": "s", "result": None}]},
        None,
    ),
    (
        "batch-export-test-step",
        {"batch_export_id": E, "step": 1},
        (
            "POST",
            f"{P}/{E}/run_test_step/",
            {},
            {
                "name": EXPORT["name"],
                "interval": "hour",
                "destination": {"type": "Snowflake", "config": {}, "integration_id": 7},
                "step": 1,
            },
        ),
        {"name": "s", "result": {"status": "Passed", "message": None}},
        None,
    ),
    (
        "batch-export-test-step-new",
        {"name": "n", "interval": "hour", "destination": TESTABLE_DEST},
        (
            "POST",
            f"{P}/run_test_step_new/",
            {},
            {"name": "n", "interval": "hour", "destination": TESTABLE_DEST, "step": 0},
        ),
        {"name": "s", "result": {"status": "Passed", "message": None}},
        None,
    ),
]


def _query(request: httpx.Request) -> dict[str, Any]:
    pairs = parse_qsl(urlsplit(str(request.url)).query)
    out: dict[str, Any] = {}
    for key, value in pairs:
        out[key] = [*out[key], value] if isinstance(out.get(key), list) else [out[key], value] if key in out else value
    return out


def _settings(tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        api_key="phx_unit_key_1234",
        host=HOST,
        audit_log=tmp_path / "audit.jsonl",
        **({"toolsets": ("all",)} | overrides),
    )


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_every_tool_builds_its_request_and_maps_the_response(tmp_path: Path, mode: str) -> None:
    # One case per endpoint tool; the answer tools, several requests each, have tests/test_answers.py.
    assert {c[0] for c in CASES} == {spec.name for spec in ENDPOINTS}, "every endpoint tool needs a case here"
    settings = _settings(tmp_path, confirm="never", include_deprecated=True)
    for name, arguments, (method, path, query, body), response, expected in CASES:
        with respx.mock(base_url=HOST, assert_all_called=True) as mock:
            mock.get("/api/personal_api_keys/@current/").respond(200, json={"scopes": ["*"], "scoped_teams": []})
            if name in ("batch-export-backfill-create", "batch-export-backfill-legacy"):
                mock.get(f"{P}/{E}/").respond(200, json=EXPORT)
            if name == "batch-export-test-step":
                mock.get(f"{P}/{E}/").respond(200, json=SNOWFLAKE_EXPORT)
            status = 204 if response is None else 200
            route = (
                mock.request(method, path).respond(status, json=response)
                if response is not None
                else (mock.request(method, path).respond(204))
            )
            async with open_app(settings) as app, Client(app.server, mode=mode) as client:
                result = await client.call_tool(name, {"project_id": 1, **arguments})
            assert route.call_count == 1, name
            sent = route.calls.last.request
            assert sent.headers["authorization"] == "Bearer phx_unit_key_1234"
            assert sent.headers["user-agent"].startswith("posthog-batch-exports-mcp/")
            assert _query(sent) == query, name
            assert (json.loads(sent.content) if sent.content else None) == body, name
            got = data(result)
            if expected is not None:
                assert got == expected, name
            assert "tok-secret" not in text(result), f"{name} echoed a secret"
            assert "phx_unit_key_1234" not in text(result)


async def test_environments_route_family(tmp_path: Path) -> None:
    with respx.mock(base_url=HOST) as mock:
        mock.get("/api/personal_api_keys/@current/").respond(200, json={"scopes": ["batch_export:read"]})
        route = mock.get(f"/api/environments/2/batch_exports/{E}/").respond(200, json=EXPORT)
        async with open_app(_settings(tmp_path, api_route="environments")) as app, Client(app.server) as client:
            data(await client.call_tool("batch-export-get", {"project_id": 2, "batch_export_id": E}))
        assert route.call_count == 1


async def test_list_shape_keeps_latest_runs_small(tmp_path: Path) -> None:
    runs = [{**RUN, "id": f"{R[:-2]}{i:02d}", "records_completed": 5, "bytes_exported": 9} for i in range(10)]
    with respx.mock(base_url=HOST) as mock:
        mock.get("/api/personal_api_keys/@current/").respond(200, json={"scopes": ["*"]})
        mock.get(f"{P}/").respond(200, json={"count": 1, "results": [{**EXPORT, "latest_runs": runs}]})
        async with open_app(_settings(tmp_path)) as app, Client(app.server) as client:
            page = data(await client.call_tool("batch-export-list", {"project_id": 1}))
    digest = page["results"][0]["latest_runs"]
    assert len(digest) == 5
    assert set(digest[0]) == {
        "id",
        "status",
        "data_interval_start",
        "data_interval_end",
        "records_completed",
        "latest_error",
    }


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            401,
            {
                "type": "authentication_error",
                "code": "authentication_failed",
                "detail": "Personal API key found in request Authorization header is invalid.",
                "attr": None,
            },
            ["HTTP 401", "authentication_failed", "check POSTHOG_PERSONAL_API_KEY"],
        ),
        (
            403,
            {
                "type": "authentication_error",
                "code": "permission_denied",
                "detail": "API key missing required scope 'batch_export:write'",
                "attr": None,
            },
            ["HTTP 403", "permission_denied", "batch_export:write"],
        ),
        (
            404,
            {"type": "invalid_request", "code": "not_found", "detail": "Not found.", "attr": None},
            ["HTTP 404", "not_found", "was deleted"],
        ),
        (
            400,
            {
                "type": "validation_error",
                "code": "invalid_choice",
                "detail": '"x" is not a valid choice.',
                "attr": "destination__type",
            },
            ["HTTP 400", "invalid_choice", "attr=destination__type"],
        ),
    ],
)
async def test_error_envelope_becomes_one_clear_line(
    tmp_path: Path, status: int, body: Any, expected: list[str]
) -> None:
    with respx.mock(base_url=HOST) as mock:
        mock.get("/api/personal_api_keys/@current/").respond(200, json={"scopes": ["*"]})
        mock.get(f"{P}/{E}/").respond(status, json=body)
        async with open_app(_settings(tmp_path)) as app, Client(app.server) as client:
            result = await client.call_tool("batch-export-get", {"project_id": 1, "batch_export_id": E})
    assert result.is_error
    message = text(result)
    assert "\n" not in message and "Error executing tool" not in message
    for part in expected:
        assert part in message
    assert body["detail"] in message


async def test_schema_invalid_arguments_send_nothing(tmp_path: Path) -> None:
    with respx.mock(base_url=HOST) as mock:
        mock.get("/api/personal_api_keys/@current/").respond(200, json={"scopes": ["*"]})
        async with open_app(_settings(tmp_path)) as app, Client(app.server) as client:
            bad = [
                ("batch-export-get", {"project_id": 1, "batch_export_id": "../../x"}, "batch_export_id"),
                ("batch-export-get", {"project_id": 1, "batch_export_id": E, "extra": 1}, "unknown parameter 'extra'"),
                (
                    "batch-export-create",
                    {
                        "project_id": 1,
                        "name": "n",
                        "interval": "day",
                        "destination": {"type": "Snowflake", "config": {"database": "d"}},
                    },
                    "missing required key(s) warehouse, schema",
                ),
                (
                    "batch-export-create",
                    {
                        "project_id": 1,
                        "name": "n",
                        "interval": "day",
                        "destination": {"type": "HTTP", "config": {"url": "u", "token": "t", "x": 1}},
                    },
                    "unknown key(s) 'x'",
                ),
                (
                    "batch-export-backfill-create",
                    {"project_id": 1, "batch_export_id": E, "start_at": "2025-02-01", "end_at": "2025-01-01"},
                    "must be before end_at",
                ),
                ("batch-export-update", {"project_id": 1, "batch_export_id": E, "offset_hour": 3}, "need interval"),
                ("batch-export-list", {"project_id": -1}, "project_id"),
            ]
            for name, arguments, fragment in bad:
                result = await client.call_tool(name, arguments)
                assert result.is_error, name
                assert fragment in text(result), (name, text(result))
                assert "Nothing was sent to PostHog" in text(result)
        assert mock.calls.call_count == 1  # only the start-up scope discovery


async def test_newer_posthog_fields_statuses_and_201_pass_through(tmp_path: Path) -> None:
    """Unknown fields and enum values from a newer PostHog reach the model unchanged and still validate."""
    future_run = {**RUN, "status": "PausedForMaintenance", "records_failed": 3, "brand_new_field": {"x": [1, 2]}}
    with respx.mock(base_url=HOST) as mock:
        mock.get("/api/personal_api_keys/@current/").respond(200, json={"scopes": ["*"], "future": True})
        mock.get(f"{P}/{E}/runs/{R}/").respond(200, json=future_run)
        mock.post(f"{P}/{E}/runs/{R}/retry/").respond(201, json={"backfill_id": "opaque:thing", "extra": 1})
        settings = _settings(tmp_path, confirm="never")
        for mode in ("auto", "legacy"):
            async with open_app(settings) as app, Client(app.server, mode=mode) as client:
                got = data(
                    await client.call_tool("batch-export-run-get", {"project_id": 1, "batch_export_id": E, "run_id": R})
                )
                assert got["status"] == "PausedForMaintenance" and got["brand_new_field"] == {"x": [1, 2]}
                retried = data(
                    await client.call_tool(
                        "batch-export-run-retry", {"project_id": 1, "batch_export_id": E, "run_id": R}
                    )
                )
                assert retried["backfill_id"] == "opaque:thing" and retried["extra"] == 1


async def test_secrets_are_stripped_even_if_posthog_returned_them(tmp_path: Path) -> None:
    leaky = {
        **EXPORT,
        "destination": {
            "type": "Redshift",
            "config": {
                "database": "d",
                "password": "pw-leak-1",
                "copy_inputs": {"authorization": {"aws_secret_access_key": "k-leak-2"}},
            },
        },
    }
    with respx.mock(base_url=HOST) as mock:
        mock.get("/api/personal_api_keys/@current/").respond(200, json={"scopes": ["*"]})
        mock.get(f"{P}/{E}/").respond(200, json=leaky)
        async with open_app(_settings(tmp_path)) as app, Client(app.server) as client:
            result = await client.call_tool("batch-export-get", {"project_id": 1, "batch_export_id": E})
    got = data(result)
    assert got["destination"]["config"] == {"database": "d", "copy_inputs": {"authorization": {}}}
    assert "leak" not in text(result)


async def test_errors_carry_no_structured_content_that_could_break_a_schema_check(tmp_path: Path) -> None:
    """Clients such as the Inspector validate structuredContent against outputSchema even on errors."""
    with respx.mock(base_url=HOST) as mock:
        mock.get("/api/personal_api_keys/@current/").respond(200, json={"scopes": ["*"]})
        mock.get(f"{P}/{E}/").respond(
            404, json={"type": "invalid_request", "code": "not_found", "detail": "Not found.", "attr": None}
        )
        async with open_app(_settings(tmp_path)) as app, Client(app.server) as client:
            result = await client.call_tool("batch-export-get", {"project_id": 1, "batch_export_id": E})
    assert result.is_error and result.structured_content is None
    assert result.meta["posthog-batch-exports-mcp/error"]["upstream"]["status"] == 404


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_huge_unknown_tool_name_is_not_echoed_whole(tmp_path: Path, mode: str) -> None:
    name = "batch-export-" + "x" * 100_000
    with respx.mock(base_url=HOST) as mock:
        mock.get("/api/personal_api_keys/@current/").respond(200, json={"scopes": ["*"]})
        async with open_app(_settings(tmp_path)) as app, Client(app.server, mode=mode) as client:
            result = await client.call_tool(name, {"project_id": 1})
        assert mock.calls.call_count == 1  # only the start-up scope discovery
    message = text(result)
    assert result.is_error and message.startswith("Unknown tool 'batch-export-xxx")
    assert "(100013 characters)" in message and "batch-export-list" in message
    assert len(message) < 2_000, len(message)


class RecordingUpstream:
    """Answers reads with the fixtures above and writes with `answer`, recording every request."""

    def __init__(self, answer: Any, export: dict[str, Any]) -> None:
        self.answer = answer
        self.export = export
        self.sent: list[Request] = []

    async def send(self, request: Request) -> Any:
        self.sent.append(request)
        if request.method != "GET":
            return self.answer
        if "/runs/" in request.path:
            return RUN
        if "/backfills/" in request.path:
            return {"results": [BACKFILL]}
        return self.export

    async def request(
        self, method: HttpMethod, path: str, *, query: Mapping[str, Any] | None = None, json: Any = None
    ) -> Any:
        return await self.send(Request(method, path, dict(query or {}), json))


@pytest.mark.parametrize("case", [c for c in CASES if BY_NAME[c[0]].handler is not None], ids=lambda c: c[0])
async def test_a_handler_sends_the_route_its_declaration_built(case: Any) -> None:
    """A handler amends the built request (query, body); the method and path stay the declaration's."""
    name, arguments, _, response, _ = case
    spec = BY_NAME[name]
    params = spec.params.model_validate({"project_id": 1, **arguments})
    upstream = RecordingUpstream(response, SNOWFLAKE_EXPORT if name == "batch-export-test-step" else EXPORT)
    await perform(spec, params, upstream)
    declared = build_request(spec, params)
    last = upstream.sent[-1]
    assert (last.method, last.path) == (declared.method, declared.path), name
    assert (declared.method, f"{P}/{declared.path.removeprefix('batch_exports/')}") == case[2][:2], name
