"""Issue 19, the whole fleet in one answer: through a real MCP client against the sandbox at 5, 500 and 2,000
exports (PostHog's throttle on unless a check reads the truth), checked against the sandbox's own state.

- Every tool that pages or shortens: following its `omitted.call` visits every item exactly once.
- One health call names every failing export with its exact failing_since, every silent one, the
  project's billing failures and who paused what, within 16 KB.
- Project-wide errors with and without query:read: true counts, within 16 KB, never a 429.
- A run's lines whatever its age; who changed what; an incomplete create refused naming everything.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support import MODES, SandboxControl, connect, data, running_app, settings_for, text
from tools.answers.health import entries_of
from tools.continuation import BUDGET

ALL_SCOPES = ["batch_export:read", "batch_export:write", "query:read", "activity_log:read", "project:read"]
READER = "phx_fleet_reader_without_query"  # batch_export:read only: no Query API, no activity log
SIZES = (5, 500, 2000)
STEP = {"hour": 3600, "day": 86400, "week": 604800, "every 5 minutes": 300, "every 15 minutes": 900}
MOST_CALLS = 400  # a bound on every loop that follows continuations


def _at(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _size(text_: str) -> int:
    return len(text_.encode())


@pytest.fixture(scope="module", params=SIZES, ids=[f"{n}-exports" for n in SIZES])
def fleet(request: pytest.FixtureRequest) -> Iterator[tuple[Any, SandboxControl, int]]:
    """One sandbox per size for the module: every test here reads (the few writes make their own)."""
    from posthog_sandbox import DEFAULT_API_KEY, SandboxConfig, SandboxKey, start_sandbox

    size = int(request.param)
    keys = [SandboxKey(DEFAULT_API_KEY, ALL_SCOPES), SandboxKey(READER, ["batch_export:read"])]
    sandbox = start_sandbox(SandboxConfig(exports=size, keys=keys))
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    try:
        yield sandbox, control, size
    finally:
        control.close()
        sandbox.close()


# The truth of one sandbox (its clock stands still, nothing here writes to the module's ones): read once.
_TRUTH: dict[tuple[SandboxControl, str, str], list[dict[str, Any]]] = {}


def _every_page(control: SandboxControl, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every item of one of PostHog's lists, read straight from the sandbox (the truth), following `next`."""
    key = (control, path, repr(sorted(params.items())))
    if key in _TRUTH:
        return _TRUTH[key]
    _TRUTH[key] = _read_every_page(control, path, params)
    return _TRUTH[key]


def _read_every_page(control: SandboxControl, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    control.throttle(False)
    try:
        page = control.api("GET", path, params=params).json()
        items = list(page["results"])
        while page.get("next"):
            page = control.api("GET", page["next"].split("/api/projects/", 1)[1]).json()
            items += page["results"]
        return items
    finally:
        control.throttle(True)


async def _follow(client: Any, tool: str, arguments: dict[str, Any], key: str) -> tuple[list[Any], int, int]:
    """Every item the tool shows, following `omitted.call` to the end: (items, calls, largest answer)."""
    items: list[Any] = []
    calls = largest = 0
    while True:
        result = await client.call_tool(tool, arguments)
        largest = max(largest, _size(text(result)))
        answer = data(result)
        calls += 1
        items += answer[key] if key != "exports" else entries_of(answer)
        omitted = answer.get("omitted")
        if not omitted:
            return items, calls, largest
        assert omitted["call"]["tool"] == tool and calls < MOST_CALLS
        arguments = omitted["call"]["arguments"]


def _exports(control: SandboxControl) -> list[dict[str, Any]]:
    return _every_page(control, "1/batch_exports/", {"limit": 100})


# ------------------------------------------------------------------------------------- continuations


@pytest.mark.parametrize("mode", MODES)
async def test_following_the_export_list_sees_every_export_once(fleet: Any, mode: str, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox, control, size = fleet
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, toolsets=())) as app:
        async with connect(app, mode) as client:
            control.clear_requests()
            seen, calls, largest = await _follow(client, "batch-export-list", {"project_id": 1}, "results")
    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids)) == size and set(ids) == {e["id"] for e in _exports(control)}
    assert largest <= BUDGET
    assert not [r for r in control.requests() if r.get("status") == 429]


