"""What a replay case needs besides the client: the source mark, PostHog's request bodies, assertions.

A replay function carries the name of the PostHog test it replays, and `@replays(FILE)` names the file
(a key of `inventory.SOURCES`); `test_inventory.py` checks every source test is replayed or skipped with a
reason.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import httpx

F = TypeVar("F", bound=Callable[..., Any])

# Integrations every sandbox database has (docs/sandbox.md, "Keys, projects and integrations"); PostHog's
# tests create theirs with the ORM, the sandbox seeds them.
AWS_S3, SNOWFLAKE, POSTGRESQL, GOOGLE, DATABRICKS, AZURE_BLOB, S3_COMPATIBLE, AWS_REDSHIFT = range(101, 109)
AWS_S3_2, DATABRICKS_2 = 109, 110
OTHER_PROJECT_AWS_S3 = 201
OTHER_ORGANIZATION = 3  # a project of another organization: 403
OTHER_PROJECT = 2  # another project of the key's organization: 404 for its exports' ids

S3_CONFIG = {"bucket_name": "my-production-s3-bucket", "region": "us-east-1", "prefix": "posthog-events/"}
UNKNOWN_ID = "00000000-0000-4000-8000-000000000000"


def replays(source: str) -> Callable[[F], F]:
    """Mark a replay function: its name is the source test's, `source` its file in `inventory.SOURCES`."""

    def mark(function: F) -> F:
        function.replays = source  # type: ignore[attr-defined]
        return function

    return mark


def s3_export(interval: str = "hour", **fields: Any) -> dict[str, Any]:
    """The AwsS3 body PostHog's tests create (`s3_batch_export_data`), credentials from the integration."""
    return {
        "name": "my-production-s3-bucket-destination",
        "destination": {"type": "AwsS3", "integration": AWS_S3, "config": dict(S3_CONFIG)},
        "interval": interval,
        **fields,
    }


def export_with(destination: dict[str, Any], interval: str = "hour", **fields: Any) -> dict[str, Any]:
    return {"name": "my-destination", "destination": destination, "interval": interval, **fields}


def redshift_copy(copy_inputs: Any, mode: str = "COPY", **config: Any) -> dict[str, Any]:
    """A Redshift export through its aws-redshift integration. PostHog's COPY tests send inline credentials
    and `localhost`, which the newest code refuses on create (an integration is required, and the host must
    be public), so the replay sends what passes those rules and keeps the COPY inputs under test."""
    return export_with(
        {
            "type": "Redshift",
            "integration": AWS_REDSHIFT,
            "config": {
                "database": "my-db",
                "host": "redshift.example.com",
                "schema": "public",
                "table_name": "my_events",
                "mode": mode,
                "copy_inputs": copy_inputs,
                **config,
            },
        }
    )


def detail(response: httpx.Response) -> str:
    return str(response.json()["detail"])


def refused(response: httpx.Response, status: int = 400) -> str:
    """The detail of a refusal with `status` (the envelope is PostHog's flat one)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"type", "code", "detail", "attr"}, body
    return str(body["detail"])


# A day and an hour of the sandbox's data (it starts 60 days before NOW): PostHog's tests backfill 2021 and
# 2023, which would be moved to the earliest data and leave nothing to run.
RECENT_DAY = {"start_at": "2026-03-01T00:00:00+00:00", "end_at": "2026-03-02T00:00:00+00:00"}
RECENT_HOUR = {"start_at": "2026-03-10T00:00:00+00:00", "end_at": "2026-03-10T01:00:00+00:00"}
