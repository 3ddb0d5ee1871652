"""Replays of PostHog's delete, get, list and pause tests (products/batch_exports/backend/tests/api/
test_delete.py, test_get.py, test_list.py, test_pause.py), one source file each.

Their exports are of the legacy `S3` type with inline keys, which the newest code refuses; the replay
creates the AwsS3 export of `replay.s3_export` instead. "Another organization's user" is the key asking for
a project of another organization (403); "another team" is project 2 of the key's own organization (404).
"""

from __future__ import annotations

import pytest

from .conftest import PostHog
from .replay import OTHER_ORGANIZATION, OTHER_PROJECT, POSTGRESQL, RECENT_DAY, export_with, refused, replays, s3_export

# ------------------------------------------------------------------------------------------ delete


@replays("test_delete.py")
def test_delete_batch_export(posthog: PostHog) -> None:
    export = posthog.create(s3_export())
    response = posthog.delete(f"{export['id']}/")
    assert (response.status_code, response.content) == (204, b"")
    refused(posthog.get(f"{export['id']}/"), 404)


@replays("test_delete.py")
def test_delete_batch_export_cancels_backfills(posthog: PostHog) -> None:
    export = posthog.create(s3_export())
    backfill_id = posthog.post(f"{export['id']}/backfills/", json=RECENT_DAY).json()["backfill_id"]
    posthog.advance(60)  # the workflow has written its row and is running its runs
    assert posthog.get(f"{export['id']}/backfills/{backfill_id}/").json()["status"] == "Running"
    assert posthog.delete(f"{export['id']}/").status_code == 204
    refused(posthog.get(f"{export['id']}/"), 404)
    assert posthog.get(f"{export['id']}/backfills/{backfill_id}/").json()["status"] == "Cancelled"


@replays("test_delete.py")
def test_cannot_delete_export_of_other_organizations(posthog: PostHog) -> None:
    export = posthog.create(s3_export())
    refused(posthog.delete(f"{export['id']}/", project=OTHER_ORGANIZATION), 403)
    assert posthog.get(f"{export['id']}/").status_code == 200


@replays("test_delete.py")
def test_deletes_are_partitioned_by_team_id(posthog: PostHog) -> None:
    export = posthog.create(s3_export())
    refused(posthog.delete(f"{export['id']}/", project=OTHER_PROJECT), 404)
    assert posthog.get(f"{export['id']}/").status_code == 200


# ------------------------------------------------------------------------------------------ get


@replays("test_get.py")
@pytest.mark.parametrize(
    "interval,timezone,offset_day,offset_hour",
    [
        ("hour", "UTC", None, None),
        ("day", "UTC", None, None),
        ("day", "US/Pacific", None, 2),
        ("week", "UTC", 1, 0),
        ("week", "Asia/Kathmandu", 1, 2),
    ],
)
def test_can_get_exports_for_your_organizations(
    posthog: PostHog, interval: str, timezone: str, offset_day: int | None, offset_hour: int | None
) -> None:
    export = posthog.create(s3_export(interval, timezone=timezone, offset_day=offset_day, offset_hour=offset_hour))
    data = posthog.export(export["id"])
    expected_day = (offset_day or 0) if interval == "week" else offset_day
    expected_hour = (offset_hour or 0) if interval in ("day", "week") else offset_hour
    assert (data["interval"], data["timezone"]) == (interval, timezone)
    assert (data["offset_day"], data["offset_hour"]) == (expected_day, expected_hour)
    # The newest code adds `legacy_parquet_extension: false` to every new object-storage destination.
    assert data["destination"]["config"] == {
        "bucket_name": "my-production-s3-bucket",
        "region": "us-east-1",
        "prefix": "posthog-events/",
        "legacy_parquet_extension": False,
    }


@replays("test_get.py")
def test_cannot_get_exports_for_other_organizations(posthog: PostHog) -> None:
    export = posthog.create(s3_export())
    refused(posthog.get(f"{export['id']}/", project=OTHER_ORGANIZATION), 403)


@replays("test_get.py")
def test_batch_exports_are_partitioned_by_team(posthog: PostHog) -> None:
    export = posthog.create(s3_export())
    refused(posthog.get(f"{export['id']}/", project=OTHER_PROJECT), 404)
    other = posthog.create(s3_export() | {"destination": {**s3_export()["destination"], "integration": 201}}, project=2)
    refused(posthog.get(f"{other['id']}/"), 404)


@replays("test_get.py")
def test_serialization_of_destination_config(posthog: PostHog) -> None:
    """The test's Postgres export has inline credentials and `127.0.0.1`, which the newest code refuses on create;
    the replay goes through the PostgreSQL integration and keeps what the test is about: values stored as text
    (`has_self_signed_cert: "False"`) come back as their declared JSON types."""
    destination = {
        "type": "Postgres",
        "config": {"schema": "public", "database": "test", "table_name": "t", "has_self_signed_cert": "False"},
        "integration": POSTGRESQL,
    }
    export = posthog.create(export_with(destination, interval="day", timezone="UTC"))
    assert posthog.export(export["id"])["destination"]["config"] == {
        "schema": "public",
        "database": "test",
        "table_name": "t",
        "has_self_signed_cert": False,
    }


