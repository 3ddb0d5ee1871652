"""A project of a real size (`SandboxConfig(exports=N)`): deterministic, every type and interval, the failure
patterns operators meet, 30 days of computed runs with log lines, served over real HTTP."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from .conftest import Api

N = 120
TYPES = {"AwsS3", "S3Compatible", "Snowflake", "Postgres", "Redshift", "BigQuery", "Databricks", "AzureBlob", "HTTP"}
INTERVALS = {"hour", "day", "week", "every 5 minutes", "every 15 minutes"}


def _all(api: Api) -> list[dict]:
    page = api.get("?limit=100").json()
    exports = list(page["results"])
    while page["next"]:
        page = api.get(page["next"].removeprefix(api.base_url)).json()
        exports += page["results"]
    return exports


@pytest.fixture
def large(start: Callable[..., Api]) -> Api:
    return start(3, exports=N, throttle=False)


def test_same_n_same_project(start: Callable[..., Api]) -> None:
    one, two = start(3, exports=40), start(3, exports=40)
    first, second = one.state(), two.state()
    strip = {"latest_runs"}
    assert [{k: v for k, v in e.items() if k not in strip} for e in first["exports"]] == [
        {k: v for k, v in e.items() if k not in strip} for e in second["exports"]
    ]
    export = first["exports"][0]["id"]

    def past(api: Api) -> list[dict]:  # the computed past; the simulation's newest runs get fresh ids
        return [r for r in api.get(f"{export}/runs/?after=-30d&before=-1h").json()["results"] if not r["backfill"]]

    assert past(one) == past(two) and len(past(one)) > 20
    other = start(3, exports=41).state()
    assert [e["id"] for e in other["exports"]][:3] != [e["id"] for e in first["exports"]][:3]


def test_every_type_and_interval_and_the_patterns(large: Api) -> None:
    exports = _all(large)
    assert len(exports) == N and len({e["name"] for e in exports}) == N
    assert {e["destination"]["type"] for e in exports} == TYPES
    assert {e["interval"] for e in exports} == INTERVALS
    state = {e["id"]: e for e in large.state()["exports"]}
    paused = [e for e in exports if e["paused"]]
    assert len(paused) == round(N * 0.10) + round(N * 0.03)  # 10% paused, and the failing-then-paused ones
    failing = [e for e in exports if e["latest_runs"] and e["latest_runs"][0]["status"] == "Failed"]
    assert failing, "some exports fail now"
    outcomes = Counter(state[e["id"]]["outcome"]["outcome"] for e in exports)
    assert outcomes["fail"] == round(N * 0.04) + round(N * 0.03) and outcomes["intermittent"] == round(N * 0.03)
    for export in exports:  # integrations as today's PostHog requires them
        assert export["destination"]["integration"] is not None or export["destination"]["type"] == "HTTP"


def test_thirty_days_of_runs_with_logs(large: Api) -> None:
    exports = _all(large)
    hourly = next(e for e in exports if e["interval"] == "hour" and not e["paused"] and e["created_at"] < "2025-05-01")
    runs, url = [], f"{hourly['id']}/runs/?after=-31d"
    while url:
        page = large.get(url).json()
        runs += page["results"]
        url = page["next"] and page["next"].removeprefix(large.base_url)
    scheduled = [r for r in runs if not r["backfill"]]
    assert 30 * 24 - 1 <= len(scheduled) <= 30 * 24 + 1  # one run an hour for 30 days
    created = [r["created_at"] for r in runs]
    assert created == sorted(created, reverse=True) and len(set(r["id"] for r in runs)) == len(runs)
    done = [r for r in runs if r["status"] == "Completed"]
    assert done and all(r["records_completed"] > 0 and r["bytes_exported"] > 0 for r in done)
    assert len({r["records_completed"] for r in done}) > len(done) / 2  # counts vary, like real traffic
    one = scheduled[300]  # twelve and a half days old
    assert large.get(f"{hourly['id']}/runs/{one['id']}/?after=-31d").json() == one
    assert large.get(f"{hourly['id']}/runs/{one['id']}/").status_code == 404  # older than the 7-day window
    logs = large.get(f"{hourly['id']}/logs/?limit=500").json()["results"]
    assert len(logs) == 500 and [r["timestamp"] for r in logs] == sorted((r["timestamp"] for r in logs), reverse=True)
    run_instances = {r["instance_id"] for r in logs}
    assert len(run_instances) >= 240  # two lines per run


def test_failure_patterns_in_the_history(large: Api) -> None:
    state = {e["id"]: e for e in large.state()["exports"]}
    exports = _all(large)
    steady = next(e for e in exports if state[e["id"]]["outcome"]["outcome"] == "fail" and not e["paused"])
    runs = large.get(f"{steady['id']}/runs/?after=-30d&limit=100").json()["results"]
    runs = [r for r in runs if r["status"] not in ("Starting", "Running") and not r["backfill"]]
    statuses = [r["status"] for r in runs]
    first_failure = statuses.index("Failed")
    assert statuses[0] == "Failed" and set(statuses[: first_failure + 1]) == {"Failed"}
    errors = {r["latest_error"] for r in runs if r["status"] == "Failed"}
    assert len(errors) == 1 and len(next(iter(errors))) > 30  # the same real-looking error every run
    flaky = next(e for e in exports if state[e["id"]]["outcome"]["outcome"] == "intermittent")
    statuses = [r["status"] for r in large.get(f"{flaky['id']}/runs/?after=-30d").json()["results"]]
    assert "Failed" in statuses and "Completed" in statuses
    stopped = next(e for e in exports if e["paused"] and state[e["id"]]["outcome"]["outcome"] == "fail")
    runs = large.get(f"{stopped['id']}/runs/?after=-30d").json()["results"]
    assert runs[0]["status"] == "Failed" and runs[0]["created_at"] <= stopped["last_paused_at"]
    errors = large.get(f"{steady['id']}/logs/?level=ERROR&limit=5").json()["results"]
    assert errors and all("failed with a non-recoverable error" in r["message"] for r in errors)


def test_backfills_running_and_finished(large: Api) -> None:
    backfills = large.state()["backfills"]
    assert Counter(b["status"] for b in backfills) == {"Running": 2, "Completed": 3}
    running = next(b for b in backfills if b["status"] == "Running")
    assert 0 < running["progress"]["finished_runs"] < running["progress"]["total_runs"]
    listed = large.get(f"{running['batch_export']}/backfills/").json()["results"]
    assert [b["id"] for b in listed] == [running["id"]]


def test_the_simulation_goes_on_after_the_computed_past(large: Api) -> None:
    exports = _all(large)
    five = next(e for e in exports if e["interval"] == "every 5 minutes" and not e["paused"])
    before = large.get(f"{five['id']}/runs/").json()["results"][0]
    large.advance(600)
    after = large.get(f"{five['id']}/runs/").json()["results"]
    assert after[0]["created_at"] > before["created_at"]
    newest = datetime.fromisoformat(after[0]["created_at"].replace("Z", "+00:00"))
    second = datetime.fromisoformat(after[1]["created_at"].replace("Z", "+00:00"))
    assert newest - second == timedelta(minutes=5)  # no gap and no overlap where the computed past ends


def test_query_api_reads_the_computed_past(large: Api) -> None:
    export = _all(large)[0]["id"]
    response = large.request(
        "POST",
        "/api/projects/1/query/",
        json={
            "query": {
                "kind": "HogQLQuery",
                "query": f"SELECT level, count() AS n FROM batch_export_log_entries WHERE log_source_id = '{export}' "
                "AND timestamp >= '2025-06-01' GROUP BY level ORDER BY level",
            }
        },
        key="phx_star",
    )
    assert response.status_code == 200, response.text
    counts = dict(response.json()["results"])
    assert counts.get("INFO", 0) > 0 and sum(counts.values()) > 20
