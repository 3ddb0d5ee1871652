"""The tools against today's PostHog (issue 10, tool side), through a real MCP client and the sandbox.

Each test drives the server the way a model would and checks both what the model is told and
what reached the sandbox (its request log), so "refused before any preview" means no request at
all, or no write, as the case says.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qs

import pytest

from posthog_sandbox import DEFAULT_API_KEY, SandboxKey
from tests.support import (
    MODES,
    SandboxControl,
    assert_output_valid,
    confirm_with_token,
    connect,
    data,
    running_app,
    settings_for,
    text,
    tools_by_name,
)


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def gen3(make_sandbox: Callable[..., Any]) -> Iterator[tuple[Any, SandboxControl]]:
    sandbox = make_sandbox(generation=3)
    with SandboxControl(sandbox.base_url, DEFAULT_API_KEY) as control:
        yield sandbox, control


def _new_export(dest_type: str, config: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "project_id": 1,
        "name": f"New {dest_type} export",
        "interval": "hour",
        "destination": {"type": dest_type, "config": config, **extra},
    }


S3_CONFIG = {"bucket_name": "b", "region": "us-east-1", "prefix": "events/"}
BIGQUERY_CONFIG = {"dataset_id": "analytics", "table_id": "events"}


async def test_creating_aws_s3_without_an_integration_is_refused_before_any_preview(
    gen3: tuple[Any, SandboxControl], mode: str, tmp_path: Any
) -> None:
    sandbox, control = gen3
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            control.clear_requests()
            result = await client.call_tool("batch-export-create", _new_export("AwsS3", S3_CONFIG))
    message = text(result)
    assert result.is_error, message
    assert "destination.integration_id is required for AwsS3" in message
    assert "Nothing was sent to PostHog" in message
    assert control.requests() == [], "a refusal known beforehand must not reach PostHog at all"


async def test_creating_bigquery_without_an_integration_is_refused_where_posthog_would_refuse_it(
    make_sandbox: Callable[..., Any], mode: str, tmp_path: Any, generation: int
) -> None:
    """Newer PostHog needs the integration; the docs-page generation takes inline credentials."""
    sandbox = make_sandbox(generation=generation)
    config = BIGQUERY_CONFIG if generation == 3 else {**BIGQUERY_CONFIG, "project_id": "p", "private_key": "k" * 20}
    if generation == 1:
        config.update(private_key_id="kid", token_uri="https://oauth2.googleapis.com/token", client_email="a@b.c")
    with SandboxControl(sandbox.base_url, DEFAULT_API_KEY) as control:
        async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
            async with connect(app, mode) as client:
                control.clear_requests()
                result = await client.call_tool("batch-export-create", _new_export("BigQuery", config))
                writes = control.writes()
    if generation == 3:
        message = text(result)
        assert result.is_error and "Not done" in message, message
        assert "destination.integration_id is required for BigQuery" in message
        assert "confirmation_token" not in message
    else:
        assert data(result)["status"] == "confirmation_required"
    assert writes == []


async def test_updating_a_bigquery_destination_without_integration_id_succeeds(
    gen3: tuple[Any, SandboxControl], mode: str, tmp_path: Any
) -> None:
    sandbox, control = gen3
    export_id = control.export_id("Events to BigQuery (backfilling)")
    before = control.api("GET", f"1/batch_exports/{export_id}/").json()
    integration = before["destination"]["integration"]
    assert integration is not None
    arguments = {
        "project_id": 1,
        "batch_export_id": export_id,
        "destination": {"type": "BigQuery", "config": {"table_id": "events_v2"}},
    }
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            preview = data(await client.call_tool("batch-export-update", arguments))
            assert preview["preview"]["destination_sent"]["integration_id"] == integration, preview
            assert f"stored integration {integration}" in preview["preview"]["summary"]
            result = await confirm_with_token(client, "batch-export-update", arguments)
    assert result["destination"]["config"]["table_id"] == "events_v2"
    after = control.api("GET", f"1/batch_exports/{export_id}/").json()
    assert after["destination"]["integration"] == integration
    assert after["destination"]["config"]["table_id"] == "events_v2"


async def test_the_test_tools_refuse_postgres_locally(
    gen3: tuple[Any, SandboxControl], mode: str, tmp_path: Any
) -> None:
    sandbox, control = gen3
    postgres = control.export_id("Paused events to Postgres")
    new_postgres = _new_export("Postgres", {"database": "d", "host": "db.example.com"}, integration_id=103)
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            listed = await tools_by_name(client)
            enum = listed["batch-export-test-steps"].input_schema["properties"]["destination"]["enum"]
            assert enum == ["AwsS3", "S3Compatible", "BigQuery", "Snowflake", "Databricks", "AzureBlob"]
            control.clear_requests()
            steps = await client.call_tool("batch-export-test-steps", {"project_id": 1, "destination": "Postgres"})
            new = await client.call_tool("batch-export-test-step-new", new_postgres)
            sent_before_existing = control.requests()
            existing = await client.call_tool(
                "batch-export-test-step", {"project_id": 1, "batch_export_id": postgres, "step": 0}
            )
    for result in (steps, new, existing):
        message = text(result)
        assert result.is_error, message
        assert "no connection test steps for Postgres" in message, message
        assert "may or may not have been applied" not in message
    assert sent_before_existing == []
    # The existing export's type is only known once it is read: one GET, no test step.
    assert [r["method"] for r in control.requests()] == ["GET"]


async def test_runs_filters_always_reach_posthog_with_a_utc_offset(
    gen3: tuple[Any, SandboxControl], mode: str, tmp_path: Any
) -> None:
    sandbox, control = gen3
    export_id = control.export_id("Hourly events to S3")
    cases = [
        {"after": "-30d", "before": "-1d"},
        {"after": "2026-11-01", "before": "2026-11-30T12:00"},
        {"start": "2026-11-01T10:00:00+05:30", "end": "2026-11-02 00:00"},
    ]
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            for filters in cases:
                control.clear_requests()
                data(
                    await client.call_tool(
                        "batch-export-runs-list", {"project_id": 1, "batch_export_id": export_id, **filters}
                    )
                )
                (sent,) = [r for r in control.requests() if r["path"].endswith("/runs/")]
                query = parse_qs(sent["query"])
                for name in filters:
                    (value,) = query[name]
                    assert value.endswith("Z") and "T" in value, f"{name}={value} has no explicit UTC offset"
    assert query["start"] == ["2026-11-01T04:30:00Z"]


async def test_a_backfill_bound_before_year_one_in_utc_is_a_field_error(
    gen3: tuple[Any, SandboxControl], mode: str, tmp_path: Any
) -> None:
    sandbox, control = gen3
    daily = control.export_id("Daily events to Snowflake")
    arguments = {
        "project_id": 1,
        "batch_export_id": daily,
        "start_at": "0001-01-01T00:00:00+01:00",
        "end_at": "2026-11-25",
    }
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            control.clear_requests()
            result = await client.call_tool("batch-export-backfill-create", arguments)
    message = text(result)
    assert result.is_error and "Invalid arguments for batch-export-backfill-create" in message, message
    assert "start_at is not a valid date or datetime" in message and "OverflowError" not in message
    assert control.requests() == []


async def test_create_refuses_the_s3_type_the_other_generation_uses(
    make_sandbox: Callable[..., Any], mode: str, tmp_path: Any, generation: int
) -> None:
    sandbox = make_sandbox(generation=generation)
    if generation == 3:
        arguments, expected = _new_export("S3", S3_CONFIG), "no longer takes destination type S3"
    else:
        arguments, expected = _new_export("AwsS3", S3_CONFIG, integration_id=101), "predates the AwsS3 type"
    with SandboxControl(sandbox.base_url, DEFAULT_API_KEY) as control:
        async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
            async with connect(app, mode) as client:
                control.clear_requests()
                result = await client.call_tool("batch-export-create", arguments)
                writes = control.writes()
    message = text(result)
    assert result.is_error and expected in message, message
    assert writes == []


# --- keys and logs in today's PostHog (need the sandbox's refusals) ------------------------------------

READER = "phx_reader_with_query_read"
READER_NO_QUERY = "phx_reader_without_query"
LEGACY = "phx_legacy_unscoped_key"
KEYS = [
    SandboxKey(DEFAULT_API_KEY, ["batch_export:read", "batch_export:write"]),
    SandboxKey(READER, ["batch_export:read", "query:read"]),
    SandboxKey(READER_NO_QUERY, ["batch_export:read"]),
    SandboxKey(LEGACY, []),
]


@pytest.fixture
def refusing_logs(make_sandbox: Callable[..., Any]) -> Iterator[tuple[Any, SandboxControl]]:
    sandbox = make_sandbox(generation=3, keys=KEYS, logs_for_keys="refused")
    with SandboxControl(sandbox.base_url, DEFAULT_API_KEY) as control:
        yield sandbox, control


async def test_logs_come_through_the_query_api_where_the_route_is_refused(
    refusing_logs: tuple[Any, SandboxControl], mode: str, tmp_path: Any
) -> None:
    sandbox, control = refusing_logs
    export_id = control.export_id("Daily events to Snowflake")
    arguments = {"project_id": 1, "batch_export_id": export_id, "level": ["ERROR"], "after": "-30d", "limit": 5}
    async with running_app(settings_for(sandbox.base_url, READER, tmp_path)) as app:
        async with connect(app, mode) as client:
            tool = (await tools_by_name(client))["batch-export-logs"]
            control.clear_requests()
            result = await client.call_tool("batch-export-logs", arguments)
    assert_output_valid(tool, result)
    got = data(result)
    assert got["source"] == "query_api", got
    assert 1 <= len(got["results"]) <= 5
    assert all(row["level"] == "ERROR" and row["message"] for row in got["results"])
    times = [row["timestamp"] for row in got["results"]]
    assert times == sorted(times, reverse=True), "newest first, like the logs route"
    statuses = [(r["method"], r["path"].rsplit("/", 2)[-2], r["status"]) for r in control.requests()]
    assert statuses == [("GET", "logs", 403), ("POST", "query", 200)], statuses


async def test_logs_without_query_read_say_what_to_do(
    refusing_logs: tuple[Any, SandboxControl], mode: str, tmp_path: Any
) -> None:
    sandbox, control = refusing_logs
    export_id = control.export_id("Daily events to Snowflake")
    async with running_app(settings_for(sandbox.base_url, READER_NO_QUERY, tmp_path)) as app:
        async with connect(app, mode) as client:
            result = await client.call_tool("batch-export-logs", {"project_id": 1, "batch_export_id": export_id})
    message = text(result)
    assert result.is_error and "\n" not in message
    assert "Give the personal API key the scope query:read" in message, message


async def test_logs_where_the_route_is_allowed_say_so(
    gen3: tuple[Any, SandboxControl], mode: str, tmp_path: Any
) -> None:
    sandbox, control = gen3
    export_id = control.export_id("Daily events to Snowflake")
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            got = data(await client.call_tool("batch-export-logs", {"project_id": 1, "batch_export_id": export_id}))
    assert got["source"] == "logs_route" and got["results"]


async def test_a_legacy_key_gets_the_clear_message(
    refusing_logs: tuple[Any, SandboxControl], mode: str, tmp_path: Any
) -> None:
    sandbox, control = refusing_logs
    async with running_app(settings_for(sandbox.base_url, LEGACY, tmp_path)) as app:
        assert app.client.key_scopes == ("*",), "PostHog reports a legacy key's scopes as *"
        async with connect(app, mode) as client:
            result = await client.call_tool("batch-export-list", {"project_id": 1})
    message = text(result)
    assert result.is_error and "HTTP 403" in message
    assert "legacy personal API key without stored scopes" in message
    assert "create a personal API key with scopes" in message, message


async def test_database_unavailable_reads_are_retried_and_writes_reported_not_resent(
    gen3: tuple[Any, SandboxControl], mode: str, tmp_path: Any
) -> None:
    sandbox, control = gen3
    export_id = control.export_id("Hourly events to S3")
    arguments = {"project_id": 1, "batch_export_id": export_id}
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            control.clear_requests()
            control.fault(method="GET", path_contains=f"/{export_id}/", database_unavailable=True, count=1)
            assert data(await client.call_tool("batch-export-get", arguments))["id"] == export_id
            reads = [r["status"] for r in control.requests() if r["method"] == "GET"]
            preview = data(await client.call_tool("batch-export-pause", arguments))
            control.clear_requests()
            control.fault(method="POST", path_contains="/pause/", database_unavailable=True, count=-1)
            result = await client.call_tool(
                "batch-export-pause", {**arguments, "confirmation_token": preview["confirmation_token"]}
            )
            control.clear_faults()
    assert reads == [503, 200]
    message = text(result)
    assert result.is_error and "database_unavailable" in message and "may or may not have been applied" in message
    assert len([r for r in control.requests() if r["method"] == "POST"]) == 1, "a write is never resent"


# --- every read tool on a project of a real size -------------------------------------------------------


# Values for the required arguments of read tools, by name; a read tool with another required argument
# fails this test until it is added here.
def _read_arguments(tool: Any, ids: dict[str, str]) -> dict[str, Any]:
    schema = tool.input_schema
    values: dict[str, Any] = {"project_id": 1, "destination": "AwsS3", **ids}
    missing = [name for name in schema.get("required", []) if name not in values]
    assert not missing, f"{tool.name}: no test value for required argument(s) {missing}"
    return {name: values[name] for name in schema.get("properties", {}) if name in values}


@pytest.fixture(scope="module")
def large_project() -> Iterator[tuple[Any, dict[str, str]]]:
    from posthog_sandbox import SandboxConfig, start_sandbox
    from tests.support import EVERY_TOOL_SCOPES

    sandbox = start_sandbox(SandboxConfig(exports=500, keys=[SandboxKey(DEFAULT_API_KEY, list(EVERY_TOOL_SCOPES))]))
    try:
        with SandboxControl(sandbox.base_url, DEFAULT_API_KEY) as control:
            exports = control.api("GET", "1/batch_exports/", params={"limit": 100}).json()["results"]
            failing = next(e for e in exports if any(r["status"] == "Failed" for r in e["latest_runs"]))
            runs = control.api("GET", f"1/batch_exports/{failing['id']}/runs/").json()["results"]
            with_backfill = None
            for export in exports:
                found = control.api("GET", f"1/batch_exports/{export['id']}/backfills/").json()["results"]
                if found:
                    with_backfill = (export["id"], found[0]["id"])
                    break
            assert with_backfill is not None, "the large seed has backfills"
            ids = {"batch_export_id": failing["id"], "run_id": runs[0]["id"]}
            ids["backfill_export_id"], ids["backfill_id"] = with_backfill
        yield sandbox, ids
    finally:
        sandbox.close()


async def test_every_read_tool_works_on_500_exports(
    large_project: tuple[Any, dict[str, str]], mode: str, tmp_path: Any
) -> None:
    sandbox, ids = large_project
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            listed = await tools_by_name(client)
            reads = [t for t in listed.values() if t.annotations and t.annotations.read_only_hint]
            assert len(reads) >= 7, sorted(listed)
            for tool in reads:
                own = dict(ids)
                if "backfill_id" in tool.input_schema.get("required", []):
                    own["batch_export_id"] = ids["backfill_export_id"]
                else:  # a tool that takes a run or a backfill (batch-export-wait) gets the run
                    own.pop("backfill_id")
                arguments = _read_arguments(tool, {k: v for k, v in own.items() if k != "backfill_export_id"})
                result = await client.call_tool(tool.name, arguments)
                assert not result.is_error, f"{tool.name}({arguments}): {text(result)}"
                assert_output_valid(tool, result)
                assert len(text(result)) <= 60_000, f"{tool.name} answered {len(text(result))} characters"
