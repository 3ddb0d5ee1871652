"""Issue 20: repair a fleet with one plan, one confirmation and a receipt.

A Snowflake outage across the 500-export project (the sandbox's outage control fails every run that
starts in the window, in the computed past too), found and repaired through a real MCP client in both
protocol eras, through the token channel and through elicitation, with PostHog's throttle on. The
oracle is the sandbox itself: its runs (read over its API) for what was missing, its backfills and
request log for what was sent.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from posthog_sandbox import DEFAULT_API_KEY
from posthog_sandbox.control import SandboxControl
from tests.support import MODES, answering, connect, data, running_app, settings_for, text

FAILED = {"Failed", "FailedRetryable", "FailedBilling", "Terminated", "TimedOut"}
ISO = "%Y-%m-%dT%H:%M:%SZ"
LIMIT = 100  # PostHog's limit of concurrent backfills, as this deployment sets it (and the server is told)


class Calls:
    """The tool calls a session makes, and the confirmations a person gave."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.confirmations = 0

    async def call(self, client: Any, name: str, arguments: dict[str, Any]) -> Any:
        self.calls.append(name)
        if "confirmation_token" in arguments:
            self.confirmations += 1
        return await client.call_tool(name, arguments)


def outage(control: SandboxControl) -> tuple[dict[str, Any], dict[str, Any]]:
    """Snowflake down for 18 hours, ending a day ago (so daily exports, whatever their hour, fail too); the
    window a person asks about, and the outage as the sandbox recorded it."""
    start = (control.now() - timedelta(hours=42)).replace(minute=0, second=0, microsecond=0)
    recorded = control.outage("Snowflake", start.isoformat(), (start + timedelta(hours=18)).isoformat())
    window = {"start": (start - timedelta(hours=24)).strftime(ISO), "end": (start + timedelta(hours=20)).strftime(ISO)}
    return window, recorded


