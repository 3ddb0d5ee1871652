"""Replay of products/batch_exports/backend/tests/api/test_create.py (PostHog): generic create rules."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import PostHog
from .replay import (
    AWS_S3,
    OTHER_ORGANIZATION,
    S3_COMPATIBLE,
    export_with,
    refused,
    replays,
    s3_export,
)

SOURCE = "test_create.py"
EVENTS_QUERY_REFUSAL = "'hogql_query' is only supported for 'hogql' not 'events' model"
# The `hogql_batch_export_data` body: the hogql model, its query bounded by the run's interval.
HOGQL_QUERY = (
    "SELECT event AS event, timestamp AS timestamp FROM events "
    "WHERE timestamp >= {data_interval_start} AND timestamp < {data_interval_end}"
)


def hogql_export(**fields: Any) -> dict[str, Any]:
    return s3_export(model="hogql", hogql_query=HOGQL_QUERY, **fields)


@replays(SOURCE)
def test_create_batch_export_with_interval_schedule(posthog: PostHog) -> None:
    destination = {
        "type": "S3Compatible",
        "config": {
            "bucket_name": "my-production-s3-bucket",
            "region": "us-east-1",
            "prefix": "posthog-events/",
            "use_virtual_style_addressing": True,
            "legacy_parquet_extension": False,
        },
        "integration": S3_COMPATIBLE,
    }
    # `last_modified_by` is not a field of the API: it is ignored, the export is the caller's.
    data = posthog.create(export_with(destination, name="my-production-s3-bucket-destination", last_modified_by=9))
    assert data["destination"] == destination
    assert (data["name"], data["interval"]) == ("my-production-s3-bucket-destination", "hour")


@replays(SOURCE)
@pytest.mark.parametrize(
    "interval,timezone,offset_day,offset_hour",
    [
        ("every 5 minutes", None, None, None),
        ("hour", "UTC", None, None),
        ("hour", "invalid", None, None),
        ("hour", "US/Pacific", None, None),
        ("hour", "US/Pacific", None, 2),
        ("day", "US/Pacific", None, None),
        ("day", "US/Pacific", None, 0),
        ("day", "Asia/Kathmandu", None, 2),
        ("day", "Asia/Kathmandu", None, 24),
        ("day", "Asia/Kathmandu", 1, 6),
        ("week", None, None, None),
        ("week", "Asia/Kathmandu", None, None),
        ("week", "Asia/Kathmandu", 0, 0),
        ("week", "Europe/Berlin", 1, 2),
        ("week", "Europe/Berlin", 7, 2),
    ],
)
def test_create_batch_export_with_different_intervals_timezones_and_interval_offsets(
    posthog: PostHog, interval: str, timezone: str | None, offset_day: int | None, offset_hour: int | None
) -> None:
    body = s3_export(interval, timezone=timezone)
    if offset_hour is not None:
        body["offset_hour"] = offset_hour
    if offset_day is not None:
        body["offset_day"] = offset_day
    response = posthog.post("", json=body)
    expect_error = (
        (offset_day is not None and offset_day > 6)
        or (offset_hour is not None and offset_hour > 23)
        or (interval not in ("day", "week") and (offset_day is not None or offset_hour is not None))
        or (interval == "day" and offset_day is not None)
        or timezone == "invalid"
    )
    if expect_error:
        refused(response)
        return
    assert response.status_code == 201, response.text
    data = response.json()
    assert data["timezone"] == (timezone or "UTC")
    if interval == "day":
        assert data["offset_hour"] == (offset_hour or 0)
    if interval == "week":
        assert (data["offset_day"], data["offset_hour"]) == (offset_day or 0, offset_hour or 0)


@replays(SOURCE)
def test_cannot_create_a_batch_export_for_another_organization(posthog: PostHog) -> None:
    refused(posthog.post("", json=s3_export(), project=OTHER_ORGANIZATION), 403)


@replays(SOURCE)
@pytest.mark.parametrize(
    "destination_type,foreign_integration,config",
    [
        ("AwsS3", 201, {"bucket_name": "b", "region": "us-east-1", "prefix": "p/"}),
        ("Databricks", 205, {"http_path": "p", "catalog": "c", "schema": "s", "table_name": "t"}),
        ("Snowflake", 202, {"database": "d", "warehouse": "w", "schema": "s"}),
    ],
)
def test_cannot_create_batch_export_with_integration_from_another_team(
    posthog: PostHog, destination_type: str, foreign_integration: int, config: dict[str, Any]
) -> None:
    destination = {"type": destination_type, "config": config, "integration": foreign_integration}
    response = posthog.post("", json=export_with(destination))
    refused(response)
    assert (response.json()["attr"], response.json()["code"]) == ("destination__integration", "does_not_exist")


@replays(SOURCE)
def test_create_batch_export_with_custom_schema(posthog: PostHog) -> None:
    """Newest code: a HogQL query on the events model is kept only for grandfathered projects (one that already
    has an export with a schema); a new project is refused (presentation/views/batch_export/exports.py,
    `BatchExportSerializer.validate`). The test predates that."""
    response = posthog.post("", json=s3_export(hogql_query="SELECT event, team_id AS my_team FROM events"))
    assert refused(response) == EVENTS_QUERY_REFUSAL
    assert response.json()["attr"] == "hogql_query"


@replays(SOURCE)
@pytest.mark.parametrize(
    "invalid_query",
    [
        "SELECT",
        "SELECT event,, FROM events",
        "SELECT unknown_field FROM events",
        "SELECT event, persons.id FROM events LEFT JOIN persons ON events.person_id = persons.id",
        "SELECT event FROM events UNION ALL SELECT event FROM events",
        "WITH cte AS (SELECT event FROM events) SELECT event FROM cte",
        "SELECT event FROM (SELECT event FROM events)",
        "SELECT event FROM (SELECT event FROM events UNION ALL SELECT event FROM events)",
        "SELECT uuid, (SELECT event FROM events LIMIT 1) AS leaked FROM events",
        "SELECT coalesce((SELECT uuid FROM events LIMIT 1), uuid) AS foo FROM events",
        "SELECT event, $session_id FROM events",
        "SELECT event, person.created_at FROM events",
    ],
)
def test_create_batch_export_fails_with_invalid_query(posthog: PostHog, invalid_query: str) -> None:
    """Newest code: every one of these is refused before it is parsed, because the events model takes no
    query in a project that is not grandfathered (see `test_create_batch_export_with_custom_schema`)."""
    assert refused(posthog.post("", json=s3_export(hogql_query=invalid_query))) == EVENTS_QUERY_REFUSAL


@replays(SOURCE)
def test_create_batch_export_with_hogql_model(posthog: PostHog) -> None:
    data = posthog.create(hogql_export(last_modified_by=9, user_id=9))
    assert (data["model"], data["hogql_query"], data["schema"]) == ("hogql", HOGQL_QUERY, None)
    listed = posthog.get("").json()
    assert [export["hogql_query"] for export in listed["results"]] == [HOGQL_QUERY]


@replays(SOURCE)
@pytest.mark.parametrize(
    "overrides,expected_attr,expected_error_message",
    [
        (
            {"hogql_query": "SELECT event AS event FROM events WHERE event = {unknown_placeholder}"},
            "hogql_query",
            "Unknown placeholder '{unknown_placeholder}'. "
            "Only {data_interval_start} and {data_interval_end} are supported in batch export queries",
        ),
        (
            {"hogql_query": "SELECT event AS event FROM events WHERE {filters}"},
            "hogql_query",
            "Unsupported placeholder. "
            "Only {data_interval_start} and {data_interval_end} are supported in batch export queries",
        ),
        ({"hogql_query": None}, "hogql_query", "'hogql_query' is required when 'model' is 'hogql'"),
        (
            {"hogql_query": "SELECT count() FROM events"},
            "hogql_query",
            "Every column in the SELECT clause must be a field or have an alias (e.g. `count() AS event_count`)",
        ),
        (
            {"filters": [{"key": "$browser", "operator": "exact", "type": "event", "value": ["Firefox"]}]},
            "filters",
            # The test expects "'filters' are not supported when 'model' is 'hogql'"; the newest view answers
            # the attribute rule every model-bound field shares (exports.py,
            # `_validate_attribute_only_supported_for_model`).
            "'filters' is only supported for 'events' not 'hogql' model",
        ),
    ],
    ids=["unknown-placeholder", "filters-placeholder", "missing-hogql-query", "unaliased-column", "filters"],
)
def test_create_batch_export_with_hogql_model_fails_with_invalid_request(
    posthog: PostHog, overrides: dict[str, Any], expected_attr: str, expected_error_message: str
) -> None:
    response = posthog.post("", json={**hogql_export(), **overrides})
    assert refused(response).startswith(expected_error_message)
    assert response.json()["attr"] == expected_attr
    assert posthog.get("").json()["count"] == 0


@replays(SOURCE)
@pytest.mark.parametrize(
    "type_,config,expected_error_message",
    [
        (
            "Snowflake",
            {"database": "my-db", "warehouse": "COMPUTE_WH", "schema": "public", "table_name": 2},
            "invalid type: got 'int', expected 'str'",
        ),
        (
            "AwsS3",
            {"bucket_name": "my-s3-bucket", "region": "us-east-1", "prefix": "p/", "hello": 123, "hello2": 123},
            "unknown field/s: 'hello', 'hello2'",
        ),
        (
            "Postgres",
            {"user": "test", "password": "password", "host": "localhost", "database": "db", "schema": None},
            "invalid type: got 'NoneType', expected 'str'",
        ),
        (
            "BigQuery",
            {"project_id": "test", "private_key": "k", "private_key_id": "i", "token_uri": "t", "client_email": "e"},
            "missing required field: 'dataset_id'",
        ),
    ],
)
def test_create_batch_export_with_invalid_config(
    posthog: PostHog, type_: str, config: dict[str, Any], expected_error_message: str
) -> None:
    response = posthog.post("", json=export_with({"type": type_, "config": config}, name="destination"))
    assert expected_error_message in refused(response)


@replays(SOURCE)
@pytest.mark.parametrize(
    "filters,expected_status,expected_error",
    [
        ({"filters": {"filter_something": 123}}, 400, "should be an array"),
        (None, 201, None),
        ([], 201, None),
        ([{"data_interval_start": "2025-01-01"}], 400, "not 'filters'. Trigger a backfill"),
        (["$pageview"], 400, "must be an object"),
        ([{"key": "$browser", "operator": "exact"}], 400, "must have a 'type'"),
        ([{"key": "$browser", "operator": "exact", "type": "event", "value": ["Firefox"]}], 201, None),
    ],
)
def test_creating_batch_export_with_filters(
    posthog: PostHog, filters: Any, expected_status: int, expected_error: str | None
) -> None:
    body = export_with(
        {"type": "AwsS3", "integration": AWS_S3, "config": {"bucket_name": "b", "region": "us-east-1", "prefix": "p/"}},
        model="events",
        filters=filters,
    )
    response = posthog.post("", json=body)
    assert response.status_code == expected_status, response.text
    if expected_error:
        assert expected_error in response.json()["detail"]
