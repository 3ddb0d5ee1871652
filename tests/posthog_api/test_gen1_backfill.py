"""Replay of posthog/api/test/batch_exports/test_backfill.py (PostHog), the first generation's backfill tests,
against a sandbox started with `generation=1`.

Gen-1 validated the range against the project's earliest event; the sandbox's data starts 60 days before NOW
(2026-01-15), which stands in for the events the test writes.
"""

from __future__ import annotations

from typing import Any

from .conftest import PostHog
from .replay import OTHER_ORGANIZATION, OTHER_PROJECT, S3_CONFIG, refused, replays

GENERATION = 1
SOURCE = "gen1/test_backfill.py"
EARLIEST = "2026-01-15T00:00:00+00:00"


def legacy_s3_export(posthog: PostHog, interval: str = "hour") -> str:
    destination = {"type": "S3", "config": {**S3_CONFIG, "aws_access_key_id": "abc123", "aws_secret_access_key": "s"}}
    body = {"name": "my-production-s3-bucket-destination", "destination": destination, "interval": interval}
    return str(posthog.create(body)["id"])


def backfill(posthog: PostHog, export: str, start_at: str, end_at: str, **kw: Any) -> Any:
    """`backfill_batch_export` of Gen-1's operations: POST {id}/backfill/."""
    return posthog.post(f"{export}/backfill/", json={"start_at": start_at, "end_at": end_at}, **kw)


@replays(SOURCE)
def test_batch_export_backfill(posthog: PostHog) -> None:
    export = legacy_s3_export(posthog)
    response = backfill(posthog, export, "2026-02-01T00:00:00+00:00", "2026-02-01T01:00:00+00:00")
    assert response.status_code == 200, response.text


@replays(SOURCE)
def test_batch_export_backfill_with_non_isoformatted_dates(posthog: PostHog) -> None:
    export = legacy_s3_export(posthog)
    refused(backfill(posthog, export, "not a date", "2026-02-01T01:00:00+00:00"))
    refused(backfill(posthog, export, "2026-02-01T01:00:00+00:00", "not a date"))


@replays(SOURCE)
def test_batch_export_backfill_with_end_at_in_the_future(posthog: PostHog) -> None:
    export = legacy_s3_export(posthog)
    assert "is in the future" in refused(
        backfill(posthog, export, "2026-03-16T12:00:00+00:00", "2026-03-16T13:00:01+00:00")
    )


@replays(SOURCE)
def test_batch_export_backfill_with_naive_bounds(posthog: PostHog) -> None:
    export = legacy_s3_export(posthog)
    for _ in range(2):
        assert refused(backfill(posthog, export, "2026-02-01T01:00:00", "2026-02-01T01:00:00")).endswith("is naive.")


@replays(SOURCE)
def test_batch_export_backfill_with_start_at_after_end_at(posthog: PostHog) -> None:
    export = legacy_s3_export(posthog)
    message = "The initial backfill datetime 'start_at' happens after 'end_at'"
    assert refused(backfill(posthog, export, "2026-02-01T01:00:00+00:00", "2026-02-01T01:00:00+00:00")) == message
    assert refused(backfill(posthog, export, "2026-02-01T01:00:00+00:00", "2026-01-20T01:00:00+00:00")) == message


@replays(SOURCE)
def test_cannot_trigger_backfill_for_another_organization(posthog: PostHog) -> None:
    export = legacy_s3_export(posthog)
    refused(
        backfill(posthog, export, "2026-02-01T00:00:00+00:00", "2026-02-01T01:00:00+00:00", project=OTHER_ORGANIZATION),
        403,
    )


@replays(SOURCE)
def test_backfill_is_partitioned_by_team_id(posthog: PostHog) -> None:
    export = legacy_s3_export(posthog)
    refused(
        backfill(posthog, export, "2026-02-01T00:00:00+00:00", "2026-02-01T01:00:00+00:00", project=OTHER_PROJECT), 404
    )


@replays(SOURCE)
def test_batch_export_backfill_created_in_timezone(posthog: PostHog) -> None:
    export = legacy_s3_export(posthog)
    response = backfill(posthog, export, "2026-02-01T00:00:00-05:00", "2026-03-01T00:00:00-04:00")
    assert response.status_code == 200, response.text
    assert response.json()["backfill_id"] == f"{export}-Backfill-2026-02-01T05:00:00+00:00-2026-03-01T04:00:00+00:00"


@replays(SOURCE)
def test_batch_export_backfill_when_start_at_is_before_earliest_backfill_start_at(posthog: PostHog) -> None:
    """The start moves to the earliest data, which the workflow id (Gen-1's `backfill_id`) carries."""
    export = legacy_s3_export(posthog, "day")
    response = backfill(posthog, export, "2026-01-01T00:00:00+00:00", "2026-01-20T00:00:00+00:00")
    assert response.status_code == 200, response.text
    assert response.json()["backfill_id"] == f"{export}-Backfill-{EARLIEST}-2026-01-20T00:00:00+00:00"


@replays(SOURCE)
def test_batch_export_backfill_when_backfill_end_at_is_before_earliest_event(posthog: PostHog) -> None:
    export = legacy_s3_export(posthog, "day")
    response = backfill(posthog, export, "2026-01-01T00:00:00+00:00", "2026-01-02T00:00:00+00:00")
    assert refused(response) == (
        "The provided backfill date range contains no data. The earliest possible backfill start date is 2026-01-15 00:00:00"
    )
