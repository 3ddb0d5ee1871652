"""Replays of PostHog's runs, log and destination-test tests (products/batch_exports/backend/tests/api/
test_runs.py, test_logs.py, test_destination_tests.py), one source file each.

Runs that PostHog's tests write with the ORM come from the sandbox's simulation here: a backfill makes its
runs, and the seeded failing Snowflake export has Failed and Completed ones.
"""

from __future__ import annotations

import pytest

from .conftest import PostHog
from .replay import (
    DATABRICKS,
    GOOGLE,
    OTHER_ORGANIZATION,
    OTHER_PROJECT,
    RECENT_DAY,
    S3_COMPATIBLE,
    export_with,
    refused,
    replays,
    s3_export,
)

SEED = True  # the seeded exports carry a week of runs


def seeded(posthog: PostHog, name: str) -> str:
    return posthog.control.export_id(name)


# ------------------------------------------------------------------------------------------ runs


@replays("test_runs.py")
def test_can_get_export_runs_for_your_organizations(posthog: PostHog) -> None:
    export = posthog.create(s3_export())
    assert posthog.get(f"{export['id']}/runs/").status_code == 200


@replays("test_runs.py")
def test_cannot_get_exports_for_other_organizations(posthog: PostHog) -> None:
    export = posthog.create(s3_export())
    refused(posthog.get(f"{export['id']}/runs/", project=OTHER_ORGANIZATION), 403)


@replays("test_runs.py")
def test_batch_exports_are_partitioned_by_team(posthog: PostHog) -> None:
    export = posthog.create(s3_export())
    refused(posthog.get(f"{export['id']}/", project=OTHER_PROJECT), 404)
    other_body = s3_export()
    other_body["destination"]["integration"] = 201
    other = posthog.create(other_body, project=OTHER_PROJECT)
    refused(posthog.get(f"{other['id']}/"), 404)


@replays("test_runs.py")
def test_cancelling_a_batch_export_run(posthog: PostHog) -> None:
    export = posthog.create(s3_export())
    posthog.post(f"{export['id']}/backfills/", json=RECENT_DAY)
    posthog.advance(5 + 10 + 35)  # row written, first run created and running
    runs = posthog.get(f"{export['id']}/runs/").json()["results"]
    assert [run["status"] for run in runs] == ["Running"]
    assert posthog.post(f"{export['id']}/runs/{runs[0]['id']}/cancel/").json() == {"cancelled": True}
    runs = posthog.get(f"{export['id']}/runs/").json()["results"]
    assert [run["status"] for run in runs] == ["Cancelled"]


@replays("test_runs.py")
@pytest.mark.parametrize("ordering", [None, "-data_interval_start"])
def test_get_batch_export_runs_filtered_by_status(posthog: PostHog, ordering: str | None) -> None:
    export = seeded(posthog, "Daily events to Snowflake")  # failing for four days, completed before
    query: dict[str, str | list[str]] = {"ordering": ordering} if ordering else {}
    every = posthog.get(f"{export}/runs/", params=query).json()["results"]
    assert {run["status"] for run in every} == {"Completed", "Failed"}
    failed = posthog.get(f"{export}/runs/", params={**query, "status": ["Failed", "FailedRetryable"]}).json()
    assert {run["id"] for run in failed["results"]} == {run["id"] for run in every if run["status"] == "Failed"}


@replays("test_runs.py")
def test_get_batch_export_runs_rejects_unknown_status(posthog: PostHog) -> None:
    export = posthog.create(s3_export())
    refused(posthog.get(f"{export['id']}/runs/", params={"status": ["NotAStatus"]}))


@replays("test_runs.py")
def test_get_batch_export_runs_date_filter_depends_on_ordering(posthog: PostHog) -> None:
    """The test also writes a run created a month ago with a recent interval, which the API cannot make; the
    replay keeps the other half: a run created now for a month-old interval is in the `after`/`before` window
    of the default ordering and outside the `start`/`end` window of `-data_interval_start`."""
    export = posthog.create(s3_export())
    posthog.post(
        f"{export['id']}/backfills/",
        json={"start_at": "2026-02-14T00:00:00+00:00", "end_at": "2026-02-14T01:00:00+00:00"},
    )
    posthog.advance(5 + 10 + 120)
    by_created = posthog.get(f"{export['id']}/runs/", params={"after": "-2d", "start": "-2d"}).json()["results"]
    assert len(by_created) == 1 and by_created[0]["data_interval_start"] == "2026-02-14T00:00:00Z"
    by_interval = posthog.get(
        f"{export['id']}/runs/", params={"ordering": "-data_interval_start", "start": "-2d", "after": "-2d"}
    ).json()["results"]
    assert by_interval == []


@replays("test_runs.py")
def test_cannot_cancel_completed_batch_export_run(posthog: PostHog) -> None:
    export = seeded(posthog, "Hourly events to S3")
    run = next(r for r in posthog.get(f"{export}/runs/").json()["results"] if r["status"] == "Completed")
    response = posthog.post(f"{export}/runs/{run['id']}/cancel/")
    assert refused(response) == "Cannot cancel a run that is in 'Completed' status"
    assert posthog.get(f"{export}/runs/{run['id']}/").json()["status"] == "Completed"


