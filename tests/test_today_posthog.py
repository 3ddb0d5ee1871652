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

from posthog_sandbox import DEFAULT_API_KEY
from tests.support import (
    MODES,
    SandboxControl,
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