def _moment(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def missing_in_sandbox(control: SandboxControl, export_ids: list[str], window: dict[str, str]) -> dict[str, set[str]]:
    """Each export's interval starts in the window whose newest run failed, read from the sandbox's runs
    (with its throttle off meanwhile: the oracle's reads are not the session's)."""
    control.throttle(False)
    out: dict[str, set[str]] = {}
    for export_id in export_ids:
        path = f"1/batch_exports/{export_id}/runs/"
        query = {"ordering": "data_interval_start", "start": window["start"], "end": window["end"]}
        newest: dict[datetime, dict[str, Any]] = {}
        while True:
            answer = control.api("GET", path, params=query)
            assert answer.status_code == 200, answer.text
            page = answer.json()
            for run in page["results"]:
                start = _moment(run["data_interval_start"])
                if _moment(run["data_interval_end"]) > _moment(window["end"]):
                    continue
                if start not in newest or run["created_at"] > newest[start]["created_at"]:
                    newest[start] = run
            if not page.get("next"):
                break
            query = {**query, "cursor": parse_qs(urlsplit(page["next"]).query)["cursor"][0]}
        failed = {s.strftime(ISO) for s, r in newest.items() if r["status"] in FAILED}
        if failed:
            out[export_id] = failed
    control.throttle(True)
    return out


def covered(ranges: list[tuple[str, str]], step: timedelta) -> set[str]:
    starts = set()
    for start, end in ranges:
        moment = _moment(start)
        while moment < _moment(end):
            starts.add(moment.strftime(ISO))
            moment += step
    return starts


STEP = {"hour": timedelta(hours=1), "day": timedelta(days=1), "week": timedelta(weeks=1)}
STEP |= {"every 5 minutes": timedelta(minutes=5), "every 15 minutes": timedelta(minutes=15)}


@pytest.mark.parametrize("elicits", [False, True], ids=["token", "elicitation"])
@pytest.mark.parametrize("mode", MODES)
async def test_an_outage_across_the_fleet_is_found_and_repaired_with_one_confirmation(
    make_sandbox: Any, mode: str, elicits: bool, tmp_path: Path
) -> None:
    sandbox = make_sandbox(exports=500, max_concurrent_backfills=LIMIT, throttle=True)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    window, recorded = outage(control)
    expected = missing_in_sandbox(control, recorded["exports"], window)
    assert len(expected) >= 40, f"the outage should fail 40+ exports, it failed {len(expected)}"
    asked: list[Any] = []
    extra = {"elicitation_callback": answering("accept", {"confirm": True}, asked)} if elicits else {}
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, toolsets=(), backfill_limit=LIMIT)
    session = Calls()
    control.clear_requests()
    async with running_app(settings) as app, connect(app, mode, **extra) as client:
        arguments = {"project_id": 1, "destination_type": "Snowflake", **window}
        found = data(await session.call(client, "batch-export-gaps", arguments))
        assert len(text_of(found)) <= 16_000
        gaps = list(found["gaps"])
        if "omitted" in found:  # more exports with gaps than 16 KB shows: the exact call for the rest
            more = data(await session.call(client, "batch-export-gaps", found["omitted"]["call"]["arguments"]))
            assert "omitted" not in more and len(text_of(more)) <= 16_000
            gaps += more["gaps"]
        repair = found["repair"]
        assert repair["can_start_now"] == repair["backfills"] and repair["posthog_allows"] == LIMIT
        first = data(await session.call(client, repair["call"]["tool"], repair["call"]["arguments"]))
        if elicits:
            assert first["status"] == "executed" and len(asked) == 1
            session.confirmations += 1
            assert len(asked[0].message) <= 16_000 and "Go ahead?" in asked[0].message
            done = first
        else:
            assert first["status"] == "confirmation_required", first
            assert first["preview"]["plan"]["writes"] == repair["backfills"] <= 100
            assert len(json.dumps(first)) <= 16_000
            done = data(
                await session.call(
                    client,
                    repair["call"]["tool"],
                    {**repair["call"]["arguments"], "confirmation_token": first["confirmation_token"]},
                )
            )
            assert done["status"] == "executed", done
        assert len(json.dumps(done)) <= 16_000
        receipt = done["result"]
    assert len(session.calls) <= 4 and session.confirmations == 1, (session.calls, session.confirmations)
    # Every range found is what the sandbox was missing.
    by_export = {g["batch_export_id"]: g for g in gaps}
    assert len(by_export) == len(gaps) and set(by_export) == set(expected)
    for export_id, starts in expected.items():
        entry = by_export[export_id]
        ranges = [(r["start_at"], r["end_at"]) for r in entry["ranges"]]
        assert covered(ranges, STEP[entry["interval"]]) == starts, entry["name"]
    # Each sent once, none refused, every one in the audit trail with the plan's id (the receipt may fold rows).
    posted = [r for r in control.requests() if r["method"] == "POST"]
    assert posted and all(r["status"] == 201 for r in posted), [r for r in posted if r["status"] != 201]
    assert len(posted) == repair["backfills"]
    assert "skipped" not in receipt and "failed" not in receipt and "deferred" not in receipt
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    writes = [a for a in audit if a.get("plan") == receipt["plan_id"] and a["decision"] == "executed" and "write" in a]
    assert len(writes) == len(posted)
    started = {a["result"]["backfill_id"]: a["target"] for a in writes}
    shown = {s["backfill_id"]: s["batch_export_id"] for s in receipt["started"]}
    assert shown.items() <= started.items() and len(shown) + int(receipt.get("folded", "0 ").split()[0]) == len(started)
    control.advance(10)  # backfill rows are written a moment after PostHog answers
    made = [b for b in control.state()["backfills"] if b["id"] in started]
    held = sorted((b["batch_export"], _moment(b["start_at"]), _moment(b["end_at"])) for b in made)
    wanted = sorted(
        (export_id, _moment(r["start_at"]), _moment(r["end_at"]))
        for export_id, entry in by_export.items()
        for r in entry["ranges"]
    )
    assert held == wanted, "the receipt matches the sandbox: every range backfilled once, none twice"
    assert all(started[b["id"]] == b["batch_export"] for b in made)
    follow = receipt["follow"]
    assert follow["one"]["tool"] == "batch-export-wait" and follow["all"]["tool"] == "batch-export-gaps"


