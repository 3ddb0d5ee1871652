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


def _every_page(control: SandboxControl, path: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    """Every item of one of PostHog's lists, read straight from the sandbox (the truth), following `next`."""
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
    try:
        async with running_app(settings_for(sandbox.base_url, api_key, tmp_path)) as app, connect(app) as client:
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
