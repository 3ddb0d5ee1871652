"""Replay of products/batch_exports/backend/tests/api/test_create_s3.py (PostHog)."""

from __future__ import annotations

from typing import Any

import pytest

from .conftest import PostHog
from .replay import AWS_S3, S3_COMPATIBLE, export_with, refused, replays

SOURCE = "test_create_s3.py"
BASE = {"bucket_name": "my-bucket", "region": "us-east-1", "prefix": "events/"}
INTEGRATION = {"AwsS3": AWS_S3, "S3Compatible": S3_COMPATIBLE}
DEPRECATED = (
    "The 'S3' destination type is deprecated and can no longer be used. "
    "Use 'AwsS3' for AWS S3, or 'S3Compatible' for S3-compatible storage."
)


def s3_family(destination_type: str, integration: int | None = None, **config: Any) -> dict[str, Any]:
    destination: dict[str, Any] = {"type": destination_type, "config": {**BASE, **config}}
    if integration is not None:
        destination["integration"] = integration
    return export_with(destination, name="my-export")


@replays(SOURCE)
@pytest.mark.parametrize(
    "destination_type,extra_config",
    [("AwsS3", {"encryption": "AES256"}), ("S3Compatible", {"use_virtual_style_addressing": True})],
)
def test_create_s3_family_batch_export(posthog: PostHog, destination_type: str, extra_config: dict[str, Any]) -> None:
    data = posthog.create(s3_family(destination_type, INTEGRATION[destination_type], **extra_config))
    assert data["destination"]["type"] == destination_type
    assert data["destination"]["config"]["legacy_parquet_extension"] is False


@replays(SOURCE)
@pytest.mark.parametrize("destination_type", ["AwsS3", "S3", "S3Compatible"])
def test_create_s3_family_batch_export_requires_an_integration(posthog: PostHog, destination_type: str) -> None:
    """`S3` is one of the family in the model, but the newest code refuses it as deprecated before the
    integration rule (the same file's `test_create_legacy_s3_type_is_rejected` asserts that)."""
    expected = (
        DEPRECATED if destination_type == "S3" else f"Integration is required for {destination_type} batch exports"
    )
    assert refused(posthog.post("", json=s3_family(destination_type))) == expected


@replays(SOURCE)
def test_create_legacy_s3_type_is_rejected(posthog: PostHog) -> None:
    response = posthog.post("", json=s3_family("S3"))
    assert refused(response) == DEPRECATED
    assert response.json()["attr"] == "destination"


@replays(SOURCE)
@pytest.mark.parametrize("destination_type", ["AwsS3", "S3Compatible"])
def test_create_s3_family_batch_export_validates_empty_inputs(posthog: PostHog, destination_type: str) -> None:
    body = s3_family(destination_type, INTEGRATION[destination_type], bucket_name="", region="")
    assert refused(posthog.post("", json=body)) == "The following inputs are empty: ['bucket_name', 'region']"


@replays(SOURCE)
@pytest.mark.parametrize(
    "destination_type,extra_config,offending_field",
    [
        ("AwsS3", {"aws_access_key_id": "belongs-in-the-integration"}, "aws_access_key_id"),
        ("AwsS3", {"aws_secret_access_key": "belongs-in-the-integration"}, "aws_secret_access_key"),
        ("S3Compatible", {"aws_access_key_id": "belongs-in-the-integration"}, "aws_access_key_id"),
        ("S3Compatible", {"aws_secret_access_key": "belongs-in-the-integration"}, "aws_secret_access_key"),
        ("S3Compatible", {"endpoint_url": "https://localhost:9000"}, "endpoint_url"),
        ("AwsS3", {"endpoint_url": "https://localhost:9000"}, "endpoint_url"),
        ("AwsS3", {"use_virtual_style_addressing": True}, "use_virtual_style_addressing"),
        ("S3Compatible", {"kms_key_id": "alias/test"}, "kms_key_id"),
        ("S3Compatible", {"encryption": "aws:kms"}, "encryption"),
    ],
)
def test_create_s3_family_batch_export_rejects_inapplicable_fields(
    posthog: PostHog, destination_type: str, extra_config: dict[str, Any], offending_field: str
) -> None:
    assert offending_field in refused(posthog.post("", json=s3_family(destination_type, **extra_config)))


@replays(SOURCE)
@pytest.mark.parametrize(
    "file_format,compression,expected_error_message",
    [
        ("JSONLines", None, None),
        ("JSONLines", "gzip", None),
        (
            "JSONLines",
            "zstd",
            "Compression zstd is not supported for file format JSONLines. Supported compressions are ['gzip', 'brotli']",
        ),
        ("Parquet", None, None),
        ("Parquet", "gzip", None),
        ("Parquet", "brotli", None),
        ("Parquet", "zstd", None),
        (
            "Parquet",
            "unknown",
            "Compression unknown is not supported for file format Parquet. "
            "Supported compressions are ['zstd', 'lz4', 'snappy', 'gzip', 'brotli']",
        ),
        (
            "unknown",
            "gzip",
            "File format unknown is not supported. Supported file formats are ['Parquet', 'JSONLines']",
        ),
    ],
)
def test_create_s3_batch_export_validates_file_format_and_compression(
    posthog: PostHog, file_format: str, compression: str | None, expected_error_message: str | None
) -> None:
    body = s3_family("AwsS3", AWS_S3, file_format=file_format, compression=compression)
    response = posthog.post("", json=body)
    if expected_error_message is None:
        assert response.status_code == 201, response.text
    else:
        assert refused(response) == expected_error_message


@replays(SOURCE)
@pytest.mark.parametrize("destination_type", ["AwsS3", "S3Compatible"])
def test_create_s3_family_batch_export_using_integration(posthog: PostHog, destination_type: str) -> None:
    data = posthog.create(s3_family(destination_type, INTEGRATION[destination_type]))
    assert data["destination"]["type"] == destination_type
    assert "aws_access_key_id" not in data["destination"]["config"]
    assert "aws_secret_access_key" not in data["destination"]["config"]


@replays(SOURCE)
@pytest.mark.parametrize("destination_type,integration", [("AwsS3", S3_COMPATIBLE), ("S3Compatible", AWS_S3)])
def test_create_s3_family_batch_export_rejects_mismatched_integration_kind(
    posthog: PostHog, destination_type: str, integration: int
) -> None:
    refused(posthog.post("", json=s3_family(destination_type, integration)))


@replays(SOURCE)
def test_create_s3_family_batch_export_rejects_an_explicit_legacy_parquet_extension(posthog: PostHog) -> None:
    body = s3_family("AwsS3", AWS_S3, file_format="Parquet", compression="zstd", legacy_parquet_extension=True)
    assert "legacy_parquet_extension" in refused(posthog.post("", json=body))