def text_of(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


async def test_running_backfills_at_posthogs_limit_defer_the_rest_and_nothing_is_refused(
    make_sandbox: Any, tmp_path: Path
) -> None:
    sandbox = make_sandbox(exports=500, throttle=True)  # the sandbox's own limit: 5 a project
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    window, _ = outage(control)
    held = control.run_backfills(3)  # three running (the seed had two), so two can start now
    assert held["active"] == 3 and held["limit"] == 5
    control.advance(15)  # at work: each has made its first run (the latest runs show a backfill at work)
    arguments = {"project_id": 1, "destination_type": "Snowflake", **window}
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, toolsets=())) as app:
        async with connect(app) as client:
            found = data(await client.call_tool("batch-export-gaps", arguments))
            assert found["repair"]["running_backfills"] == 3 and found["repair"]["can_start_now"] == 2
            first = data(await client.call_tool("batch-export-gaps-backfill", arguments))
            preview = first["preview"]
            assert preview["plan"]["writes"] == 2 and preview["limit"] == {
                "posthog_allows": 5,
                "running_now": 3,
                "this_plan_starts": 2,
            }
            later = preview["not_now"][0]
            assert later["ranges"] == found["repair"]["backfills"] - 2 and "at most 5 backfills" in later["why"]
            assert "Not now:" in preview["summary"]
            control.clear_requests()
            done = data(
                await client.call_tool(
                    "batch-export-gaps-backfill", {**arguments, "confirmation_token": first["confirmation_token"]}
                )
            )
    receipt = done["result"]
    posted = [r for r in control.requests() if r["method"] == "POST"]
    assert len(posted) == 2 and all(r["status"] == 201 for r in posted), posted
    assert len(receipt["started"]) == 2 and receipt["deferred"] == preview["not_now"]
    assert receipt["next"]["tool"] == "batch-export-gaps-backfill" and receipt["next"]["arguments"] == arguments


async def test_a_target_changed_since_the_preview_is_skipped_and_reported(make_sandbox: Any, tmp_path: Path) -> None:
    sandbox = make_sandbox(exports=500, max_concurrent_backfills=LIMIT)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    window, _ = outage(control)
    arguments = {"project_id": 1, "destination_type": "Snowflake", **window}
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, toolsets=(), backfill_limit=LIMIT)
    async with running_app(settings) as app, connect(app) as client:
        first = data(await client.call_tool("batch-export-gaps-backfill", arguments))
        writes = first["preview"]["plan"]["writes"]
        gaps = data(await client.call_tool("batch-export-gaps", arguments))["gaps"]
        paused, other = gaps[0]["batch_export_id"], gaps[1]
        control.api("POST", f"1/batch_exports/{paused}/pause/").raise_for_status()  # changed since the preview
        start, end = other["ranges"][0]["start_at"], other["ranges"][0]["end_at"]
        body = (
            {"start_at": start, "end_at": end}
            if other["interval"] not in ("day", "week")
            else {
                "start_at": start[:10],
                "end_at": end[:10],
            }
        )
        control.api("POST", f"1/batch_exports/{other['batch_export_id']}/backfills/", json=body).raise_for_status()
        control.advance(10)  # someone else's backfill of that range, written
        control.clear_requests()
        done = data(
            await client.call_tool(
                "batch-export-gaps-backfill", {**arguments, "confirmation_token": first["confirmation_token"]}
            )
        )
    receipt = done["result"]
    skipped = receipt["skipped"]
    # Skipped: every range of the paused export, and the range someone else is backfilling now; nothing else.
    planned = {g["batch_export_id"]: len(g["ranges"]) for g in gaps}
    expected_skips = {(paused, r["start_at"]) for g in gaps if g["batch_export_id"] == paused for r in g["ranges"]}
    expected_skips.add((other["batch_export_id"], start))
    assert {(s["batch_export_id"], s["start_at"]) for s in skipped} == expected_skips
    assert len(skipped) == planned[paused] + 1
    assert all("changed since the preview" in s["why"] for s in skipped)
    started = writes - len(skipped)
    posted = [r for r in control.requests() if r["method"] == "POST"]
    assert len(posted) == started and len(receipt["started"]) + int(receipt.get("folded", "0 ").split()[0]) == started
    assert paused not in {s["batch_export_id"] for s in receipt["started"]}
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    plan = first["preview"]["plan"]["id"]
    lines = [line for line in audit if line.get("plan") == plan]
    assert [line["decision"] for line in lines][:2] == ["previewed", "confirmed"]
    assert sum(line["decision"] == "executed" and "write" in line for line in lines) == started
    assert sum(line["decision"] == "skipped" for line in lines) == len(skipped)
    assert lines[-1]["decision"] == "applied" and lines[-1]["receipt"]["started"] == started


async def test_read_only_mode_and_a_read_only_key_list_no_plan(make_sandbox: Any, tmp_path: Path) -> None:
    from posthog_sandbox import SandboxKey

    sandbox = make_sandbox(keys=[SandboxKey(DEFAULT_API_KEY, ["batch_export:read"])])
    for settings in (
        settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, toolsets=()),
        settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, toolsets=(), read_only=True),
    ):
        async with running_app(settings) as app, connect(app) as client:
            listed = {t.name for t in (await client.list_tools()).tools}
            assert "batch-export-gaps" in listed and "batch-export-gaps-backfill" not in listed
            refused = await client.call_tool("batch-export-gaps-backfill", {"project_id": 1})
            assert refused.is_error and "Nothing was sent" in text(refused)


