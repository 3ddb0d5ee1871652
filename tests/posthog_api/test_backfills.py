"""Replays of PostHog's backfill tests (products/batch_exports/backend/tests/api/backfills/test_create.py,
test_list.py, test_get.py, test_cancel.py, test_read_only.py), one source file each.

The sandbox's workflow writes a backfill's row five simulated seconds after the 201 and then runs one
interval every two minutes (docs/sandbox.md, "Simulation and timing"), so the replay moves the clock where
PostHog's tests wait for Temporal or write rows with the ORM.
"""

from __future__ import annotations

from typing import Any

import pytest

from posthog_sandbox import SandboxConfig, start_sandbox

from .conftest import KEYS, NOW, PostHog
from .replay import (
    OTHER_ORGANIZATION,
    OTHER_PROJECT,
    RECENT_DAY,
    RECENT_HOUR,
    UNKNOWN_ID,
    refused,
    replays,
    s3_export,
)

HOUR = {"start_at": "2021-01-01T00:00:00+00:00", "end_at": "2021-01-01T01:00:00+00:00"}
CREATE = "backfills/test_create.py"


def export_for_backfills(
    posthog: PostHog,
    model: str = "events",
    interval: str = "hour",
    timezone: str = "UTC",
    offset_day: int | None = None,
    offset_hour: int | None = None,
    project: int = 1,
) -> str:
    """`_create_batch_export_ok` of the test file."""
    body = s3_export(interval, timezone=timezone, offset_day=offset_day, offset_hour=offset_hour, model=model)
    if project != 1:
        body["destination"]["integration"] = project * 100 + 1
    return str(posthog.create(body, project=project)["id"])


def backfill(posthog: PostHog, export: str, start_at: str | None, end_at: str | None, **kw: Any) -> Any:
    return posthog.post(f"{export}/backfills/", json={"start_at": start_at, "end_at": end_at}, **kw)


# ------------------------------------------------------------------------------------------ create


@replays(CREATE)
@pytest.mark.parametrize("model", ["events", "persons"])
def test_batch_export_backfill_success(posthog: PostHog, model: str) -> None:
    response = backfill(posthog, export_for_backfills(posthog, model), **HOUR)
    assert response.status_code == 201, response.text


@replays(CREATE)
@pytest.mark.parametrize("timezone,offset_hour", [("UTC", None), ("US/Pacific", 1), ("Asia/Kathmandu", 20)])
def test_batch_export_backfill_for_daily_schedule(posthog: PostHog, timezone: str, offset_hour: int | None) -> None:
    export = export_for_backfills(posthog, "events", "day", timezone, None, offset_hour)
    response = backfill(posthog, export, "2026-01-01", "2026-01-02")
    assert response.status_code == 201, response.text
    assert "backfill_id" in response.json()


@replays(CREATE)
def test_batch_export_backfill_for_daily_schedule_with_datetime_strings_fails(posthog: PostHog) -> None:
    export = export_for_backfills(posthog, "events", "day")
    assert refused(backfill(posthog, export, **HOUR)) == (
        "Input '2021-01-01T00:00:00+00:00' is not a valid ISO formatted date. "
        "Daily or weekly batch export backfills expect only the date component, but a time was included."
    )


@replays(CREATE)
@pytest.mark.parametrize(
    "timezone,offset_day,offset_hour", [("UTC", 0, None), ("US/Pacific", 0, 1), ("Asia/Kathmandu", 3, 20)]
)
def test_batch_export_backfill_for_weekly_schedule(
    posthog: PostHog, timezone: str, offset_day: int, offset_hour: int | None
) -> None:
    start, end = ("2026-01-04", "2026-01-11") if offset_day == 0 else ("2026-01-07", "2026-01-14")
    export = export_for_backfills(posthog, "events", "week", timezone, offset_day, offset_hour)
    response = backfill(posthog, export, start, end)
    assert response.status_code == 201, response.text
    assert "backfill_id" in response.json()


@replays(CREATE)
def test_batch_export_backfill_for_weekly_schedule_with_datetime_strings_fails(posthog: PostHog) -> None:
    export = export_for_backfills(posthog, "events", "week", "UTC", 0, 0)
    response = backfill(posthog, export, "2026-01-04T00:00:00+00:00", "2026-01-11T00:00:00+00:00")
    assert refused(response) == (
        "Input '2026-01-04T00:00:00+00:00' is not a valid ISO formatted date. "
        "Daily or weekly batch export backfills expect only the date component, but a time was included."
    )


