"""Replays of PostHog's per-destination update tests (products/batch_exports/backend/tests/api/
test_update_s3.py, test_update_redshift.py, test_update_snowflake.py, test_update_postgres.py)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import PostHog
from .replay import AWS_S3, AWS_S3_2, S3_COMPATIBLE, SNOWFLAKE, export_with, redshift_copy, refused, replays

CREDENTIALS = {"aws_access_key_id": "abc123", "aws_secret_access_key": "secret"}
STAGING = {"s3_bucket": "my-production-s3-bucket", "region_name": "us-east-1", "s3_key_prefix": "posthog-events/"}
S3_INTEGRATION = {"AwsS3": AWS_S3, "S3Compatible": S3_COMPATIBLE}


def s3_family_export(posthog: PostHog, destination_type: str, **config: Any) -> dict[str, Any]:
    destination = {
        "type": destination_type,
        "config": {"bucket_name": "my-bucket", "region": "us-east-1", "prefix": "events/", **config},
        "integration": S3_INTEGRATION[destination_type],
    }
    return posthog.create(export_with(destination, name="my-export"))


# ------------------------------------------------------------------------------------------ S3 family


@replays("test_update_s3.py")
@pytest.mark.parametrize("destination_type", ["AwsS3", "S3Compatible"])
@pytest.mark.parametrize("integration_value", [None, "omitted"])
def test_updating_s3_family_batch_export_requires_an_integration(
    posthog: PostHog, destination_type: str, integration_value: str | None
) -> None:
    export = s3_family_export(posthog, destination_type)
    destination: dict[str, Any] = {"type": destination_type, "config": {"prefix": "new-prefix/"}}
    if integration_value is None:
        destination["integration"] = None
    response = posthog.patch(f"{export['id']}/", json={"destination": destination})
    if integration_value is None:
        assert refused(response) == f"Integration is required for {destination_type} batch exports"
    else:
        assert response.status_code == 200, response.text
        assert response.json()["destination"]["integration"] == S3_INTEGRATION[destination_type]


@replays("test_update_s3.py")
@pytest.mark.parametrize("destination_type", ["AwsS3", "S3Compatible"])
def test_updating_integration_backed_s3_export_allows_config_patch_with_integration(
    posthog: PostHog, destination_type: str
) -> None:
    export = s3_family_export(posthog, destination_type)
    integration = S3_INTEGRATION[destination_type]
    patch = {"destination": {"type": destination_type, "config": {"prefix": "new-prefix/"}, "integration": integration}}
    response = posthog.patch(f"{export['id']}/", json=patch)
    assert response.status_code == 200, response.text
    assert response.json()["destination"]["config"]["prefix"] == "new-prefix/"
    assert response.json()["destination"]["integration"] == integration


@replays("test_update_s3.py")
def test_updating_s3_family_batch_export_rejects_turning_legacy_naming_back_on(posthog: PostHog) -> None:
    """The test writes `legacy_parquet_extension: false` into a Parquet/zstd export's stored config with the
    ORM; a new export created with that format stores exactly that, so the replay creates it."""
    export = s3_family_export(posthog, "AwsS3", file_format="Parquet", compression="zstd")
    assert export["destination"]["config"]["legacy_parquet_extension"] is False
    patch = {"destination": {"type": "AwsS3", "config": {"legacy_parquet_extension": True}}}
    assert "legacy_parquet_extension" in refused(posthog.patch(f"{export['id']}/", json=patch))


# ------------------------------------------------------------------------------------------ Redshift


@replays("test_update_redshift.py")
def test_can_patch_redshift_batch_export(posthog: PostHog) -> None:
    export = posthog.create(redshift_copy({**STAGING, "bucket_credentials": CREDENTIALS, "authorization": CREDENTIALS}))
    patch = {
        "destination": {"type": "Redshift", "config": {"copy_inputs": {"s3_bucket": "my-new-production-s3-bucket"}}}
    }
    # Newest code: the export uses an integration, so the destination is sent with it (a Redshift export's
    # integration is sticky, exports.py `validate_destination`).
    patch["destination"]["integration"] = export["destination"]["integration"]
    assert posthog.patch(f"{export['id']}/", json=patch).status_code == 200
    data = posthog.export(export["id"])
    assert data["destination"]["type"] == "Redshift"
    assert data["destination"]["config"]["copy_inputs"]["s3_bucket"] == "my-new-production-s3-bucket"


@replays("test_update_redshift.py")
def test_can_patch_redshift_batch_export_switching_authorization_to_credentials(posthog: PostHog) -> None:
    role = "arn:aws:iam::123456789012:role/my-role"
    export = posthog.create(redshift_copy({**STAGING, "bucket_credentials": CREDENTIALS, "authorization": role}))
    new = {"aws_access_key_id": "new-key", "aws_secret_access_key": "new-secret"}
    patch = {
        "destination": {
            "type": "Redshift",
            "config": {"copy_inputs": {"authorization": new}},
            "integration": export["destination"]["integration"],
        }
    }
    response = posthog.patch(f"{export['id']}/", json=patch)
    assert response.status_code == 200, response.text
    assert posthog.export(export["id"])["destination"]["config"]["copy_inputs"]["s3_bucket"] == STAGING["s3_bucket"]


@replays("test_update_redshift.py")
@pytest.mark.parametrize("field_name", ["authorization", "bucket_credentials"])
def test_patching_redshift_batch_export_rejects_switching_copy_integration_to_inline(
    posthog: PostHog, field_name: str
) -> None:
    export = posthog.create(redshift_copy({**STAGING, "bucket_credentials": AWS_S3, "authorization": AWS_S3}))
    patch = {
        "destination": {
            "type": "Redshift",
            "config": {"copy_inputs": {field_name: CREDENTIALS}},
            "integration": export["destination"]["integration"],
        }
    }
    response = posthog.patch(f"{export['id']}/", json=patch)
    assert f"Cannot switch '{field_name}' from an integration to inline credentials" in refused(response)


@replays("test_update_redshift.py")
def test_can_patch_redshift_batch_export_swapping_copy_integration(posthog: PostHog) -> None:
    export = posthog.create(redshift_copy({**STAGING, "bucket_credentials": AWS_S3, "authorization": AWS_S3}))
    patch = {
        "destination": {
            "type": "Redshift",
            "config": {"copy_inputs": {"bucket_credentials": AWS_S3_2, "authorization": AWS_S3_2}},
            "integration": export["destination"]["integration"],
        }
    }
    assert posthog.patch(f"{export['id']}/", json=patch).status_code == 200
    copy_inputs = posthog.export(export["id"])["destination"]["config"]["copy_inputs"]
    assert (copy_inputs["bucket_credentials"], copy_inputs["authorization"]) == (AWS_S3_2, AWS_S3_2)


# ------------------------------------------------------------------------------------------ Snowflake


def snowflake_export(posthog: PostHog) -> dict[str, Any]:
    """`create_integration_backed_snowflake_export`."""
    destination = {
        "type": "Snowflake",
        "config": {"database": "my-db", "warehouse": "COMPUTE_WH", "schema": "public"},
        "integration": SNOWFLAKE,
    }
    return posthog.create(export_with(destination, name="my-export"))


@replays("test_update_snowflake.py")
@pytest.mark.parametrize("integration_value", [None, "omitted"])
def test_updating_snowflake_batch_export_rejects_removing_integration(
    posthog: PostHog, integration_value: str | None
) -> None:
    """The test expects "Cannot remove the integration from a Snowflake batch export ..." for both. The newest
    view falls back to the stored integration when the key is omitted and refuses an explicit null as a missing
    integration (exports.py, `validate_destination`, Snowflake branch)."""
    export = snowflake_export(posthog)
    destination: dict[str, Any] = {"type": "Snowflake", "config": {}}
    if integration_value is None:
        destination["integration"] = None
    response = posthog.patch(f"{export['id']}/", json={"destination": destination})
    if integration_value is None:
        assert refused(response) == "Integration is required for Snowflake batch exports"
    else:
        assert response.status_code == 200, response.text
        assert response.json()["destination"]["integration"] == SNOWFLAKE


@replays("test_update_snowflake.py")
def test_updating_integration_backed_snowflake_export_allows_config_patch_with_integration(posthog: PostHog) -> None:
    export = snowflake_export(posthog)
    patch = {"destination": {"type": "Snowflake", "config": {"schema": "new_schema"}, "integration": SNOWFLAKE}}
    response = posthog.patch(f"{export['id']}/", json=patch)
    assert response.status_code == 200, response.text
    assert response.json()["destination"]["config"]["schema"] == "new_schema"
    assert response.json()["destination"]["integration"] == SNOWFLAKE


# ------------------------------------------------------------------------------------------ Postgres


@replays("test_update_postgres.py")
def test_updating_connection_backed_postgres_export_allows_other_config(posthog: PostHog) -> None:
    destination = {
        "type": "Postgres",
        "config": {"database": "my-db", "schema": "public", "table_name": "my_events"},
        "integration": 103,
    }
    export = posthog.create(export_with(destination, name="my-postgres-destination"))
    patch = {"destination": {"type": "Postgres", "config": {"table_name": "other_events"}}}
    response = posthog.patch(f"{export['id']}/", json=patch)
    assert response.status_code == 200, response.text
    assert response.json()["destination"]["config"]["table_name"] == "other_events"
