"""Replay of products/batch_exports/backend/tests/api/test_create_redshift.py (PostHog).

PostHog's COPY cases create an export with inline credentials and `localhost`: the newest code requires an
integration on create and refuses an internal host, so every body here goes through the aws-redshift
integration to a public host (`replay.redshift_copy`) and keeps the COPY inputs the test is about.
"""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import PostHog
from .replay import AWS_REDSHIFT, AWS_S3, OTHER_PROJECT_AWS_S3, export_with, redshift_copy, refused, replays

SOURCE = "test_create_redshift.py"
CREDENTIALS = {"aws_access_key_id": "abc123", "aws_secret_access_key": "secret"}
STAGING = {"s3_bucket": "my-production-s3-bucket", "region_name": "us-east-1", "s3_key_prefix": "posthog-events/"}


@replays(SOURCE)
@pytest.mark.parametrize(
    "mode,copy_inputs,expected_status",
    [
        ("INSERT", {}, 201),
        ("INSERT", None, 201),
        ("COPY", {**STAGING, "bucket_credentials": CREDENTIALS, "authorization": "default"}, 201),
        ("COPY", {**STAGING, "bucket_credentials": CREDENTIALS, "authorization": CREDENTIALS}, 201),
        ("COPY", {"region_name": "us-east-1", "bucket_credentials": CREDENTIALS, "authorization": "default"}, 400),
        ("COPY", {"s3_bucket": "b", "bucket_credentials": CREDENTIALS, "authorization": "default"}, 400),
        ("COPY", {**STAGING, "bucket_credentials": {"aws_access_key_id": "abc123"}, "authorization": "default"}, 400),
        ("COPY", {**STAGING, "bucket_credentials": {}, "authorization": "default"}, 400),
        ("COPY", {**STAGING, "bucket_credentials": CREDENTIALS, "authorization": {}}, 400),
        ("COPY", {**STAGING, "bucket_credentials": CREDENTIALS, "authorization": ""}, 400),
    ],
    ids=[
        "insert-empty",
        "insert-null",
        "copy-role",
        "copy-credentials",
        "no-s3-bucket",
        "no-region",
        "half-bucket-credentials",
        "empty-bucket-credentials",
        "empty-authorization",
        "blank-role",
    ],
)
def test_create_redshift_batch_export_validates_copy_inputs(
    posthog: PostHog, mode: str, copy_inputs: Any, expected_status: int
) -> None:
    response = posthog.post("", json=redshift_copy(copy_inputs, mode=mode))
    assert response.status_code == expected_status, response.text
    if expected_status == 400:
        assert "Missing required" in response.json()["detail"]


@replays(SOURCE)
@pytest.mark.parametrize("authorization", [["arn:aws:iam::123456789012:role/my-role"], True, 1.5])
def test_create_redshift_batch_export_rejects_invalid_authorization_type(posthog: PostHog, authorization: Any) -> None:
    body = redshift_copy({**STAGING, "bucket_credentials": CREDENTIALS, "authorization": authorization})
    assert "Authorization for 'COPY'" in refused(posthog.post("", json=body))


@replays(SOURCE)
def test_create_redshift_batch_export_with_aws_integration(posthog: PostHog) -> None:
    destination = {"type": "Redshift", "config": {"database": "my-db", "host": "8.8.8.8"}, "integration": AWS_REDSHIFT}
    posthog.create(export_with(destination))


@replays(SOURCE)
@pytest.mark.parametrize(
    "failure,expected_error",
    [
        ("wrong_kind", "not a Redshift integration"),
        ("aws_integration_without_host", "host"),
        # The test expects "missing required field"; the newest code's only required key is `database`, which is
        # sent, so the create is refused for the missing integration instead.
        ("no_integration_no_credentials", "Integration is required for Redshift batch exports"),
    ],
)
def test_create_redshift_batch_export_validates_integration(
    posthog: PostHog, failure: str, expected_error: str
) -> None:
    destination: dict[str, Any] = {"type": "Redshift", "config": {"database": "my-db"}}
    if failure == "wrong_kind":
        destination["integration"] = AWS_S3
    elif failure == "aws_integration_without_host":
        destination["integration"] = AWS_REDSHIFT
    assert expected_error in refused(posthog.post("", json=export_with(destination)))


@replays(SOURCE)
@pytest.mark.parametrize(
    "copy_credential_source,integration_id,expected_status",
    [
        ("own_integration", AWS_S3, 201),
        ("other_team_integration", OTHER_PROJECT_AWS_S3, 400),
        ("wrong_kind_integration", AWS_REDSHIFT, 400),
        ("nonexistent_integration", 999999, 400),
    ],
)
def test_create_redshift_batch_export_validates_copy_integration_ids(
    posthog: PostHog, copy_credential_source: str, integration_id: int, expected_status: int
) -> None:
    body = redshift_copy({**STAGING, "bucket_credentials": integration_id, "authorization": integration_id})
    response = posthog.post("", json=body)
    assert response.status_code == expected_status, response.text
    if expected_status == 400:
        assert (
            response.json()["detail"]
            == "'bucket_credentials' does not reference an AWS S3 integration of this project."
        )
