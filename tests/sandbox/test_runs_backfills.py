"""Runs, backfills, retries, cancels, the 7-day window and the simulation's timing (reference 7.4, 9.6, 9.10, 12)."""

from __future__ import annotations

from .conftest import Api, assert_error, assert_validation, logs_key

HOUR = "Hourly events to S3"
RUN_KEYS = {
    "id",
    "status",
    "records_completed",
    "records_failed",
    "latest_error",
    "data_interval_start",
    "data_interval_end",
    "cursor",
    "created_at",
    "finished_at",
    "last_updated_at",
    "records_total_count",
    "bytes_exported",
    "batch_export",
    "batch_export_on_demand",
    "backfill",
}


def _export(api: Api, name: str = HOUR) -> str:
    return api.export_named(name)["id"]


def test_runs_cursor_pages_and_window(api: Api) -> None:
    export = _export(api)
    page = api.get(f"{export}/runs/").json()
    assert set(page) == {"next", "previous", "results"} and len(page["results"]) == 100
    # the older run model has neither records_failed nor batch_export_on_demand (docs/posthog-api.md, "Runs")
    expected = (
        RUN_KEYS if api.sandbox.config.generation >= 3 else RUN_KEYS - {"records_failed", "batch_export_on_demand"}
    )
    assert set(page["results"][0]) == expected
    seen = [r["id"] for r in page["results"]]
    while page["next"]:
        assert page["next"].startswith(f"{api.base_url}/api/projects/1/batch_exports/{export}/runs/?cursor=")
        page = api.http.get(page["next"], headers={"Authorization": f"Bearer {api.key}"}).json()
        seen += [r["id"] for r in page["results"]]
        assert page["previous"]
    assert len(seen) == len(set(seen)) == 7 * 24 + 1  # created_at in [now - 7d, now]
    wide = []
    page = api.get(f"{export}/runs/?after=-30d").json()
    while True:
        wide += page["results"]
        if not page["next"]:
            break
        page = api.http.get(page["next"], headers={"Authorization": f"Bearer {api.key}"}).json()
    assert len(wide) > len(seen)
    created = [r["created_at"] for r in wide]
    assert created == sorted(created, reverse=True)
    back = api.http.get(page["previous"], headers={"Authorization": f"Bearer {api.key}"}).json()
    assert len(back["results"]) == 100 and back["results"][-1]["created_at"] > wide[-len(page["results"])]["created_at"]
    assert_error(api.get(f"{export}/runs/?cursor=garbage"), 404, "invalid_request", "not_found", "Invalid cursor")


def test_runs_ordering_dependent_filters(api: Api) -> None:
    export = _export(api)
    ascending = api.get(f"{export}/runs/?ordering=data_interval_start&start=-24h").json()["results"]
    starts = [r["data_interval_start"] for r in ascending]
    assert starts == sorted(starts) and len(ascending) == 24  # start >= now-24h and end <= now
    # after/before are ignored when ordering by data_interval_start
    assert len(api.get(f"{export}/runs/?ordering=data_interval_start&start=-24h&after=-1h").json()["results"]) == 24
    window = api.get(f"{export}/runs/?after=2025-06-15T00:00:00Z&before=2025-06-15T06:00:00Z").json()["results"]
    assert len(window) == 7  # inclusive bounds, hourly ticks


def test_status_filter(api: Api, gen: int) -> None:
    export = _export(api, "Daily events to Snowflake")
    failed = api.get(f"{export}/runs/?status=Failed").json()["results"]
    everything = api.get(f"{export}/runs/").json()["results"]
    if gen == 3:
        assert failed and {r["status"] for r in failed} == {"Failed"}
        both = api.get(f"{export}/runs/?status=Failed&status=Completed").json()["results"]
        assert len(both) == len(everything)
        assert_validation(
            api.get(f"{export}/runs/?status=Bogus"), '"Bogus" is not a valid choice.', "status", "invalid_choice"
        )
    else:
        assert len(failed) == len(everything)  # no status filter in Gen-1


def test_failing_export_streak(api: Api) -> None:
    export = _export(api, "Daily events to Snowflake")
    runs = api.get(f"{export}/runs/").json()["results"]
    assert [r["status"] for r in runs[:3]] == ["Failed"] * 3
    assert "250001 (08001): Failed to connect to DB" in runs[0]["latest_error"]
    assert "Incorrect username or password was specified." in runs[0]["latest_error"]
    logs = api.get(f"{export}/logs/?level=ERROR", key=logs_key(api)).json()["results"]
    assert logs and "failed with a non-recoverable error: SnowflakeConnectionError: 250001" in logs[0]["message"]