@replays(CREATE)
def test_batch_export_backfill_for_weekly_schedule_fails_if_day_of_week_is_incorrect(posthog: PostHog) -> None:
    export = export_for_backfills(posthog, "events", "week", "UTC", 1, None)
    assert refused(backfill(posthog, export, "2026-01-04", "2026-01-11")) == (
        "Input 2026-01-04 is not on the correct day of the week for this batch export. "
        "2026-01-04 is a Sunday but this batch export is configured to run weekly on Monday."
    )


@replays(CREATE)
def test_batch_export_backfill_with_non_isoformatted_dates(posthog: PostHog) -> None:
    export = export_for_backfills(posthog)
    assert refused(backfill(posthog, export, "not a date", "2021-01-01T01:00:00+00:00")) == (
        "Input not a date is not a valid ISO formatted datetime."
    )
    refused(backfill(posthog, export, "2021-01-01T01:00:00+00:00", "not a date"))


@replays(CREATE)
def test_batch_export_backfill_with_end_at_in_the_future(posthog: PostHog) -> None:
    export = export_for_backfills(posthog)
    response = backfill(posthog, export, "2026-03-16T11:30:00+00:00", "2026-03-16T12:30:00+00:00")
    assert "is in the future" in refused(response)


@replays(CREATE)
def test_batch_export_backfill_with_naive_bounds(posthog: PostHog) -> None:
    export = export_for_backfills(posthog)
    for _ in range(2):
        assert refused(backfill(posthog, export, "2021-01-01T01:00:00", "2021-01-01T01:00:00")) == (
            "Input 2021-01-01T01:00:00 is naive."
        )


@replays(CREATE)
def test_batch_export_backfill_with_start_at_after_end_at(posthog: PostHog) -> None:
    export = export_for_backfills(posthog)
    message = "The initial backfill datetime 'start_at' must be before 'end_at'"
    assert refused(backfill(posthog, export, "2021-01-01T01:00:00+00:00", "2021-01-01T01:00:00+00:00")) == message
    assert refused(backfill(posthog, export, "2021-01-01T01:00:00+00:00", "2020-01-01T01:00:00+00:00")) == message


@replays(CREATE)
def test_cannot_trigger_backfill_for_another_organization(posthog: PostHog) -> None:
    export = export_for_backfills(posthog)
    refused(backfill(posthog, export, **HOUR, project=OTHER_ORGANIZATION), 403)


@replays(CREATE)
def test_backfill_is_partitioned_by_team_id(posthog: PostHog) -> None:
    export = export_for_backfills(posthog)
    assert refused(backfill(posthog, export, **HOUR, project=OTHER_PROJECT), 404) == "BatchExport not found."


@replays(CREATE)
def test_batch_export_backfill_created_in_timezone(posthog: PostHog) -> None:
    export = export_for_backfills(posthog)
    response = backfill(posthog, export, "2021-01-01T00:00:00-05:00", "2021-10-01T00:00:00-04:00")
    assert response.status_code == 201, response.text
    backfill_id = response.json()["backfill_id"]
    posthog.advance(5)
    row = posthog.get(f"{export}/backfills/{backfill_id}/").json()
    assert (row["start_at"], row["end_at"]) == ("2021-01-01T05:00:00Z", "2021-10-01T04:00:00Z")


@replays(CREATE)
def test_batch_export_earliest_backfill_rejected_without_feature_flag(posthog: PostHog) -> None:
    export = export_for_backfills(posthog, "persons")
    response = backfill(posthog, export, None, "2021-01-01T01:00:00+00:00")
    assert refused(response) == "Backfilling from the beginning of time is not enabled for this team."


def running_backfills(posthog: PostHog, export: str, count: int) -> None:
    """`BatchExportBackfill.objects.create(status=RUNNING)` of the test, through the API and the clock."""
    for _ in range(count):
        assert backfill(posthog, export, **RECENT_DAY).status_code == 201
    posthog.advance(15)  # written and running, their first runs under way


@pytest.fixture
def capped() -> Any:
    """A sandbox like the others whose projects may run two backfills at once
    (`BATCH_EXPORT_MAX_CONCURRENT_BACKFILLS_PER_TEAM=2`)."""
    sandbox = start_sandbox(SandboxConfig(seed=False, now=NOW, keys=KEYS, max_concurrent_backfills=2))
    client = PostHog(sandbox)
    yield client
    client.close()
    sandbox.close()