# ------------------------------------------------------------------------------------------ list


@replays("test_list.py")
def test_list_batch_exports(posthog: PostHog) -> None:
    first, second = posthog.create(s3_export()), posthog.create(s3_export())
    assert len(posthog.get("").json()["results"]) == 2
    posthog.delete(f"{first['id']}/")
    assert len(posthog.get("").json()["results"]) == 1
    posthog.delete(f"{second['id']}/")
    assert len(posthog.get("").json()["results"]) == 0


@replays("test_list.py")
def test_cannot_list_batch_exports_for_other_organizations(posthog: PostHog) -> None:
    posthog.create(s3_export())
    posthog.create(s3_export())
    assert len(posthog.get("").json()["results"]) == 2
    refused(posthog.get("", project=OTHER_ORGANIZATION), 403)


@replays("test_list.py")
def test_list_is_partitioned_by_team(posthog: PostHog) -> None:
    posthog.create(s3_export())
    posthog.create(s3_export())
    assert len(posthog.get("").json()["results"]) == 2
    assert posthog.get("", project=OTHER_PROJECT).json()["results"] == []


# ------------------------------------------------------------------------------------------ pause


@replays("test_pause.py")
def test_pause_and_unpause_batch_export(posthog: PostHog) -> None:
    export = posthog.create(s3_export())
    assert export["paused"] is False
    assert posthog.post(f"{export['id']}/pause/").json() == {"paused": True}
    assert posthog.export(export["id"])["paused"] is True
    assert posthog.post(f"{export['id']}/unpause/", json={"backfill": False}).json() == {"paused": False}
    assert posthog.export(export["id"])["paused"] is False


@replays("test_pause.py")
def test_cannot_pause_and_unpause_batch_exports_of_other_organizations(posthog: PostHog) -> None:
    export = posthog.create(s3_export())
    refused(posthog.post(f"{export['id']}/pause/", project=OTHER_ORGANIZATION), 403)
    assert posthog.export(export["id"])["paused"] is False
    posthog.post(f"{export['id']}/pause/")
    refused(posthog.post(f"{export['id']}/unpause/", json={"backfill": False}, project=OTHER_ORGANIZATION), 403)
    assert posthog.export(export["id"])["paused"] is True


@replays("test_pause.py")
def test_pause_and_unpause_are_partitioned_by_team_id(posthog: PostHog) -> None:
    export = posthog.create(s3_export())
    refused(posthog.post(f"{export['id']}/pause/", project=OTHER_PROJECT), 404)
    assert posthog.export(export["id"])["paused"] is False
    posthog.post(f"{export['id']}/pause/")
    refused(posthog.post(f"{export['id']}/unpause/", json={"backfill": False}, project=OTHER_PROJECT), 404)
    assert posthog.export(export["id"])["paused"] is True


@replays("test_pause.py")
def test_pause_batch_export_that_is_already_paused(posthog: PostHog) -> None:
    export = posthog.create(s3_export())
    posthog.advance(1)  # PostHog's clock moves between the two requests
    posthog.post(f"{export['id']}/pause/")
    last_updated_at = posthog.export(export["id"])["last_updated_at"]
    assert last_updated_at > export["last_updated_at"]
    posthog.advance(1)
    assert posthog.post(f"{export['id']}/pause/").status_code == 200
    assert posthog.export(export["id"])["last_updated_at"] == last_updated_at


@replays("test_pause.py")
def test_unpause_batch_export_that_is_already_unpaused(posthog: PostHog) -> None:
    export = posthog.create(s3_export())
    posthog.advance(1)
    assert posthog.post(f"{export['id']}/unpause/", json={"backfill": False}).status_code == 200
    assert posthog.export(export["id"])["last_updated_at"] == export["last_updated_at"]


@replays("test_pause.py")
def test_unpause_can_trigger_a_backfill(posthog: PostHog) -> None:
    export = posthog.create(s3_export())
    posthog.post(f"{export['id']}/pause/")
    posthog.advance(3600)
    posthog.post(f"{export['id']}/unpause/", json={"backfill": True})
    data = posthog.export(export["id"])
    assert export["last_updated_at"] < data["last_updated_at"]
    posthog.advance(5)  # the workflow writes the backfill's row
    backfills = posthog.get(f"{export['id']}/backfills/").json()["results"]
    assert [(b["start_at"], b["end_at"]) for b in backfills] == [(data["last_paused_at"], data["last_updated_at"])]