def test_nine_day_old_run_needs_wider_window(api: Api) -> None:
    export = _export(api)
    old = [r for r in api.state()["runs"] if r["batch_export"] == export and r["created_at"] < "2025-06-06T12:00:00Z"]
    run = old[0]["id"]
    assert_error(api.get(f"{export}/runs/{run}/"), 404, "invalid_request", "not_found", "Not found.")
    assert api.get(f"{export}/runs/{run}/?after=-30d").json()["id"] == run
    assert api.post(f"{export}/runs/{run}/retry/").status_code == 404
    assert api.post(f"{export}/runs/{run}/retry/?after=-30d").status_code in (200, 201)


def test_retry_creates_one_backfill_and_one_new_run(api: Api, gen: int) -> None:
    export = _export(api)
    run = [r for r in api.get(f"{export}/runs/").json()["results"] if r["status"] == "Completed"][5]
    before = api.state()
    response = api.post(f"{export}/runs/{run['id']}/retry/")
    assert response.status_code == (201 if gen == 3 else 200)
    start = run["data_interval_start"].replace("Z", "+00:00")
    end = run["data_interval_end"].replace("Z", "+00:00")
    assert response.json() == {"backfill_id": f"{export}-Backfill-{start}-{end}"}
    assert api.state()["backfills"] == before["backfills"]  # the workflow writes its row a moment later
    api.advance(5)
    after = api.state()
    new_backfills = [b for b in after["backfills"] if b["id"] not in {x["id"] for x in before["backfills"]}]
    assert len(new_backfills) == 1 and new_backfills[0]["status"] == "Starting"
    assert new_backfills[0]["start_at"] == run["data_interval_start"]
    assert new_backfills[0]["end_at"] == run["data_interval_end"]
    api.advance(130)  # 10 s to Running + one 120 s run
    after = api.state()
    new_runs = [
        r
        for r in after["runs"]
        if r["id"] not in {x["id"] for x in before["runs"]} and r["batch_export"] == export and r["backfill"]
    ]
    assert len(new_runs) == 1
    assert new_runs[0]["status"] == "Completed" and new_runs[0]["backfill"] == new_backfills[0]["id"]
    assert new_runs[0]["data_interval_start"] == run["data_interval_start"]
    backfill = api.get(f"{export}/backfills/{new_backfills[0]['id']}/").json()
    assert backfill["status"] == "Completed"
    assert backfill["progress"] == {"total_runs": 1, "finished_runs": 1, "progress": 1.0}
    assert api.get(f"{export}/runs/{run['id']}/").json() == run  # the original is untouched


def test_backfill_lifecycle_and_progress(api: Api, gen: int) -> None:
    export = _export(api)
    response = api.post(
        f"{export}/backfills/", json={"start_at": "2025-06-14T00:00:00+00:00", "end_at": "2025-06-14T03:30:00+00:00"}
    )
    assert response.status_code == (201 if gen == 3 else 200), response.text
    assert api.get(f"{export}/backfills/").json()["results"] == []  # the workflow writes the row a moment later
    api.advance(5)
    backfills = api.get(f"{export}/backfills/").json()["results"]
    backfill = backfills[0]
    if gen == 3:
        assert response.json() == {"backfill_id": backfill["id"]}
        assert "total_records_count" in backfill and "adjusted_start_at" in backfill
    else:
        assert response.json()["backfill_id"] == (
            f"{export}-Backfill-2025-06-14T00:00:00+00:00-2025-06-14T03:30:00+00:00"
        )
        assert "total_records_count" not in backfill
    assert backfill["status"] == "Starting" and backfill["progress"] == {
        "total_runs": 4,
        "finished_runs": 0,
        "progress": 0.0,
    }
    api.advance(10 + 120 + 1)
    backfill = api.get(f"{export}/backfills/{backfill['id']}/").json()
    assert backfill["status"] == "Running"
    assert backfill["progress"] == {"total_runs": 4, "finished_runs": 1, "progress": 0.2}
    api.advance(2 * 120)
    backfill = api.get(f"{export}/backfills/{backfill['id']}/").json()
    assert backfill["status"] == "Completed"  # three whole hours; the trailing half hour is dropped
    assert backfill["progress"] == {"total_runs": 4, "finished_runs": 4, "progress": 1.0}
    runs = [r for r in api.state()["runs"] if r["backfill"] == backfill["id"]]
    assert sorted(r["data_interval_start"] for r in runs) == [
        "2025-06-14T00:00:00Z",
        "2025-06-14T01:00:00Z",
        "2025-06-14T02:00:00Z",
    ]
    if gen == 3:
        assert backfill["total_records_count"] == sum(r["records_completed"] for r in runs)
    assert_validation(
        api.post(f"{export}/backfills/{backfill['id']}/cancel/"),
        "Cannot cancel a backfill that is in 'Completed' status",
    )