async def test_a_backfill_started_a_moment_ago_is_met_by_posthogs_refusal_and_the_rest_is_not_sent(
    make_sandbox: Any, tmp_path: Path
) -> None:
    """A backfill whose first run is not made yet shows in no export's latest runs, so the plan cannot count
    it (reading every export's backfills would cost a request per export). PostHog's refusal then stops the
    plan: nothing after it is sent, and the receipt says so and how to go on."""
    sandbox = make_sandbox(exports=500)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    window, _ = outage(control)
    arguments = {"project_id": 1, "destination_type": "Snowflake", **window}
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, toolsets=())) as app:
        async with connect(app) as client:
            first = data(await client.call_tool("batch-export-gaps-backfill", arguments))
            assert first["preview"]["plan"]["writes"] == 3  # five allowed, the seed's two at work
            control.run_backfills(5)  # someone starts three more, this very moment: the project is at its limit
            control.clear_requests()
            done = data(
                await client.call_tool(
                    "batch-export-gaps-backfill", {**arguments, "confirmation_token": first["confirmation_token"]}
                )
            )
    receipt = done["result"]
    assert receipt["started"] == [] and len(receipt["failed"]) == 1 and len(receipt["not_sent"]) == 2
    assert "backfills running" in receipt["failed"][0]["why"]
    assert all("limit of concurrent backfills" in row["why"] for row in receipt["not_sent"])
    posted = [r["status"] for r in control.requests() if r["method"] == "POST"]
    assert posted == [429]  # one refusal, and nothing sent after it
    assert receipt["next"]["arguments"] == arguments


async def test_the_whole_project_in_bounded_calls_that_continue_exactly(make_sandbox: Any, tmp_path: Path) -> None:
    """Every export of 500, a week: each call stays within its request bound and 16 KB, and following
    omitted.call visits every export once (none shown twice, the last call leaves nothing out)."""
    from tools.answers.gap_scan import CAPACITY_READS, REQUEST_BOUND

    # PostHog's rate limit (480 a minute) would hold the third call a minute: pacing is not what is tested here.
    sandbox = make_sandbox(exports=500, throttle=False)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    arguments: dict[str, Any] = {"project_id": 1, "start": "-7d"}
    seen: list[str] = []
    offsets = []
    # Nor the server's own pacing of them: this PostHog's limits are set high (POSTHOG_MCP_POSTHOG_LIMITS).
    settings = settings_for(
        sandbox.base_url, DEFAULT_API_KEY, tmp_path, toolsets=(), posthog_limits="crud=100000/minute,1000000/hour"
    )
    async with running_app(settings) as app:
        async with connect(app) as client:
            for _ in range(40):  # bounded: far more calls than 500 exports need
                control.clear_requests()
                result = await client.call_tool("batch-export-gaps", arguments)
                answer = data(result)
                assert len(text(result).encode()) <= 16_000
                pages = 5  # the export list, 100 a page
                assert len(control.requests()) <= pages + REQUEST_BOUND + CAPACITY_READS
                seen += [g["batch_export_id"] for g in answer["gaps"]]
                offsets.append(arguments.get("offset", 0))
                if "omitted" not in answer:
                    break
                assert answer["omitted"]["call"]["tool"] == "batch-export-gaps"
                arguments = answer["omitted"]["call"]["arguments"]
            else:
                raise AssertionError("the continuation never ended")
    assert len(offsets) > 1, "a week of 500 exports takes more than one bounded call"
    assert offsets == sorted(set(offsets)), offsets
    assert len(seen) == len(set(seen)), "an export was shown twice"
    # Every export whose newest run failed, for an interval that started within the week, has a gap shown.
    week_ago = control.now() - timedelta(days=7)
    failing = set()
    for offset in range(0, 500, 100):
        page = control.api("GET", "1/batch_exports/", params={"limit": 100, "offset": offset}).json()["results"]
        for export in page:
            runs = sorted(export["latest_runs"], key=lambda r: r["created_at"], reverse=True)
            newest = runs[0] if runs else None
            if newest and newest["status"] in FAILED and _moment(newest["data_interval_start"]) >= week_ago:
                failing.add(export["id"])
    assert failing and failing <= set(seen), "every export whose newest run failed this week has gaps shown"
