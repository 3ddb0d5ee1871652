"""Replay of products/batch_exports/backend/tests/api/test_create_redshift_integration.py (PostHog).

The test's integration is of kind `redshift`; the newest view takes only `aws-redshift` for Redshift
(exports.py, `validate_destination`), so the replay uses the sandbox's aws-redshift integration, whose host
stays in the export's config.
"""

from __future__ import annotations

import pytest

from .conftest import PostHog
from .replay import AWS_REDSHIFT, AWS_S3, export_with, refused, replays

SOURCE = "test_create_redshift_integration.py"
CONFIG = {"database": "analytics", "port": 5439, "schema": "public", "table_name": "events", "mode": "INSERT"}
UNREACHABLE = "Could not reach this host. Check that the hostname is correct and reachable from the internet."


@replays(SOURCE)
def test_creating_redshift_batch_export_using_integration(posthog: PostHog) -> None:
    destination = {"type": "Redshift", "config": {**CONFIG, "host": "8.8.8.8"}, "integration": AWS_REDSHIFT}
    data = posthog.create(export_with(destination, name="my-redshift-destination"))
    assert data["destination"]["integration"] == AWS_REDSHIFT
    assert "password" not in data["destination"]["config"]
    assert data["destination"]["config"]["host"] == "8.8.8.8"


@replays(SOURCE)
def test_creating_redshift_batch_export_without_integration_is_rejected(posthog: PostHog) -> None:
    config = {**CONFIG, "user": "user", "password": "my-password", "host": "8.8.8.8"}
    response = posthog.post("", json=export_with({"type": "Redshift", "config": config}))
    assert "Integration is required for Redshift batch exports" in refused(response)


@replays(SOURCE)
def test_creating_redshift_batch_export_rejects_mismatched_integration_kind(posthog: PostHog) -> None:
    response = posthog.post("", json=export_with({"type": "Redshift", "config": CONFIG, "integration": AWS_S3}))
    assert refused(response) == "Integration is not a Redshift integration."


@replays(SOURCE)
@pytest.mark.parametrize("host", ["169.254.169.254", "127.0.0.1", "10.0.0.1", "192.168.1.1"])
def test_creating_redshift_batch_export_validates_destination_host(posthog: PostHog, host: str) -> None:
    """The test expects "Invalid host: '<host>'"; the newest view answers a host it must not reach with
    posthog/security/url_validation.py's UNREACHABLE_HOST_MESSAGE, which names no host."""
    destination = {"type": "Redshift", "config": {**CONFIG, "host": host}, "integration": AWS_REDSHIFT}
    response = posthog.post("", json=export_with(destination))
    assert refused(response) == UNREACHABLE
    assert response.json()["attr"] == "destination"