# ------------------------------------------------------------------------------------------ logs


@replays("test_logs.py")
@pytest.mark.parametrize(
    "route,key,expected_status",
    [
        ("batch_export", "phx_read", 200),
        ("batch_export", "phx_flags", 403),
        ("batch_export_run", "phx_flags", 403),
    ],
)
def test_log_entries_with_scoped_personal_api_key(posthog: PostHog, route: str, key: str, expected_status: int) -> None:
    export = seeded(posthog, "Hourly events to S3")
    path = f"{export}/"
    if route == "batch_export_run":
        run = posthog.get(f"{export}/runs/").json()["results"][0]
        path += f"runs/{run['id']}/"
    assert posthog.get(f"{path}logs/", key=key).status_code == expected_status


# ------------------------------------------------------------------------------------------ destination tests

OBJECT_STORAGE = {
    "type": "S3Compatible",
    "integration": S3_COMPATIBLE,
    "config": {"bucket_name": "test-destination-tests", "region": "us-east-1", "prefix": "posthog-events/"},
}


@replays("test_destination_tests.py")
@pytest.mark.parametrize("destination", ["AwsS3", "BigQuery", "Snowflake", "Databricks"])
def test_can_get_test_for_destination(posthog: PostHog, destination: str) -> None:
    response = posthog.get("test/", params={"destination": destination})
    assert response.status_code == 200, response.text
    steps = response.json()["steps"]
    assert isinstance(steps, list) and steps
    assert all("name" in step and "description" in step for step in steps)


@replays("test_destination_tests.py")
def test_get_test_for_destination_without_a_test_is_not_found(posthog: PostHog) -> None:
    response = posthog.get("test/", params={"destination": "Postgres"})
    assert (response.status_code, response.content) == (404, b"")


@replays("test_destination_tests.py")
def test_can_run_s3_test_step_for_new_destination(posthog: PostHog) -> None:
    body = {"step": 0, **export_with(OBJECT_STORAGE, name="my-production-s3-bucket-destination")}
    response = posthog.post("run_test_step_new/", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["result"] == {"status": "Passed", "message": None}


@replays("test_destination_tests.py")
def test_can_run_s3_test_step_for_destination(posthog: PostHog) -> None:
    body = export_with(OBJECT_STORAGE, name="my-production-s3-bucket-destination")
    export = posthog.create(body)
    response = posthog.post(f"{export['id']}/run_test_step/", json={"step": 0, **body})
    assert response.status_code == 200, response.text
    assert response.json()["result"] == {"status": "Passed", "message": None}


@replays("test_destination_tests.py")
def test_run_test_step_rejects_destination_type_change(posthog: PostHog) -> None:
    export = posthog.create(s3_export())
    malicious = {
        "name": "my-production-s3-bucket-destination",
        "destination": {
            "type": "S3Compatible",
            "config": {"bucket_name": "my-bucket", "region": "us-east-1", "prefix": "events/"},
        },
        "interval": "hour",
    }
    response = posthog.post(f"{export['id']}/run_test_step/", json={"step": 0, **malicious})
    assert "Cannot change destination type" in refused(response)


@replays("test_destination_tests.py")
def test_can_run_bigquery_test_step_with_castable_type(posthog: PostHog) -> None:
    """The test also sends the service-account fields inline; the newest BigQuery config keeps them in the
    integration, so the replay sends the integration and the castable `use_json_type: "True"`."""
    destination = {"type": "BigQuery", "integration_id": GOOGLE, "config": {"use_json_type": "True", "dataset_id": "d"}}
    body = export_with(destination, name="my-production-bigquery-destination")
    export = posthog.create(body)
    response = posthog.post(f"{export['id']}/run_test_step/", json={"step": 0, **body})
    assert response.status_code == 200, response.text
    assert response.json()["result"] == {"status": "Passed", "message": None}


@replays("test_destination_tests.py")
def test_can_run_databricks_test_step_for_new_destination(posthog: PostHog) -> None:
    destination = {
        "type": "Databricks",
        "integration": DATABRICKS,
        "config": {"http_path": "p", "catalog": "c", "schema": "s", "table_name": "t"},
    }
    body = {"step": 0, **export_with(destination, name="my-databricks-batch-export")}
    response = posthog.post("run_test_step_new/", json=body)
    assert response.status_code == 200, response.text
    assert response.json()["result"] == {"status": "Passed", "message": None}


@replays("test_destination_tests.py")
def test_integration_is_required_for_databricks_destination_tests(posthog: PostHog) -> None:
    destination = {"type": "Databricks", "config": {"http_path": "p", "catalog": "c", "schema": "s", "table_name": "t"}}
    body = {"step": 0, **export_with(destination, name="my-databricks-batch-export")}
    assert (
        refused(posthog.post("run_test_step_new/", json=body)) == "Integration is required for Databricks batch exports"
    )
