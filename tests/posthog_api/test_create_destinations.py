"""Replays of PostHog's per-destination create tests for Postgres, Snowflake, Databricks, Azure Blob, HTTP and
Workflows (products/batch_exports/backend/tests/api/test_create_<destination>.py), one source file each."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import PostHog
from .replay import AWS_S3, AZURE_BLOB, DATABRICKS, POSTGRESQL, SNOWFLAKE, export_with, refused, replays

DATABRICKS_CONFIG = {"http_path": "my-http-path", "catalog": "my-catalog", "schema": "my-schema", "table_name": "t"}


# ------------------------------------------------------------------------------------------ Postgres


@replays("test_create_postgres.py")
def test_creating_postgres_batch_export_using_integration(posthog: PostHog) -> None:
    destination = {
        "type": "Postgres",
        "config": {"database": "my-db", "schema": "public", "table_name": "my_events"},
        "integration": POSTGRESQL,
    }
    data = posthog.create(export_with(destination, name="my-postgres-destination"))
    assert data["destination"]["integration"] == POSTGRESQL


@replays("test_create_postgres.py")
def test_creating_postgres_batch_export_without_integration_is_rejected(posthog: PostHog) -> None:
    config = {"user": "user", "password": "my-password", "host": "8.8.8.8", "port": 5432, "database": "my-db"}
    response = posthog.post("", json=export_with({"type": "Postgres", "config": config}))
    assert "Integration is required for Postgres batch exports" in refused(response)


# ------------------------------------------------------------------------------------------ Snowflake


@replays("test_create_snowflake.py")
@pytest.mark.parametrize(
    "auth_type,credentials", [("password", {"password": "abc123"}), ("keypair", {"private_key": "SECRET_KEY"})]
)
def test_create_snowflake_batch_export_with_inline_credentials_is_rejected(
    posthog: PostHog, auth_type: str, credentials: dict[str, str]
) -> None:
    """The test sends `account`, `user`, `authentication_type` and the credential inline; the newest typed
    Snowflake config declares none of them (presentation/views/batch_export/destinations.py,
    `SnowflakeDestinationConfigSerializer`: they live in the integration) and the sandbox refuses them as
    unknown fields, so the replay sends the declared fields only: the answer is the missing integration."""
    config = {"database": "my-db", "warehouse": "COMPUTE_WH", "schema": "public", "table_name": "my_events"}
    response = posthog.post("", json=export_with({"type": "Snowflake", "config": config}, name="my-export"))
    assert refused(response) == "Integration is required for Snowflake batch exports"


@replays("test_create_snowflake.py")
def test_create_snowflake_batch_export_using_integration(posthog: PostHog) -> None:
    destination = {
        "type": "Snowflake",
        "config": {"database": "my-db", "warehouse": "COMPUTE_WH", "schema": "public"},
        "integration": SNOWFLAKE,
    }
    data = posthog.create(export_with(destination, name="my-export"))
    assert data["destination"]["type"] == "Snowflake"
    assert "password" not in data["destination"]["config"]


@replays("test_create_snowflake.py")
def test_create_snowflake_batch_export_rejects_mismatched_integration_kind(posthog: PostHog) -> None:
    destination = {
        "type": "Snowflake",
        "config": {"database": "my-db", "warehouse": "COMPUTE_WH", "schema": "public"},
        "integration": AWS_S3,
    }
    assert refused(posthog.post("", json=export_with(destination))) == "Integration is not a Snowflake integration."


# ------------------------------------------------------------------------------------------ Databricks


@replays("test_create_databricks.py")
def test_creating_databricks_batch_export_using_integration(posthog: PostHog) -> None:
    destination = {"type": "Databricks", "config": DATABRICKS_CONFIG, "integration": DATABRICKS}
    data = posthog.create(export_with(destination, name="my-databricks-destination"))
    assert data["destination"] == destination


@replays("test_create_databricks.py")
def test_creating_databricks_batch_export_fails_if_integration_is_missing(posthog: PostHog) -> None:
    response = posthog.post("", json=export_with({"type": "Databricks", "config": DATABRICKS_CONFIG}))
    assert response.status_code == 400
    assert response.json() == {
        "type": "validation_error",
        "code": "invalid_input",
        "detail": "Integration is required for Databricks batch exports",
        "attr": "destination",
    }


@replays("test_create_databricks.py")
def test_creating_databricks_batch_export_fails_if_integration_does_not_exist(posthog: PostHog) -> None:
    destination = {"type": "Databricks", "config": DATABRICKS_CONFIG, "integration": 999}
    response = posthog.post("", json=export_with(destination))
    assert response.status_code == 400
    assert response.json() == {
        "type": "validation_error",
        "code": "does_not_exist",
        "detail": 'Invalid pk "999" - object does not exist.',
        "attr": "destination__integration",
    }


@replays("test_create_databricks.py")
def test_creating_databricks_batch_export_fails_if_integration_is_not_the_correct_type(posthog: PostHog) -> None:
    """The test's integration is a Slack one; any other kind is refused the same way."""
    destination = {"type": "Databricks", "config": DATABRICKS_CONFIG, "integration": AWS_S3}
    assert refused(posthog.post("", json=export_with(destination))) == "Integration is not a Databricks integration."


# ------------------------------------------------------------------------------------------ Azure Blob


@replays("test_create_azure_blob.py")
def test_creating_azure_blob_batch_export_using_integration(posthog: PostHog) -> None:
    destination = {
        "type": "AzureBlob",
        "config": {"container_name": "test-container", "prefix": "test-prefix/"},
        "integration": AZURE_BLOB,
    }
    data = posthog.create(export_with(destination, name="my-azure-blob-destination"))
    config = data["destination"]["config"]
    assert data["destination"]["type"] == "AzureBlob" and data["interval"] == "hour"
    assert (config["container_name"], config["prefix"]) == ("test-container", "test-prefix/")


# ------------------------------------------------------------------------------------------ HTTP


@replays("test_create_http.py")
@pytest.mark.parametrize(
    "model,expected_status,expected_error",
    [("events", 201, None), (None, 201, None), ("persons", 400, "HTTP batch exports only support the events model")],
)
def test_creating_http_batch_export_only_allows_events_model(
    posthog: PostHog, model: str | None, expected_status: int, expected_error: str | None
) -> None:
    destination = {"type": "HTTP", "config": {"url": "https://us.i.posthog.com/batch/", "token": "secret-token"}}
    body: dict[str, Any] = export_with(destination, name="my-http-destination")
    if model is not None:
        body["model"] = model
    response = posthog.post("", json=body)
    assert response.status_code == expected_status, response.text
    if expected_error:
        assert response.json()["detail"] == expected_error


# ------------------------------------------------------------------------------------------ Workflows


@replays("test_create_workflows.py")
def test_creating_workflows_batch_export_fails_if_feature_flag_is_not_enabled(posthog: PostHog) -> None:
    destination = {"type": "Workflows", "config": {"hog_function_id": "aaaa-bbbb-cccc"}, "integration": None}
    response = posthog.post("", json=export_with(destination, interval="day"))
    assert "Backfilling Workflows is not enabled for this team." in refused(response, 403)