def test_backfill_validation(api: Api, gen: int) -> None:
    export = _export(api)
    daily = _export(api, "Daily events to Snowflake")
    url = f"{export}/backfills/"
    assert_validation(
        api.post(url, json={"start_at": "yesterday", "end_at": "2025-06-14T00:00:00+00:00"}),
        "Input yesterday is not a valid ISO formatted datetime.",
    )
    assert_validation(
        api.post(url, json={"start_at": "2025-06-13T00:00:00", "end_at": "2025-06-14T00:00:00+00:00"}),
        "Input 2025-06-13T00:00:00 is naive.",
    )
    assert_validation(
        api.post(url, json={"start_at": "2025-06-14T00:00:00+00:00", "end_at": "2025-06-13T00:00:00+00:00"}),
        "The initial backfill datetime 'start_at' must be before 'end_at'"
        if gen == 3
        else "The initial backfill datetime 'start_at' happens after 'end_at'",
    )
    assert_validation(
        api.post(url, json={"start_at": "2025-06-14T00:00:00+00:00", "end_at": "2025-06-16T00:00:00+00:00"}),
        "The provided 'end_at' (2025-06-16T00:00:00+00:00) is in the future",
    )
    assert_error(
        api.post("00000000-0000-0000-0000-000000000000/backfills/", json={}),
        404,
        "invalid_request",
        "not_found",
        "BatchExport not found.",
    )
    if gen == 3:
        assert_validation(
            api.post(url, json={"end_at": "2025-06-14T00:00:00+00:00"}),
            "Backfilling from the beginning of time is not enabled for this team.",
        )
        assert_validation(
            api.post(f"{daily}/backfills/", json={"start_at": "2025-06-10T00:00:00+00:00", "end_at": "2025-06-12"}),
            "Input '2025-06-10T00:00:00+00:00' is not a valid ISO formatted date. Daily or weekly "
            "batch export backfills expect only the date component, but a time was included.",
        )
        assert_validation(
            api.post(f"{daily}/backfills/", json={"start_at": "June", "end_at": "2025-06-12"}),
            "Input 'June' is not a valid ISO formatted date.",
        )
        response = api.post(f"{daily}/backfills/", json={"start_at": "2025-06-10", "end_at": "2025-06-12"})
        assert response.status_code == 201
        weekly = api.post(
            "", json={"name": "w", "interval": "week", "offset_day": 1, "destination": {"type": "NoOp", "config": {}}}
        ).json()["id"]
        assert_validation(
            api.post(f"{weekly}/backfills/", json={"start_at": "2025-06-03", "end_at": "2025-06-10"}),
            "Input 2025-06-03 is not on the correct day of the week for this batch export. 2025-06-03 "
            "is a Tuesday but this batch export is configured to run weekly on Monday.",
        )
        assert (
            api.post(f"{weekly}/backfills/", json={"start_at": "2025-06-02", "end_at": "2025-06-09"}).status_code == 201
        )
    else:
        response = api.post(
            f"{daily}/backfills/", json={"start_at": "2025-06-10T00:00:00+00:00", "end_at": "2025-06-12T00:00:00+00:00"}
        )
        assert response.status_code == 200
        assert_validation(
            api.post(f"{daily}/backfills/", json={"start_at": "2025-06-10", "end_at": "2025-06-12"}),
            "Input 2025-06-10 is naive.",
        )