async def test_following_runs_backfills_logs_and_changes_sees_each_once(fleet: Any, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox, control, size = fleet
    exports = _exports(control)
    by_interval = {e["interval"]: e for e in exports}
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app) as client:
            for export in list(by_interval.values())[:3]:
                path = f"1/batch_exports/{export['id']}/runs/"
                # Absolute moments from the sandbox's clock, so the truth reads the very same window.
                now = control.now()
                two_days, week, three_days = (
                    (now - timedelta(days=n)).isoformat().replace("+00:00", "Z") for n in (2, 7, 3)
                )
                for arguments, truth_query in (
                    ({"after": two_days, "limit": 7}, {"after": two_days}),
                    ({"after": week, "limit": 100}, {"after": week}),
                    ({"start": three_days, "limit": 33}, {"start": three_days, "ordering": "-data_interval_start"}),
                ):
                    call = {"project_id": 1, "batch_export_id": export["id"], **arguments}
                    runs, _, largest = await _follow(client, "batch-export-runs-list", call, "results")
                    truth = _every_page(control, path, truth_query)
                    assert [r["id"] for r in runs] == [r["id"] for r in truth], (export["interval"], arguments)
                    assert largest <= BUDGET
                # Log rows have no id: each (moment, message) once, every one of the window's.
                after = (control.now() - timedelta(hours=12)).isoformat()
                call = {"project_id": 1, "batch_export_id": export["id"], "after": after, "limit": 9}
                logs, _, _ = await _follow(client, "batch-export-logs", call, "results")
                control.throttle(False)
                rows = control.api(
                    "GET", f"1/batch_exports/{export['id']}/logs/", params={"after": after, "limit": 500}
                ).json()["results"]
                control.throttle(True)
                shown = [(_at(r["timestamp"]), r["message"]) for r in logs]
                assert len(rows) < 500 and len(shown) == len(set(shown))
                assert sorted(shown) == sorted((_at(r["timestamp"]), r["message"]) for r in rows)
            changes, _, _ = await _follow(client, "batch-export-changes", {"project_id": 1}, "changes")
            truth = _every_page(control, "1/activity_log/", {"scope": "BatchExport"})
            assert [c["id"] for c in changes] == [t["id"] for t in truth]


async def test_following_backfills_past_a_page_sees_each_once(make_sandbox: Any, tmp_path: Path) -> None:
    """PostHog pages backfills 50 at a time: 130 of one export, cut by the page and the answer budget."""
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox = make_sandbox(exports=5, max_concurrent_backfills=500, throttle=False)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    export = next(e for e in _exports(control) if e["interval"] == "hour")
    end = control.now().replace(minute=0, second=0, microsecond=0) - timedelta(days=3)
    for hours in range(130):
        start = end - timedelta(hours=hours + 1)
        body = {"start_at": start.isoformat(), "end_at": (start + timedelta(hours=1)).isoformat()}
        assert control.api("POST", f"1/batch_exports/{export['id']}/backfills/", json=body).status_code == 201
    control.advance(60)  # the rows are written a moment after PostHog answers
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app, connect(app) as client:
        call = {"project_id": 1, "batch_export_id": export["id"]}
        seen, calls, _ = await _follow(client, "batch-export-backfills-list", call, "results")
    truth = _every_page(control, f"1/batch_exports/{export['id']}/backfills/", {})
    assert len(truth) >= 130 and calls >= 3
    assert [b["id"] for b in seen] == [b["id"] for b in truth]


