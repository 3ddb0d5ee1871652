"""The large seed's fleet-scale scenes over real HTTP, checked against the sandbox's own oracle
(`GET /_sandbox/scenes`): run fields as PostHog serves them, silent and never-exported exports, failed records,
the project's FailedBilling window, long failures, PostHog's auto-pause beside a person's, and the concurrent
backfill cap counted per project (docs/sandbox.md, "Scenes")."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from posthog_sandbox import SandboxConfig, start_sandbox
from posthog_sandbox.history import AUTO_PAUSED_MESSAGE, BILLING_MESSAGE

from .conftest import KEYS, NOW, Api, assert_error

# The fields of PostHog's BatchExportRunSerializer (`fields = "__all__"` over BatchExportRun):
# docs/posthog-api.md, "Runs".
RUN_FIELDS = {
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
RUN_STATUSES = {
    "Cancelled",
    "Completed",
    "ContinuedAsNew",
    "Failed",
    "FailedRetryable",
    "FailedBilling",
    "Terminated",
    "TimedOut",
    "Running",
    "Starting",
}
N = 500


@pytest.fixture(scope="module")
def fleet() -> Iterator[Api]:
    sandbox = start_sandbox(SandboxConfig(exports=N, keys=KEYS, now=NOW, throttle=False))
    api = Api(sandbox)
    try:
        yield api
    finally:
        api.close()
        sandbox.close()


@pytest.fixture(scope="module")
def scenes(fleet: Api) -> dict[str, Any]:
    return fleet.controls.scenes()


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _runs(api: Api, export_id: str, after: str = "-31d", **params: str) -> list[dict[str, Any]]:
    """Every run created after `after` (newest first), following the cursor."""
    page = api.get(f"{export_id}/runs/", params={"after": after, **params}).json()
    runs: list[dict[str, Any]] = page["results"]
    while page["next"]:
        page = api.get(page["next"].removeprefix(api.base_url)).json()
        runs += page["results"]
    return runs


def _logs(api: Api, export_id: str, **params: str) -> list[dict[str, Any]]:
    answer = api.get(f"{export_id}/logs/", params={"limit": "500", **params}, key="phx_read")
    rows: list[dict[str, Any]] = answer.json()["results"]
    return rows


def test_runs_carry_exactly_the_fields_posthog_serves(fleet: Api, scenes: dict[str, Any]) -> None:
    export_id = scenes["records_failed"][0]
    listed = _runs(fleet, export_id, after="-3d")
    assert listed and all(set(r) == RUN_FIELDS and r["status"] in RUN_STATUSES for r in listed)
    one = fleet.get(f"{export_id}/runs/{listed[-1]['id']}/?after=-3d").json()
    assert one == listed[-1]
    export = fleet.get(f"{export_id}/").json()
    assert len(export["latest_runs"]) == 10 and all(set(r) == RUN_FIELDS for r in export["latest_runs"])
    page = fleet.get("?limit=100").json()["results"]
    assert all(set(r) == RUN_FIELDS for e in page for r in e["latest_runs"])


def test_stored_runs_carry_the_same_fields(api3: Api) -> None:
    """The runs the simulation makes and stores (the demo seed's) have the same fields as computed ones."""
    for export in api3.get("").json()["results"]:
        runs = api3.get(f"{export['id']}/runs/", params={"after": "-11d"}).json()["results"]
        assert all(set(r) == RUN_FIELDS and r["status"] in RUN_STATUSES for r in runs + export["latest_runs"])
        if runs:
            assert api3.get(f"{export['id']}/runs/{runs[0]['id']}/", params={"after": "-11d"}).json() == runs[0]


def test_silent_exports_complete_with_zero_records_after_exporting_before(fleet: Api, scenes: dict[str, Any]) -> None:
    assert len(scenes["silent"]) == round(N * 0.02)
    for silent in scenes["silent"][:3]:
        since = _when(silent["since"])
        runs = [r for r in _runs(fleet, silent["id"], after="-8d") if r["status"] == "Completed" and not r["backfill"]]
        after = [r for r in runs if _when(r["data_interval_end"]) >= since]
        before = [r for r in runs if _when(r["data_interval_end"]) < since]
        assert after and all(r["records_completed"] == 0 and r["latest_error"] is None for r in after)
        assert (
            before and sum(r["records_completed"] for r in before) > 0 and all(r["records_completed"] for r in before)
        )
        latest = fleet.get(f"{silent['id']}/").json()["latest_runs"]
        assert {r["status"] for r in latest} <= {"Completed", "Starting", "Running"}
        assert {r["records_completed"] for r in latest if r["status"] == "Completed"} == {0}


def test_never_exported_and_failed_records(fleet: Api, scenes: dict[str, Any]) -> None:
    never = scenes["never_exported"][0]
    runs = _runs(fleet, never)
    assert len(runs) > 100 and {r["records_completed"] for r in runs if r["status"] == "Completed"} == {0}
    assert _logs(fleet, never, search="finished successfully with 0 records exported")
    partial = [
        r for r in _runs(fleet, scenes["records_failed"][0]) if r["status"] == "Completed" and r["records_failed"]
    ]
    assert partial, "some Completed runs report failed records"
    assert all(r["records_completed"] + r["records_failed"] == r["records_total_count"] for r in partial)
    others = set(scenes["records_failed"])
    plain = next(e for e in scenes["silent"] if e["id"] not in others)["id"]
    assert all(r["records_failed"] is None for r in _runs(fleet, plain, after="-2d"))


def test_the_project_billing_window_fails_every_run_in_it(fleet: Api, scenes: dict[str, Any]) -> None:
    window = scenes["billing_window"]
    start, end = _when(window["start"]), _when(window["end"])
    assert len(scenes["failed_billing"]) > N / 3
    for export_id in scenes["failed_billing"][:5]:
        runs = _runs(fleet, export_id, after=window["start"], before=window["end"])
        inside = [r for r in runs if start <= _when(r["created_at"]) < end]
        assert inside and all(r["status"] == "FailedBilling" for r in inside)
        assert all(r["finished_at"] is None and r["latest_error"] is None for r in inside)
        assert all(r["records_completed"] is None and r["bytes_exported"] is None for r in inside)
        warnings = _logs(fleet, export_id, level="WARNING", after=window["start"], before=window["end"])
        assert len([w for w in warnings if w["message"] == BILLING_MESSAGE]) == len(inside)
    # the status filter finds them
    some = scenes["failed_billing"][0]
    assert {r["status"] for r in _runs(fleet, some, status="FailedBilling")} == {"FailedBilling"}


def test_long_failures_reach_far_beyond_the_latest_runs(fleet: Api, scenes: dict[str, Any]) -> None:
    assert scenes["long_failures"]
    failing = {f["id"]: f for f in scenes["failing"]}
    for export_id in scenes["long_failures"]:
        info = failing[export_id]
        assert info["long"] and not info["paused"]
        assert _when(info["since"]) <= NOW - timedelta(days=12)
        runs = _runs(fleet, export_id, after=info["first_failed_run_at"])
        failed = [r for r in runs if r["status"] == "Failed"]
        assert {r["status"] for r in runs} <= {"Failed", "FailedBilling", "Running", "Starting"}
        # 12 days of runs, one of which may fall in the billing window
        assert len(failed) > 10 and len([r for r in runs if r["status"].startswith("Failed")]) >= 12
        assert {r["latest_error"] for r in failed} == {info["error"]}
        latest = fleet.get(f"{export_id}/").json()["latest_runs"]
        assert len(latest) == 10 and all(
            r["status"] in ("Failed", "FailedBilling", "Running", "Starting") for r in latest
        )


def test_paused_by_posthog_or_by_a_person(fleet: Api, scenes: dict[str, Any]) -> None:
    by = {p["id"]: p for p in scenes["paused"]}
    posthog = [p for p in by.values() if p["by"] == "posthog"]
    person = [p for p in by.values() if p["by"] == "person"]
    assert posthog and person
    for paused in posthog:
        export = fleet.get(f"{paused['id']}/").json()
        assert export["paused"] and export["last_paused_at"] == paused["paused_at"]
        pause = _when(paused["paused_at"])
        two_days_before = (pause - timedelta(days=2)).isoformat()
        runs = [r for r in _runs(fleet, paused["id"], after=two_days_before) if not r["backfill"]]
        assert _when(runs[0]["finished_at"]) < pause  # nothing ran after the pause
        failed = [r for r in runs if r["status"] == "Failed"]
        assert len(failed) == 10 and runs[0]["status"] == "Failed"  # paused by the 10th failure
        day_before = (pause - timedelta(days=1)).isoformat()
        warning = _logs(fleet, paused["id"], level="WARNING", after=day_before)
        assert [(w["timestamp"], w["message"]) for w in warning if "automatically paused" in w["message"]] == [
            (paused["paused_at"], AUTO_PAUSED_MESSAGE)
        ]
    for paused in person[:5]:
        day_before = (_when(paused["paused_at"]) - timedelta(days=1)).isoformat()
        warnings = _logs(fleet, paused["id"], level="WARNING", after=day_before)
        assert not [w for w in warnings if "automatically" in w["message"]]
    listed = {e["id"] for e in fleet.state()["exports"] if e["paused"]}
    assert set(by) == listed  # every paused export is told apart


def test_same_n_same_scenes(start: Callable[..., Api]) -> None:
    one, two = start(3, exports=60), start(3, exports=60)
    first, second = one.controls.scenes(), two.controls.scenes()
    assert first == second
    assert first["silent"] and first["never_exported"] and first["failing"] and first["paused"]


def test_two_thousand_exports_seed_in_seconds(start: Callable[..., Api]) -> None:
    began = time.perf_counter()
    api = start(3, exports=2000, throttle=False)
    assert time.perf_counter() - began < 10
    page = api.get("?limit=100&offset=1900").json()
    assert page["count"] == 2000 and len(page["results"]) == 100
    scenes = api.controls.scenes()
    assert len(scenes["silent"]) == 40 and len(scenes["never_exported"]) == 20 and len(scenes["long_failures"]) > 10


# ---------------------------------------------------------------------------------------------- backfills


def test_the_backfill_cap_counts_the_whole_project(start: Callable[..., Api]) -> None:
    api = start(3, exports=60, max_concurrent_backfills=4, throttle=False)
    answer = api.controls.run_backfills(4)
    assert answer["limit"] == 4 and answer["active"] == 4 and len(answer["started"]) == 2  # the seed runs two
    assert all(b["status"] in ("Starting", "Running") for b in answer["backfills"])
    scenes = api.controls.scenes()
    busy = {b["batch_export"] for b in scenes["running_backfills"]}
    assert len(scenes["running_backfills"]) == 4 and scenes["backfill_limit"] == 4
    idle = next(e["id"] for e in api.state()["exports"] if e["id"] not in busy and not e["paused"])
    body = {"start_at": "2025-06-10T00:00:00+00:00", "end_at": "2025-06-10T03:00:00+00:00"}
    # any export of the project is refused once the project has 4 running, even one without a backfill
    assert_error(
        api.post(f"{idle}/backfills/", json=body),
        429,
        "server_error",
        "too_many_concurrent_backfills",
        "This team already has 4 batch export backfills running. Wait for some to finish or cancel them "
        "before creating more.",
    )
    # a retry starts a backfill without that check, as PostHog's retry does
    run = api.get(f"{idle}/runs/?after=-2d").json()["results"][0]
    assert api.post(f"{idle}/runs/{run['id']}/retry/?after=-2d").status_code == 201
    # cancelling one makes room
    first = answer["backfills"][0]
    assert api.post(f"{first['batch_export']}/backfills/{first['id']}/cancel/").status_code == 200
    api.advance(5)  # the retry's row is written now: four active again
    assert api.post(f"{idle}/backfills/", json=body).status_code == 429
    assert api.controls.run_backfills(0)["started"] == []