def test_concurrent_backfill_cap(start) -> None:  # noqa: ANN001
    api = start(3, max_concurrent_backfills=2)  # the seed already has one running backfill
    export = _export(api)
    body = {"start_at": "2025-06-14T00:00:00+00:00", "end_at": "2025-06-14T05:00:00+00:00"}
    assert api.post(f"{export}/backfills/", json=body).status_code == 201
    api.advance(5)  # the cap counts backfill rows, which the workflow writes a moment after the answer
    assert_error(
        api.post(f"{export}/backfills/", json=body),
        429,
        "server_error",
        "too_many_concurrent_backfills",
        "This team already has 2 batch export backfills running. Wait for some to finish or cancel them "
        "before creating more.",
    )
    # another project is not affected
    other = api.export_named("Project 2 events to HTTP")["id"]
    two = type(api)(api.sandbox, project=2)
    try:
        assert two.post(f"{other}/backfills/", json=body).status_code == 201
    finally:
        two.close()
    gen1 = start(1, max_concurrent_backfills=1)
    export1 = _export(gen1)
    assert all(gen1.post(f"{export1}/backfills/", json=body).status_code == 200 for _ in range(3))


def test_cancel_backfill_cancels_its_runs(api: Api, gen: int) -> None:
    export = _export(api, "Events to BigQuery (backfilling)")
    backfill = api.get(f"{export}/backfills/").json()["results"][0]
    assert backfill["status"] == "Running" and backfill["progress"]["finished_runs"] == 14
    assert 0 < backfill["progress"]["progress"] < 1
    active = [r for r in api.state()["runs"] if r["backfill"] == backfill["id"] and r["status"] == "Running"]
    assert len(active) == 1
    assert api.post(f"{export}/backfills/{backfill['id']}/cancel/").json() == {"cancelled": True}
    after = api.get(f"{export}/backfills/{backfill['id']}/").json()
    assert after["status"] == "Cancelled" and after["progress"] is None and after["finished_at"]
    run = api.get(f"{export}/runs/{active[0]['id']}/").json()
    assert run["status"] == ("Cancelled" if gen == 3 else "Running")
    api.advance(3600)
    assert len([r for r in api.state()["runs"] if r["backfill"] == backfill["id"]]) == 15
    assert_validation(
        api.post(f"{export}/backfills/{backfill['id']}/cancel/"),
        "Cannot cancel a backfill that is in 'Cancelled' status",
    )
    assert_error(api.get(f"{export}/backfills/not-a-uuid/"), 404, "invalid_request", "not_found", "Not found.")


def test_cancel_run(api: Api) -> None:
    export = _export(api)
    api.advance(3600 + 10)  # next hourly tick has just started
    run = api.get(f"{export}/runs/").json()["results"][0]
    assert run["status"] == "Starting"
    assert api.post(f"{export}/runs/{run['id']}/cancel/").json() == {"cancelled": True}
    cancelled = api.get(f"{export}/runs/{run['id']}/").json()
    assert cancelled["status"] == "Cancelled" and cancelled["finished_at"] is None
    assert_validation(
        api.post(f"{export}/runs/{run['id']}/cancel/"), "Cannot cancel a run that is in 'Cancelled' status"
    )
    done = [r for r in api.get(f"{export}/runs/").json()["results"] if r["status"] == "Completed"][0]
    assert_validation(
        api.post(f"{export}/runs/{done['id']}/cancel/"), "Cannot cancel a run that is in 'Completed' status"
    )


def test_scheduled_runs_follow_the_clock(api: Api) -> None:
    export = _export(api)
    api.advance(3600 + 30)
    run = api.get(f"{export}/runs/").json()["results"][0]
    assert run["status"] == "Running" and run["data_interval_end"] == "2025-06-15T13:00:00Z"
    api.advance(90)
    run = api.get(f"{export}/runs/{run['id']}/").json()
    assert run["status"] == "Completed" and run["finished_at"] == "2025-06-15T13:02:00Z"
    assert run["records_completed"] == run["records_total_count"] > 0


def test_outcome_control_fails_runs(api: Api) -> None:
    export = _export(api)
    api.control("POST", f"exports/{export}/outcome", {"outcome": "fail", "error": "boom", "records": None})
    api.advance(3600 + 120)
    run = api.get(f"{export}/runs/").json()["results"][0]
    assert run["status"] == "Failed" and run["latest_error"] == "boom"
    api.control("POST", f"exports/{export}/outcome", {"outcome": "fail_retryable", "error": None, "records": 7})
    api.advance(3600)
    run = api.get(f"{export}/runs/").json()["results"][0]
    assert run["status"] == "FailedRetryable" and run["records_total_count"] == 7
    warning = api.get(f"{export}/logs/?level=WARNING", key=logs_key(api)).json()["results"][0]
    assert "failed with an error that can be retried" in warning["message"]
