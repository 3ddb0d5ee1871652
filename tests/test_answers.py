"""The answer tools (issue 11) through a real MCP client against the sandbox, checked against its own state."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.support import (
    MODES,
    SandboxControl,
    answering,
    confirm_with_token,
    connect,
    data,
    json_text,
    running_app,
    settings_for,
    text,
)
from tools.answers.health import HealthParams, assess, entries_of, health

FAILED = {"Failed", "FailedRetryable", "FailedBilling", "Terminated", "TimedOut"}


def newest_interval_failed(state: dict[str, Any], export_id: str) -> bool:
    """The sandbox's own view: does the newest data interval's newest run stand failed?"""
    runs = [r for r in state["runs"] if r["batch_export"] == export_id and r["status"] not in ("Running", "Starting")]
    if not runs:
        return False
    newest = max(runs, key=lambda r: (r["data_interval_start"], r["created_at"]))
    return newest["status"] in FAILED


@pytest.mark.parametrize("mode", MODES)
async def test_health_accounts_for_every_export(
    sandbox: Any, control: SandboxControl, mode: str, tmp_path: Path
) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    state = control.state()
    mine = [e for e in state["exports"] if e["team_id"] == 1 and not e["deleted"]]
    progress: list[tuple[float, float | None, str | None]] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append((done, total, message))

    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            result = await client.call_tool("batch-export-health", {"project_id": 1}, progress_callback=on_progress)
            answer = data(result)
            everything = data(await client.call_tool("batch-export-health", {"project_id": 1, "state": "all"}))
    assert answer["counts"]["total"] == len(mine)
    assert sum(n for s, n in answer["counts"].items() if s != "total") == len(mine)
    failing = {e["id"] for e in mine if not e["paused"] and newest_interval_failed(state, e["id"])}
    assert failing, "the seed has a failing export"
    listed = entries_of(answer)
    assert {e["batch_export_id"] for e in listed if e["state"] in ("failing", "billing")} == failing
    assert {e["batch_export_id"] for e in entries_of(everything) if e["state"] in ("paused", "auto_paused")} == {
        e["id"] for e in mine if e["paused"]
    }
    assert {e["batch_export_id"] for e in entries_of(everything)} == {e["id"] for e in mine}
    for entry in listed:
        if entry["state"] in ("failing", "billing"):
            assert entry["latest_error"] and len(entry["latest_error"]) <= 120 and entry["failed_run_id"]
            assert entry["consecutive_failures"] >= 1 and entry["failing_since"]
    assert "null" not in text(result)
    assert progress and progress[-1][0] == progress[-1][1] == len(mine)


@pytest.mark.parametrize("mode", MODES)
async def test_health_interval_cells_match_the_runs(
    sandbox: Any, control: SandboxControl, mode: str, tmp_path: Path
) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    snowflake = control.export_id("Daily events to Snowflake")
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            arguments = {"project_id": 1, "name_contains": "snowflake", "intervals": 6}
            answer = data(await client.call_tool("batch-export-health", arguments))
    (entry,) = answer["exports"]
    runs = {r["id"]: r for r in control.state()["runs"] if r["batch_export"] == snowflake}
    assert answer["matching"] == 1 and entry["batch_export_id"] == snowflake
    starts = [c["start"] for c in entry["intervals"]]
    assert starts == sorted(starts) and len(starts) <= 6
    for cell in entry["intervals"]:
        if "run_id" in cell:
            run = runs[cell["run_id"]]
            assert run["data_interval_start"] == cell["start"]
            assert (cell["status"] == "failed") == (run["status"] in FAILED)
    assert any(c["status"] == "failed" for c in entry["intervals"])


class PagedExports:
    """A stand-in upstream holding N exports, paged as PostHog pages them (limit/offset, count, next)."""

    def __init__(self, exports: list[dict[str, Any]]) -> None:
        self.exports = exports
        self.requests: list[tuple[str, dict[str, Any]]] = []

    async def request(self, method: str, path: str, *, query: Any = None, json: Any = None) -> Any:
        self.requests.append((path, dict(query or {})))
        limit, offset = int(query["limit"]), int(query["offset"])
        page = self.exports[offset : offset + limit]
        more = offset + limit < len(self.exports)
        return {"count": len(self.exports), "next": "more" if more else None, "results": page}


def synthetic(count: int, failing: int) -> list[dict[str, Any]]:
    out = []
    for index in range(count):
        status = "Failed" if index < failing else "Completed"
        run = {
            "id": f"run-{index}",
            "status": status,
            "data_interval_start": "2026-11-30T10:00:00Z",
            "data_interval_end": "2026-11-30T11:00:00Z",
            "created_at": "2026-11-30T11:01:00Z",
            "latest_error": f"SnowflakeConnectionError: 250001 (08001): Failed to connect to DB {index % 3}. " * 3
            if status == "Failed"
            else None,
        }
        out.append(
            {
                "id": f"00000000-0000-0000-0000-{index:012d}",
                "name": f"Export number {index:03d} to Snowflake",
                "destination": {"type": "Snowflake"},
                "interval": "hour",
                "paused": False,
                "latest_runs": [run],
            }
        )
    return out


async def test_health_at_500_pages_and_stays_in_budget() -> None:
    upstream = PagedExports(synthetic(500, 50))
    answer = await health(upstream, HealthParams(project_id=1))
    assert [q["offset"] for _, q in upstream.requests] == [0, 100, 200, 300, 400]
    assert answer["counts"] == {"total": 500, "failing": 50, "healthy": 450}
    size = len(json.dumps(answer, separators=(",", ":"), ensure_ascii=False).encode())
    assert size <= 16_000
    assert len(entries_of(answer)) == 50 and "omitted" not in answer


async def test_health_never_cuts_silently() -> None:
    exports = synthetic(500, 50)
    upstream = PagedExports(exports)
    first = await health(upstream, HealthParams(project_id=1, state="all"))
    omitted = first["omitted"]
    assert omitted["count"] == 500 - len(first["exports"]) and omitted["call"]["tool"] == "batch-export-health"
    seen = [e["batch_export_id"] for e in entries_of(first)]
    arguments = omitted["call"]["arguments"]
    for _ in range(20):  # follow the calls the answers name until nothing is left out
        page = await health(upstream, HealthParams(**arguments))
        seen += [e["batch_export_id"] for e in entries_of(page)]
        if "omitted" not in page:
            break
        arguments = page["omitted"]["call"]["arguments"]
    assert sorted(seen) == sorted(e["id"] for e in exports) and len(seen) == len(set(seen))


def test_assess_names_the_streak_and_the_last_success() -> None:
    runs = [
        {
            "id": "c",
            "status": "Failed",
            "data_interval_start": "2026-11-30T12:00:00Z",
            "created_at": "3",
            "latest_error": "boom",
        },
        {"id": "b", "status": "Failed", "data_interval_start": "2026-11-30T11:00:00Z", "created_at": "2"},
        {
            "id": "a",
            "status": "Completed",
            "data_interval_start": "2026-11-30T10:00:00Z",
            "data_interval_end": "2026-11-30T11:00:00Z",
            "created_at": "1",
        },
        # A successful retry of an older failure: that interval no longer counts against the export.
        {"id": "r", "status": "Completed", "data_interval_start": "2026-11-30T09:00:00Z", "created_at": "5"},
        {"id": "f", "status": "Failed", "data_interval_start": "2026-11-30T09:00:00Z", "created_at": "0"},
    ]
    entry = assess(
        {
            "id": "x",
            "name": "n",
            "destination": {"type": "S3"},
            "interval": "hour",
            "paused": False,
            "latest_runs": runs,
        }
    )
    assert entry["state"] == "failing" and entry["consecutive_failures"] == 2
    # Failing since the interval after the last success (which is what last_success would repeat).
    assert entry["failing_since"] == "2026-11-30T11:00:00Z" and "last_success" not in entry
    assert entry["latest_error"] == "boom" and entry["failed_run_id"] == "c"
    runs[0]["status"] = "Completed"
    assert assess({"id": "x", "latest_runs": runs, "paused": False})["state"] == "degraded"


def _hourly(statuses: list[tuple[str, int | None]]) -> dict[str, Any]:
    """An hourly export whose embedded runs have these (status, records), newest first."""
    runs = []
    for hours_ago, (status, records) in enumerate(statuses):
        start = f"2026-11-30T{23 - hours_ago:02d}:00:00Z"
        runs.append(
            {
                "id": f"run-{hours_ago}",
                "status": status,
                "records_completed": records,
                "data_interval_start": start,
                "data_interval_end": start.replace(f"T{23 - hours_ago:02d}", f"T{24 - hours_ago:02d}"),
                "created_at": start,
            }
        )
    return {"id": "x", "name": "n", "interval": "hour", "paused": False, "latest_runs": runs}


def test_assess_tells_billing_silence_and_failed_records_apart() -> None:
    # The project's billing limit stopped the newest run: billing, not the destination.
    assert assess(_hourly([("FailedBilling", None)] + [("Completed", 500)] * 9))["state"] == "billing"
    # An older interval the billing limit left unexported still stands: a billing gap.
    gap = assess(_hourly([("Completed", 500)] * 3 + [("FailedBilling", None)] + [("Completed", 500)] * 6))
    assert gap["state"] == "billing_gap" and gap["billing_failures"] == 1
    # Three runs with 0 records where the export usually exports hundreds: silent since the first.
    silent = assess(_hourly([("Completed", 0)] * 3 + [("Completed", 400)] * 7))
    assert silent["state"] == "silent" and silent["zero_records_since"] == "2026-11-30T21:00:00Z"
    # A quiet export (a record or two a run) meets runs without any: not silent.
    assert assess(_hourly([("Completed", 0)] * 3 + [("Completed", 2)] * 7))["state"] == "healthy"
    # Every embedded run exported nothing: what came before is read back (the answer does it, bounded).
    assert assess(_hourly([("Completed", 0)] * 10)).get("_read_back") == "silent"
    partial = _hourly([("Completed", 400)] * 10)
    partial["latest_runs"][1]["records_failed"] = 7
    entry = assess(partial)
    assert entry["state"] == "partial" and entry["records_failed"] == 7 and entry["records_failed_run_id"] == "run-1"


@pytest.mark.parametrize("mode", MODES)
async def test_destination_check_runs_every_step_and_stops_at_the_first_failure(
    make_sandbox: Any, mode: str, tmp_path: Path
) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    s3 = control.export_id("Hourly events to S3")
    snowflake = control.export_id("Daily events to Snowflake")
    postgres = control.export_id("Paused events to Postgres")
    steps_of = {
        kind: len(control.api("GET", "1/batch_exports/test/", params={"destination": kind}).json()["steps"])
        for kind in ("AwsS3", "Snowflake")
    }
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            passing = data(
                await client.call_tool("batch-export-destination-check", {"project_id": 1, "batch_export_id": s3})
            )
            failing = data(
                await client.call_tool(
                    "batch-export-destination-check", {"project_id": 1, "batch_export_id": snowflake}
                )
            )
            control.clear_requests()
            refused = await client.call_tool(
                "batch-export-destination-check", {"project_id": 1, "batch_export_id": postgres}
            )
            tested = [r for r in control.requests() if "test" in r["path"]]
    assert passing["passed"] is True and [s["status"] for s in passing["steps"]] == ["passed"] * steps_of["AwsS3"]
    assert failing["passed"] is False
    assert [s["status"] for s in failing["steps"]] == ["failed"] + ["not run"] * (steps_of["Snowflake"] - 1)
    assert "Incorrect username or password" in failing["steps"][0]["message"]
    assert refused.is_error and "Postgres" in text(refused) and not tested


async def test_destination_check_of_a_proposed_destination(make_sandbox: Any, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    proposed = {
        "type": "AwsS3",
        "integration_id": 101,
        "config": {"bucket_name": "new-bucket", "region": "eu-west-1", "prefix": "events/"},
    }
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app, connect(app) as client:
        control.clear_requests()
        answer = data(
            await client.call_tool("batch-export-destination-check", {"project_id": 1, "destination": proposed})
        )
        bad = await client.call_tool(
            "batch-export-destination-check",
            {"project_id": 1, "destination": {"type": "Postgres", "config": {"database": "d"}}},
        )
    sent = [r for r in control.requests() if r["path"].endswith("run_test_step_new/")]
    assert answer["passed"] is True and len(sent) == len(answer["steps"])
    assert bad.is_error and "Postgres" in text(bad) and "Nothing was sent" in text(bad)
    assert control.state()["exports"] and not any(e["name"] == "destination check" for e in control.state()["exports"])


def _gaps_from_state(state: dict[str, Any], export_id: str) -> set[str]:
    """Interval starts of the export whose newest run stands failed (the seed has no never-run gaps)."""
    newest: dict[str, dict[str, Any]] = {}
    for run in state["runs"]:
        if run["batch_export"] == export_id:
            held = newest.get(run["data_interval_start"])
            if held is None or run["created_at"] > held["created_at"]:
                newest[run["data_interval_start"]] = run
    return {start for start, run in newest.items() if run["status"] in FAILED}


@pytest.mark.parametrize("mode", MODES)
async def test_gaps_then_one_guarded_backfill_fills_exactly_them(
    sandbox: Any, control: SandboxControl, mode: str, generation: int, tmp_path: Path
) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    snowflake = control.export_id("Daily events to Snowflake")
    arguments = {"project_id": 1, "batch_export_id": snowflake, "start": "-7d"}
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            found = data(await client.call_tool("batch-export-gaps", arguments))
            expected = _gaps_from_state(control.state(), snowflake)
            covered = sum(r["runs"] for r in found["ranges"])
            assert covered == len(expected) and found["ranges"][0]["start_at"] == min(expected)
            assert found["next"]["tool"] == "batch-export-gaps-backfill"
            control.clear_requests()
            result = await confirm_with_token(client, "batch-export-gaps-backfill", found["next"]["arguments"])
            posted = [r for r in control.writes() if r["path"].endswith("/backfills/")]
            assert len(posted) == len(found["ranges"]) == len(result["started"])
            control.advance(30)  # the backfill rows are written a moment after PostHog answers
            again = data(await client.call_tool("batch-export-gaps", arguments))
    # Nothing is left to fill: each former gap is now running or inside the running backfill's range.
    tally = again["intervals"]
    assert again["ranges"] == [] and tally.get("in_running_backfill", 0) + tally.get("running", 0) == covered
    made = [b for b in control.state()["backfills"] if b["batch_export"] == snowflake]
    assert len(made) == len(found["ranges"])  # one backfill per range, none twice
    for backfill, planned in zip(sorted(made, key=lambda b: b["start_at"]), found["ranges"], strict=True):
        assert (backfill["start_at"], backfill["end_at"]) == (planned["start_at"], planned["end_at"])


async def test_gaps_backfill_asks_a_person_when_the_client_can_elicit(
    sandbox: Any, control: SandboxControl, tmp_path: Path
) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    snowflake = control.export_id("Daily events to Snowflake")
    asked: list[Any] = []
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, "legacy", elicitation_callback=answering("accept", {"confirm": True}, asked)) as client:
            control.clear_requests()
            answer = data(
                await client.call_tool("batch-export-gaps-backfill", {"project_id": 1, "batch_export_id": snowflake})
            )
    assert answer["status"] == "executed" and len(asked) == 1
    assert "ranges" in json.dumps(asked[0].model_dump(mode="json")) or "range" in asked[0].message
    assert len([r for r in control.writes() if r["path"].endswith("/backfills/")]) == len(answer["result"]["started"])


async def test_gaps_backfill_with_nothing_to_fill_is_refused_before_asking(make_sandbox: Any, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    s3 = control.export_id("Hourly events to S3")
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app, connect(app) as client:
        control.clear_requests()
        result = await client.call_tool("batch-export-gaps-backfill", {"project_id": 1, "batch_export_id": s3})
    assert result.is_error and "nothing to backfill" in text(result)
    assert not control.writes()


@pytest.mark.parametrize("mode", MODES)
async def test_wait_follows_a_backfill_to_its_end(make_sandbox: Any, mode: str, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    bigquery = control.export_id("Events to BigQuery (backfilling)")
    backfill = next(b for b in control.state()["backfills"] if b["status"] == "Running")
    arguments = {"project_id": 1, "batch_export_id": bigquery, "backfill_id": backfill["id"], "timeout_seconds": 2}
    progress: list[Any] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            pending = data(await client.call_tool("batch-export-wait", arguments, progress_callback=on_progress))
            assert pending["done"] is False and pending["next"]["arguments"] == arguments
            assert pending["waited_seconds"] <= 2.5 and progress

            async def finish_soon() -> None:
                await anyio.sleep(1.0)
                control.advance(3 * 24 * 3600)

            async with anyio.create_task_group() as group:
                group.start_soon(finish_soon)
                done = data(await client.call_tool("batch-export-wait", {**arguments, "timeout_seconds": 20}))
    state = next(b for b in control.state()["backfills"] if b["id"] == backfill["id"])
    assert done["done"] is True and done["status"] == state["status"] != "Running"
    assert done["waited_seconds"] < 10


async def test_wait_by_default_fits_a_client_that_gives_a_call_5_seconds(make_sandbox: Any, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY
    from tools.answers.wait import DEFAULT_WAIT_SECONDS

    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    bigquery = control.export_id("Events to BigQuery (backfilling)")
    backfill = next(b for b in control.state()["backfills"] if b["status"] == "Running")
    arguments = {"project_id": 1, "batch_export_id": bigquery, "backfill_id": backfill["id"]}
    progress: list[Any] = []

    async def on_progress(done: float, total: float | None, message: str | None) -> None:
        progress.append(message)

    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app, connect(app) as client:
        started = time.monotonic()
        with anyio.fail_after(5):  # the whole call, as a client with a 5 s timeout sees it
            pending = data(await client.call_tool("batch-export-wait", arguments, progress_callback=on_progress))
        took = time.monotonic() - started
    assert DEFAULT_WAIT_SECONDS < 5 and took < 5
    assert pending["done"] is False and pending["waited_seconds"] <= DEFAULT_WAIT_SECONDS
    assert pending["next"] == {
        "tool": "batch-export-wait",
        "arguments": {**arguments, "timeout_seconds": DEFAULT_WAIT_SECONDS},
        "why": "still running",
    }
    assert progress, "progress notifications let clients that extend their timeout on progress wait longer"


async def test_wait_needs_exactly_one_target(sandbox: Any, control: SandboxControl, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    s3 = control.export_id("Hourly events to S3")
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app, connect(app) as client:
        result = await client.call_tool("batch-export-wait", {"project_id": 1, "batch_export_id": s3})
    assert result.is_error and "exactly one of run_id or backfill_id" in text(result)


@pytest.mark.parametrize("mode", MODES)
async def test_errors_across_the_project_in_one_call(
    make_sandbox: Any, generation: int, mode: str, tmp_path: Path
) -> None:
    from posthog_sandbox import DEFAULT_API_KEY, SandboxKey

    # Older PostHog serves logs to no scoped key: there, a legacy unscoped key.
    key = DEFAULT_API_KEY if generation >= 3 else "phx_legacy_unscoped_key"
    sandbox = make_sandbox(
        generation=generation, keys=[SandboxKey(key, [] if generation < 3 else ["batch_export:read"])]
    )
    control = SandboxControl(sandbox.base_url, key)
    exports = [e for e in control.state()["exports"] if e["team_id"] == 1 and not e["deleted"]]
    async with running_app(settings_for(sandbox.base_url, key, tmp_path)) as app:
        async with connect(app, mode) as client:
            answer = data(await client.call_tool("batch-export-errors", {"project_id": 1, "after": "-7d"}))
    direct = {}
    for export in exports:
        rows = control.api(
            "GET",
            f"1/batch_exports/{export['id']}/logs/",
            params={"level": "ERROR", "after": answer["window"]["after"]},
        ).json()["results"]
        if rows:
            direct[export["id"]] = len(rows)
    assert direct, "the seed has error lines"
    assert {g["batch_export_id"]: g["count"] for g in answer["exports"]} == direct
    assert answer["total"] == sum(direct.values())
    for group in answer["exports"]:
        assert group["name"] and group["newest_at"]
        assert sum(group["by_message"].values()) + group.get("other_lines", 0) == group["count"]


@pytest.mark.parametrize("mode", MODES)
async def test_projects_from_the_key_and_pinned_instructions(make_sandbox: Any, mode: str, tmp_path: Path) -> None:
    from posthog_sandbox import SandboxKey

    scoped = "phx_scoped_to_project_1"
    sandbox = make_sandbox(keys=[SandboxKey(scoped, ["batch_export:read"], [1])])
    async with running_app(settings_for(sandbox.base_url, scoped, tmp_path)) as app, connect(app, mode) as client:
        answer = data(await client.call_tool("batch-export-projects", {}))
        assert "batch-export-projects" in (client.instructions or "")
    assert answer["projects"] == [{"project_id": 1}] and answer["limited_to_these"] is True
    async with running_app(settings_for(sandbox.base_url, scoped, tmp_path, project_id=1)) as app:
        async with connect(app, mode) as client:
            assert "pinned to PostHog project 1" in (client.instructions or "")
            again = data(await client.call_tool("batch-export-projects", {"project_id": 1}))
    assert again == answer


@pytest.mark.parametrize("mode", MODES)
async def test_old_names_still_work_but_are_not_listed(
    sandbox: Any, control: SandboxControl, mode: str, tmp_path: Path
) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            listed = {t.name for t in (await client.list_tools()).tools}
            result = await client.call_tool("batch-exports-list", {"project_id": 1})
    assert "batch-exports-list" not in listed
    assert not result.is_error and json.loads(json_text(result))["results"]