@replays(CREATE)
def test_backfill_rejected_when_team_at_concurrent_limit(capped: PostHog) -> None:
    export = export_for_backfills(capped)
    running_backfills(capped, export, 2)
    response = backfill(capped, export, **HOUR)
    assert "This team already has 2 batch export backfills running" in refused(response, 429)
    assert response.json()["code"] == "too_many_concurrent_backfills"


@replays(CREATE)
def test_backfill_allowed_when_team_below_concurrent_limit(capped: PostHog) -> None:
    export = export_for_backfills(capped)
    backfill(capped, export, **RECENT_HOUR)  # one that completes
    running_backfills(capped, export, 1)
    capped.advance(135)
    assert backfill(capped, export, **HOUR).status_code == 201


@replays(CREATE)
def test_other_teams_backfills_do_not_count_toward_concurrent_limit(capped: PostHog) -> None:
    export = export_for_backfills(capped)
    other = export_for_backfills(capped, project=OTHER_PROJECT)
    for _ in range(5):
        assert backfill(capped, other, **RECENT_DAY, project=OTHER_PROJECT).status_code == 201
    capped.advance(15)
    assert backfill(capped, export, **HOUR).status_code == 201


# ------------------------------------------------------------------------------------------ list


def completed_backfills(posthog: PostHog, export: str, ranges: list[tuple[str, str]]) -> list[str]:
    ids = [backfill(posthog, export, start, end).json()["backfill_id"] for start, end in ranges]
    posthog.advance(5 + 10 + 2 * 120)
    return ids


TWO = [
    ("2021-01-01T00:00:00+00:00", "2021-01-01T01:00:00+00:00"),
    ("2021-01-01T01:00:00+00:00", "2021-01-01T03:00:00+00:00"),
]


@replays("backfills/test_list.py")
def test_list_batch_export_backfills(posthog: PostHog) -> None:
    export = export_for_backfills(posthog)
    completed_backfills(posthog, export, TWO)
    assert len(posthog.get(f"{export}/backfills/").json()["results"]) == 2


@replays("backfills/test_list.py")
def test_cannot_list_batch_export_backfills_for_other_organizations(posthog: PostHog) -> None:
    """The other organization's user lists the export's id in their own project: an empty page. The key's
    own other project stands in for theirs (project 3 refuses the key before any listing)."""
    export = export_for_backfills(posthog)
    completed_backfills(posthog, export, TWO)
    assert len(posthog.get(f"{export}/backfills/").json()["results"]) == 2
    response = posthog.get(f"{export}/backfills/", project=OTHER_PROJECT)
    assert response.status_code == 200 and response.json()["results"] == []


@replays("backfills/test_list.py")
def test_list_is_partitioned_by_team(posthog: PostHog) -> None:
    export = export_for_backfills(posthog)
    completed_backfills(posthog, export, TWO)
    assert len(posthog.get(f"{export}/backfills/").json()["results"]) == 2
    response = posthog.get(f"{export}/backfills/", project=OTHER_PROJECT)
    assert response.status_code == 200, response.text
    assert response.json()["results"] == []


@replays("backfills/test_list.py")
@pytest.mark.parametrize("ordering", [None, "created_at", "-created_at", "start_at", "-start_at"])
def test_list_batch_export_backfills_pages_over_tied_timestamps(posthog: PostHog, ordering: str | None) -> None:
    """Five backfills of one range created at the same (frozen) instant: only the id orders them. The test
    shrinks the page to two; the sandbox keeps PostHog's 50, so the order is checked on one page."""
    export = export_for_backfills(posthog)
    ids = [backfill(posthog, export, **HOUR).json()["backfill_id"] for _ in range(5)]
    posthog.advance(5)
    params = {"ordering": ordering} if ordering else {}
    results = posthog.get(f"{export}/backfills/", params=params).json()["results"]
    descending = ordering is None or ordering.startswith("-")
    assert [b["id"] for b in results] == sorted(ids, reverse=descending)


# ------------------------------------------------------------------------------------------ get


