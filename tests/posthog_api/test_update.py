"""Replay of products/batch_exports/backend/tests/api/test_update.py (PostHog).

The test file creates AwsS3 exports with inline AWS keys, which the newest code refuses (the S3 family takes
its credentials from an integration only); every export here is created through the aws-s3 integration.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import PostHog
from .replay import DATABRICKS, DATABRICKS_2, GOOGLE, refused, replays, s3_export

SOURCE = "test_update.py"
DATABRICKS_CONFIG = {"http_path": "my-http-path", "catalog": "my-catalog", "schema": "my-schema", "table_name": "t"}


@replays(SOURCE)
def test_can_put_config(posthog: PostHog) -> None:
    export = posthog.create(s3_export(start_at="2023-07-19T00:00:00+00:00", end_at="2023-07-20T00:00:00+00:00"))
    refused(posthog.put(f"{export['id']}/", json={"name": "my-production-s3-bucket-destination", "interval": "hour"}))
    body = s3_export("day", start_at="2022-07-19 00:00:00")
    body["destination"]["config"]["bucket_name"] = "my-new-production-s3-bucket"
    assert posthog.put(f"{export['id']}/", json=body).status_code == 200
    data = posthog.export(export["id"])
    assert (data["interval"], data["timezone"], data["offset_day"], data["offset_hour"]) == ("day", "UTC", None, 0)
    assert (data["start_at"], data["end_at"]) == ("2022-07-19T00:00:00Z", "2023-07-20T00:00:00Z")
    assert data["destination"]["config"]["bucket_name"] == "my-new-production-s3-bucket"


@replays(SOURCE)
@pytest.mark.parametrize("interval", ["hour", "day"])
def test_can_patch_config(posthog: PostHog, interval: str) -> None:
    offset_hour = None if interval == "hour" else 1
    body = s3_export(interval, timezone="Europe/Berlin")
    if offset_hour is not None:
        body["offset_hour"] = offset_hour
    export = posthog.create(body)
    patch = {
        "name": "my-production-s3-bucket-destination",
        "destination": {
            "type": "AwsS3",
            "config": {
                "bucket_name": "my-new-production-s3-bucket",
                "region": "us-east-1",
                "prefix": "posthog-events/",
            },
        },
    }
    response = posthog.patch(f"{export['id']}/", json=patch)
    assert response.status_code == 200, response.text
    data = posthog.export(export["id"])
    assert (data["interval"], data["timezone"]) == (interval, "Europe/Berlin")
    assert (data["offset_hour"], data["offset_day"]) == (offset_hour, None)
    assert data["destination"]["config"]["bucket_name"] == "my-new-production-s3-bucket"


@replays(SOURCE)
@pytest.mark.parametrize(
    "initial_state,patch_data,expected_state,expected_error",
    [
        pytest.param(
            {"interval": "hour", "timezone": "UTC", "offset_day": None, "offset_hour": None},
            {"interval": "week", "timezone": "UTC", "offset_day": 0, "offset_hour": 0},
            {"interval": "week", "timezone": "UTC", "offset_day": 0, "offset_hour": 0},
            None,
            id="Changing from hourly to weekly",
        ),
        pytest.param(
            {"interval": "hour", "timezone": None, "offset_day": None, "offset_hour": None},
            {"interval": "week"},
            {"interval": "week", "timezone": "UTC", "offset_day": 0, "offset_hour": 0},
            None,
            id="Changing from hourly to weekly (timezone and offset are not provided in update)",
        ),
        pytest.param(
            {"interval": "day", "timezone": "Europe/Berlin", "offset_day": None, "offset_hour": 1},
            {"interval": "hour"},
            {"interval": "hour", "timezone": "Europe/Berlin", "offset_day": None, "offset_hour": None},
            None,
            id="Changing from daily to hourly (timezone and offset are not provided in update)",
        ),
        pytest.param(
            {"interval": "day", "timezone": "Europe/Berlin", "offset_day": None, "offset_hour": 1},
            {"interval": "day", "timezone": None, "offset_day": None, "offset_hour": None},
            {"interval": "day", "timezone": "UTC", "offset_day": None, "offset_hour": 0},
            None,
            id="Resetting timezone and offset to default values",
        ),
        pytest.param(
            {"interval": "day", "timezone": "Europe/Berlin", "offset_day": None, "offset_hour": 1},
            {"interval": None, "timezone": None, "offset_day": None, "offset_hour": None},
            None,
            "This field may not be null.",
            id="Interval is None in update data",
        ),
        pytest.param(
            {"interval": "hour", "timezone": None, "offset_day": None, "offset_hour": None},
            {"interval": "day", "timezone": "US/Pacific", "offset_hour": 2},
            {"interval": "day", "timezone": "US/Pacific", "offset_day": None, "offset_hour": 2},
            None,
            id="Changing from hourly to daily and updating timezone and offset",
        ),
        pytest.param(
            {"interval": "hour", "timezone": "UTC", "offset_day": None, "offset_hour": None},
            {"interval": "day", "timezone": "US/Pacific", "offset_hour": 24},
            None,
            "Ensure this value is less than or equal to 23.",
            id="24 hour offset is invalid for a daily export",
        ),
        pytest.param(
            {"interval": "day", "timezone": "US/Pacific", "offset_day": None, "offset_hour": None},
            {"interval": "week", "timezone": "UTC", "offset_day": 7, "offset_hour": 0},
            None,
            "Ensure this value is less than or equal to 6.",
            id="7 day offset is invalid for a weekly export",
        ),
        pytest.param(
            {"interval": "week", "timezone": "UTC", "offset_day": None, "offset_hour": None},
            {"interval": "hour", "timezone": "Europe/Berlin", "offset_hour": 1},
            None,
            "offset_hour is not applicable for non-daily/weekly intervals",
            id="offset_hour on an hourly export",
        ),
    ],
)
def test_can_patch_schedule_configuration(
    posthog: PostHog,
    initial_state: dict[str, Any],
    patch_data: dict[str, Any],
    expected_state: dict[str, Any] | None,
    expected_error: str | None,
) -> None:
    export = posthog.create(s3_export(**initial_state))
    response = posthog.patch(f"{export['id']}/", json=patch_data)
    if expected_error:
        assert expected_error in refused(response)
        return
    assert response.status_code == 200, response.text
    data = posthog.export(export["id"])
    assert {key: data[key] for key in ("interval", "timezone", "offset_day", "offset_hour")} == expected_state


@replays(SOURCE)
def test_patch_rejects_destination_type_change(posthog: PostHog) -> None:
    export = posthog.create(s3_export())
    patch = {
        "destination": {"type": "BigQuery", "integration_id": GOOGLE, "config": {"table_id": "t", "dataset_id": "t"}}
    }
    assert "Cannot change destination type" in refused(posthog.patch(f"{export['id']}/", json=patch))
    refreshed = posthog.export(export["id"])
    assert refreshed["destination"]["type"] == "AwsS3"
    assert refreshed["destination"]["config"]["bucket_name"] == "my-production-s3-bucket"


@replays(SOURCE)
def test_put_rejects_destination_type_change(posthog: PostHog) -> None:
    export = posthog.create(s3_export())
    body = {
        "name": "my-production-s3-bucket-destination",
        "destination": {"type": "BigQuery", "config": {"table_id": "t", "dataset_id": "t", "project_id": "t"}},
        "interval": "hour",
    }
    assert "Cannot change destination type" in refused(posthog.put(f"{export['id']}/", json=body))
    assert posthog.export(export["id"])["destination"]["type"] == "AwsS3"


@replays(SOURCE)
def test_can_patch_hogql_query(posthog: PostHog) -> None:
    """Newest code: an events-model export of a project that is not grandfathered takes no HogQL query, on
    update as on create (exports.py, `BatchExportSerializer.validate`); the export is left as it was."""
    export = posthog.create(s3_export())
    patch = {"hogql_query": "select toString(uuid) as uuid, 'test' as test, toInt(1+1) as n from events"}
    response = posthog.patch(f"{export['id']}/", json=patch)
    assert refused(response) == "'hogql_query' is only supported for 'hogql' not 'events' model"
    assert posthog.export(export["id"])["schema"] is None


@replays(SOURCE)
def test_patch_returns_error_on_unsupported_hogql_query(posthog: PostHog) -> None:
    export = posthog.create(s3_export(start_at="2023-07-19 00:00:00", end_at="2023-07-20 00:00:00"))
    body = {"name": "my-production-s3-bucket-destination", "hogql_query": "select toInt32(1+1) as n from events"}
    refused(posthog.put(f"{export['id']}/", json=body))


@replays(SOURCE)
def test_can_update_batch_export_with_integration(posthog: PostHog) -> None:
    destination = {"type": "Databricks", "integration": DATABRICKS, "config": DATABRICKS_CONFIG}
    export = posthog.create({"name": "my-databricks-destination", "destination": destination, "interval": "hour"})
    patch = {"destination": {"type": "Databricks", "integration": DATABRICKS_2, "config": DATABRICKS_CONFIG}}
    assert posthog.patch(f"{export['id']}/", json=patch).status_code == 200
    data = posthog.export(export["id"])
    assert (data["interval"], data["destination"]["integration"]) == ("hour", DATABRICKS_2)
    assert data["destination"]["config"] == DATABRICKS_CONFIG


@replays(SOURCE)
def test_can_update_batch_export_with_integration_to_none(posthog: PostHog) -> None:
    destination = {"type": "Databricks", "integration": DATABRICKS, "config": DATABRICKS_CONFIG}
    export = posthog.create({"name": "my-databricks-destination", "destination": destination, "interval": "hour"})
    patch = {"destination": {"type": "Databricks", "integration": None, "config": DATABRICKS_CONFIG}}
    assert "Integration is required for Databricks batch exports" in refused(
        posthog.patch(f"{export['id']}/", json=patch)
    )