@pytest.mark.parametrize("key", ["full", "reader"])
async def test_following_health_and_errors_sees_each_export_once(fleet: Any, key: str, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox, control, size = fleet
    api_key = DEFAULT_API_KEY if key == "full" else READER
    control.throttle(False)  # the truth and every continuation of a large project: PostHog's pace is not tested here
    # Nor is this server's pacing to it (server/budget/): following every continuation of 2,000 exports at once
    # takes more than a minute of PostHog's limit, which the budget would spread over minutes.
    unpaced = "crud=1000000/minute,10000000/hour;query=1000000/minute,10000000/hour,3"
    try:
        settings = settings_for(sandbox.base_url, api_key, tmp_path, posthog_limits=unpaced)
        async with running_app(settings) as app, connect(app) as client:
            health, _, largest = await _follow(
                client, "batch-export-health", {"project_id": 1, "state": "all"}, "exports"
            )
            assert largest <= BUDGET
            ids = [e["batch_export_id"] for e in health]
            assert len(ids) == len(set(ids)) == size
            first = data(await client.call_tool("batch-export-errors", {"project_id": 1}))
            groups = list(first["exports"])
            if "omitted" in first:
                more, _, largest = await _follow(
                    client, "batch-export-errors", first["omitted"]["call"]["arguments"], "exports"
                )
                groups += more
                assert largest <= BUDGET
        truth = _error_counts(control, first["window"])
        counts = {g["batch_export_id"]: g["count"] for g in groups}
        assert len(counts) == len(groups)  # each export once
        assert counts == truth
    finally:
        control.throttle(True)


def _error_counts(control: SandboxControl, window: dict[str, str]) -> dict[str, int]:
    """ERROR lines per export in the window, read from every export's logs route (the truth)."""
    counts = {}
    for export in _exports(control):
        rows = _every_page(
            control,
            f"1/batch_exports/{export['id']}/logs/",
            {"level": "ERROR", "after": window["after"], "before": window["before"], "limit": 500},
        )
        if rows:
            counts[export["id"]] = len(rows)
    return counts


# ------------------------------------------------------------------------------------- one health call


def _failing_since_truth(control: SandboxControl, export: dict[str, Any], around: datetime) -> datetime:
    """The first data interval after the export's last completed one, from every run it has from two days
    before `around` (when the sandbox says it began failing) on (the truth)."""
    after = (around - timedelta(days=2)).isoformat()
    runs = _every_page(control, f"1/batch_exports/{export['id']}/runs/", {"after": after})
    newest: dict[str, dict[str, Any]] = {}
    for run in runs:
        held = newest.get(run["data_interval_start"])
        if held is None or run["created_at"] > held["created_at"]:
            newest[run["data_interval_start"]] = run
    completed = [_at(r["data_interval_end"]) for r in newest.values() if r["status"] == "Completed"]
    return max(completed)


@pytest.mark.parametrize("mode", MODES)
async def test_one_health_call_names_the_fleet(fleet: Any, mode: str, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox, control, size = fleet
    scenes = control.scenes()
    now = _at(scenes["now"])
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, toolsets=())) as app:
        async with connect(app, mode) as client:
            control.clear_requests()
            result = await client.call_tool("batch-export-health", {"project_id": 1})
            requests = control.requests()
    answer = data(result)
    assert _size(text(result)) <= BUDGET
    assert not [r for r in requests if r.get("status") == 429]
    listed = {e["batch_export_id"]: e for e in entries_of(answer)}
    exports = {e["id"]: e for e in _exports(control)}
    # Every failing export (its first failed run made by now, not paused) is named with its exact failing_since.
    for failing in scenes["failing"]:
        export = exports[failing["id"]]
        if failing["paused"] or _at(failing["first_failed_run_at"]) > now:
            continue
        entry = listed.get(failing["id"])
        assert entry is not None and entry["state"] == "failing", (export["name"], entry)
        since = entry.get("failing_since") or entry.get("since")
        assert since and not str(since).startswith("before"), entry
        first_failed = _at(failing["first_failed_run_at"]) - timedelta(seconds=STEP[export["interval"]])
        if failing["id"] in scenes["failed_billing"]:  # its runs in the billing window say FailedBilling
            expected = _failing_since_truth(control, export, first_failed)
        else:
            expected = first_failed
        assert _at(since) == expected, (export["name"], since, expected)
    # Every export that exports nothing where it used to, and every one that never did.
    for silent in scenes["silent"]:
        assert listed[silent["id"]]["state"] == "silent", exports[silent["id"]]["name"]
    for never in scenes["never_exported"]:
        assert listed[never]["state"] == "never_exported", exports[never]["name"]
    # Nothing named silent that the sandbox did not make silent.
    made_silent = {s["id"] for s in scenes["silent"]} | set(scenes["never_exported"])
    # Any other one named so is one the seed made too quiet to export a record: its runs say 0 records.
    day_ago = (now - timedelta(hours=24)).isoformat()
    for export_id, entry in listed.items():
        if entry["state"] in ("silent", "never_exported") and export_id not in made_silent:
            runs = _every_page(control, f"1/batch_exports/{export_id}/runs/", {"after": day_ago})
            records = [r["records_completed"] for r in runs if r["status"] == "Completed"]
            assert records and not any(records), (exports[export_id]["name"], records)
    # Billing: the project's billing failures said as one fact; each listed billing export is one of them.
    in_view = {i for i, e in exports.items() if any(r["status"] == "FailedBilling" for r in e["latest_runs"])}
    assert answer.get("billing", {}).get("exports", 0) == len(in_view) and in_view <= set(scenes["failed_billing"])
    assert {i for i, e in listed.items() if e["state"] in ("billing", "billing_gap")} <= set(scenes["failed_billing"])
    # Paused by PostHog apart from paused by a person: counted apart, and each listed one right.
    by_posthog = {p["id"] for p in scenes["paused"] if p["by"] == "posthog"}
    assert answer["counts"].get("auto_paused", 0) >= len(by_posthog)
    for export_id, entry in listed.items():
        if entry["state"] == "auto_paused":
            assert exports[export_id]["paused"]
    # Backfills running, with how far along.
    running = {b["backfill_id"] for b in answer.get("backfills_running", [])}
    assert running == {b["id"] for b in scenes["running_backfills"]}
    pages = -(-size // 100)
    print(f"health at {size}: {_size(text(result))} bytes, {len(requests)} PostHog requests ({pages} pages)")


# ------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("key", ["full", "reader"])
async def test_one_errors_call_counts_truly_within_budget_and_no_429(fleet: Any, key: str, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox, control, size = fleet
    api_key = DEFAULT_API_KEY if key == "full" else READER
    async with running_app(settings_for(sandbox.base_url, api_key, tmp_path, toolsets=())) as app:
        async with connect(app) as client:
            control.clear_requests()
            result = await client.call_tool("batch-export-errors", {"project_id": 1})
            requests = control.requests()
    answer = data(result)
    assert _size(text(result)) <= BUDGET
    assert not [r for r in requests if r.get("status") == 429]
    truth = _error_counts(control, answer["window"])
    counts = {g["batch_export_id"]: g["count"] for g in answer["exports"]}
    if key == "full":
        assert answer["source"].startswith("Query API") and len(requests) <= 2 + -(-size // 100)
        assert answer["total"] == sum(truth.values()) and answer["exports_with_lines"] == len(truth)
        assert all(truth[i] == n for i, n in counts.items())
        by_message = sum(m["count"] for m in answer["messages"])
        assert by_message == answer["total"] or "messages_not_shown" in answer
    else:
        # Each export read has its true count; the answer says how many it read and how to go on.
        assert "query:read" in answer["source"] and len(requests) <= 41 + 1
        assert all(truth.get(i) == n for i, n in counts.items())
        if size >= 500:
            assert "omitted" in answer and "query:read" in answer["omitted"]["reason"]


async def test_a_run_from_12_days_ago_has_its_lines(fleet: Any, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox, control, size = fleet
    day = control.now() - timedelta(days=12)
    export = next(
        e
        for e in _exports(control)
        if e["interval"] == "hour" and not e["paused"] and _at(e["created_at"]) < day - timedelta(days=1)
    )
    runs = _every_page(
        control,
        f"1/batch_exports/{export['id']}/runs/",
        {"after": (day - timedelta(hours=2)).isoformat(), "before": day.isoformat()},
    )
    run = runs[0]
    for api_key in (DEFAULT_API_KEY, READER):
        async with running_app(settings_for(sandbox.base_url, api_key, tmp_path)) as app, connect(app) as client:
            arguments = {
                "project_id": 1,
                "batch_export_id": export["id"],
                "run_id": run["id"],
                "level": ["INFO", "ERROR"],
            }
            answer = data(await client.call_tool("batch-export-errors", arguments))
        interval = run["data_interval_start"].replace("T", " ").removesuffix("Z")
        (group,) = answer["exports"]
        assert group["count"] == 2 and interval in group["newest"]["message"], api_key  # its start and end lines
        assert _at(answer["window"]["after"]) < _at(run["created_at"]) < _at(answer["window"]["before"])


# ------------------------------------------------------------------------------------- who changed what


async def test_what_changed_on_an_export_and_who(make_sandbox: Any, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY, SandboxKey

    sandbox = make_sandbox(
        exports=5, keys=[SandboxKey(DEFAULT_API_KEY, ALL_SCOPES), SandboxKey(READER, ["batch_export:read"])]
    )
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    export = next(e for e in _exports(control) if e["destination"]["type"] != "HTTP")
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, confirm="never")
    async with running_app(settings) as app, connect(app) as client:
        await client.call_tool(
            "batch-export-update", {"project_id": 1, "batch_export_id": export["id"], "name": "Renamed"}
        )
        await client.call_tool("batch-export-pause", {"project_id": 1, "batch_export_id": export["id"]})
        result = await client.call_tool("batch-export-changes", {"project_id": 1, "batch_export_id": export["id"]})
    answer = data(result)
    paused, renamed, *older = answer["changes"]
    key_user = "Alex Rivera <alex.rivera@acme.example>"  # the sandbox's key belongs to its user 1
    assert paused["who"] == renamed["who"] == key_user
    assert paused["fields"] == [{"field": "paused", "before": False, "after": True}]
    assert renamed["fields"] == [{"field": "name", "before": export["name"], "after": "Renamed"}]
    assert older and older[-1]["activity"] == "created"
    assert "sandbox-canary" not in text(result)  # destination secrets never reach the activity log
    async with running_app(settings_for(sandbox.base_url, READER, tmp_path)) as app, connect(app) as client:
        refused = await client.call_tool("batch-export-changes", {"project_id": 1})
    assert refused.is_error and "activity_log:read" in text(refused)


async def test_projects_are_named_for_a_key_that_can_read_them(make_sandbox: Any, tmp_path: Path) -> None:
    from posthog_sandbox import SandboxKey

    key = "phx_recommended_key"
    sandbox = make_sandbox(keys=[SandboxKey(key, ALL_SCOPES, [1])])
    async with running_app(settings_for(sandbox.base_url, key, tmp_path)) as app, connect(app) as client:
        answer = data(await client.call_tool("batch-export-projects", {}))
    assert answer["projects"] == [{"project_id": 1, "name": "Acme production"}]


async def test_an_incomplete_create_names_everything_missing_at_once(make_sandbox: Any, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY

    sandbox = make_sandbox()
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app, connect(app) as client:
        control.clear_requests()
        result = await client.call_tool(
            "batch-export-create", {"project_id": 1, "destination": {"type": "AwsS3", "config": {"prefix": "x/"}}}
        )
    message = text(result)
    assert result.is_error and not control.requests()
    for missing in ("name is required", "interval is required", "bucket_name", "region", "integration_id"):
        assert missing in message, missing