@replays("backfills/test_get.py")
@pytest.mark.parametrize(
    "status,advance,expected_progress",
    [
        ("Completed", 5 + 10 + 2 * 120, {"total_runs": 2, "finished_runs": 2, "progress": 1}),
        ("Cancelled", 5 + 10 + 120, None),
        ("Running", 5 + 10 + 120 + 1, {"total_runs": 2, "finished_runs": 1, "progress": 0.5}),
        ("Starting", 5, {"total_runs": 2, "finished_runs": 0, "progress": 0}),
    ],
)
def test_can_get_backfills_for_your_organizations(
    posthog: PostHog, status: str, advance: int, expected_progress: dict[str, Any] | None
) -> None:
    """The test writes each state with the ORM; the replay drives a two-hour backfill there with the clock
    (and a cancel), and checks the same shape and progress."""
    export = export_for_backfills(posthog)
    two_hours = {"start_at": "2026-03-10T00:00:00+00:00", "end_at": "2026-03-10T02:00:00+00:00"}
    backfill_id = backfill(posthog, export, **two_hours).json()["backfill_id"]
    posthog.advance(advance)
    if status == "Cancelled":
        posthog.post(f"{export}/backfills/{backfill_id}/cancel/")
    data = posthog.get(f"{export}/backfills/{backfill_id}/").json()
    assert isinstance(data.pop("created_at"), str) and isinstance(data.pop("last_updated_at"), str)
    finished_at = data.pop("finished_at")
    assert (finished_at is not None) == (status in ("Completed", "Cancelled"))
    total = data.pop("total_records_count")
    assert (total is None) == (status == "Starting")
    assert data == {
        "id": backfill_id,
        "batch_export": export,
        "team": 1,
        "start_at": "2026-03-10T00:00:00Z",
        "end_at": "2026-03-10T02:00:00Z",
        "status": status,
        "progress": expected_progress,
        "adjusted_start_at": None,
    }


@replays("backfills/test_get.py")
def test_cannot_get_backfills_for_other_organizations(posthog: PostHog) -> None:
    export = export_for_backfills(posthog)
    backfill_id = backfill(posthog, export, **HOUR).json()["backfill_id"]
    posthog.advance(5)
    refused(posthog.get(f"{export}/backfills/{backfill_id}/", project=OTHER_ORGANIZATION), 403)


@replays("backfills/test_get.py")
def test_backfills_are_partitioned_by_team(posthog: PostHog) -> None:
    export = export_for_backfills(posthog)
    backfill_id = backfill(posthog, export, **HOUR).json()["backfill_id"]
    other = export_for_backfills(posthog, project=OTHER_PROJECT)
    other_backfill = backfill(posthog, other, **HOUR, project=OTHER_PROJECT).json()["backfill_id"]
    posthog.advance(5)
    refused(posthog.get(f"{export}/backfills/{backfill_id}/", project=OTHER_PROJECT), 404)
    refused(posthog.get(f"{other}/backfills/{other_backfill}/"), 404)


# ------------------------------------------------------------------------------------------ cancel, read-only


@replays("backfills/test_cancel.py")
def test_cancelling_a_batch_export_backfill(posthog: PostHog) -> None:
    export = export_for_backfills(posthog)
    backfill(posthog, export, **RECENT_DAY)
    posthog.advance(5)
    rows = posthog.get(f"{export}/backfills/").json()["results"]
    assert rows[0]["status"] in ("Running", "Starting")
    posthog.advance(10 + 30)  # its first run is under way
    assert posthog.post(f"{export}/backfills/{rows[0]['id']}/cancel/").json() == {"cancelled": True}
    assert posthog.get(f"{export}/backfills/{rows[0]['id']}/").json()["status"] == "Cancelled"
    runs = posthog.get(f"{export}/runs/").json()["results"]
    assert runs and all(run["status"] == "Cancelled" for run in runs if run["backfill"] == rows[0]["id"])


@replays("backfills/test_read_only.py")
def test_cannot_delete_batch_export_backfill(posthog: PostHog) -> None:
    export = export_for_backfills(posthog)
    backfill_id = completed_backfills(posthog, export, TWO[:1])[0]
    refused(posthog.delete(f"{export}/backfills/{backfill_id}/"), 405)


@replays("backfills/test_read_only.py")
def test_cannot_update_batch_export_backfill(posthog: PostHog) -> None:
    export = export_for_backfills(posthog)
    backfill_id = completed_backfills(posthog, export, TWO[:1])[0]
    refused(posthog.patch(f"{export}/backfills/{backfill_id}/", json={"status": "RUNNING"}), 405)


def test_listing_backfills_of_an_unknown_export_is_an_empty_page(posthog: PostHog) -> None:
    """Not a replay: the listing filters by the id it is given (backfills.py, `safely_get_queryset`), so an id
    no export of the project has lists nothing, while retrieving one of its backfills stays 404."""
    assert posthog.get(f"{UNKNOWN_ID}/backfills/").json() == {"next": None, "previous": None, "results": []}
    refused(posthog.get(f"{UNKNOWN_ID}/backfills/{UNKNOWN_ID}/"), 404)
