"""Operator intents played through a real MCP client, each checked against the sandbox's own state.

Each intent makes the calls a model would make for one question, records how many calls and how
many bytes of results went back to the model, and decides whether the answer is right by reading
`/_sandbox/state` (never by comparing with expected strings). The scenario tests assert the
targets of issue 11; benchmarks/scenarios.py writes the same figures into benchmarks/results.md.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import mcp.types as types
from mcp import Client

from posthog_sandbox.control import SandboxControl
from server.untrusted import unmark
from tools.answers.health import entries_of

FAILED = {"Failed", "FailedRetryable", "FailedBilling", "Terminated", "TimedOut"}


@dataclass
class Played:
    """One intent as played: the calls made, the bytes returned to the model, and whether it was right."""

    intent: str
    calls: list[str] = field(default_factory=list)
    result_bytes: int = 0
    largest_result: int = 0
    right: bool = False
    why: str = ""


class Recorder:
    """The client as a model uses it: every call and the size of what comes back are counted."""

    def __init__(self, client: Client, played: Played) -> None:
        self.client = client
        self.played = played

    async def call(self, name: str, arguments: dict[str, Any]) -> Any:
        result = await self.client.call_tool(name, arguments)
        size = sum(len(b.text.encode()) for b in result.content if isinstance(b, types.TextContent))
        self.played.calls.append(name)
        self.played.result_bytes += size
        self.played.largest_result = max(self.played.largest_result, size)
        text = "".join(b.text for b in result.content if isinstance(b, types.TextContent))
        if result.is_error:
            raise AssertionError(f"{name} failed: {text}")
        return json.loads(unmark(text))


def _newest_by_interval(state: dict[str, Any], export_id: str) -> dict[str, dict[str, Any]]:
    newest: dict[str, dict[str, Any]] = {}
    for run in state["runs"]:
        if run["batch_export"] != export_id:
            continue
        held = newest.get(run["data_interval_start"])
        if held is None or run["created_at"] > held["created_at"]:
            newest[run["data_interval_start"]] = run
    return newest


def failing_exports(state: dict[str, Any], project: int = 1) -> dict[str, str]:
    """Id -> name of the active exports whose newest finished data interval stands failed."""
    out = {}
    for export in state["exports"]:
        if export["team_id"] != project or export["deleted"] or export["paused"]:
            continue
        finished = [
            r for r in _newest_by_interval(state, export["id"]).values() if r["status"] not in ("Running", "Starting")
        ]
        if finished and max(finished, key=lambda r: r["data_interval_start"])["status"] in FAILED:
            out[export["id"]] = export["name"]
    return out


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def which_are_failing(rec: Recorder, control: SandboxControl) -> None:
    answer = await rec.call("batch-export-health", {"project_id": 1})
    state = control.state()
    named = {e["batch_export_id"]: e.get("name") for e in entries_of(answer) if e["state"] in ("failing", "billing")}
    active = [e for e in state["exports"] if e["team_id"] == 1 and not e["deleted"] and not e["paused"]]
    with_runs = {r["batch_export"] for r in state["runs"]}
    if all(e["id"] in with_runs for e in active):
        # Every run is in the state: the newest interval of each export decides, exactly.
        expected = failing_exports(state)
        rec.played.right = set(named) == set(expected) and "omitted" not in answer
    else:
        # A large seed keeps most runs out of the state listing: read each export's newest runs from
        # the sandbox's own API instead, and let the newest data interval decide, as above.
        runs: list[dict[str, Any]] = []
        for offset in range(0, len(active) + 200, 100):
            page = control.api("GET", "1/batch_exports/", params={"limit": 100, "offset": offset}).json()
            runs += [r for e in page["results"] for r in e.get("latest_runs") or []]
        expected = failing_exports({**state, "runs": runs})
        rec.played.right = set(named) == set(expected) and "omitted" not in answer
    rec.played.why = f"{len(named)} named; {len(expected)} failing by the sandbox's state"


async def why_did_last_nights_run_fail(rec: Recorder, control: SandboxControl) -> None:
    """Of the export the operator names ("X"): the newest failed run's error."""
    state = control.state()
    failing = failing_exports(state)
    export_id = sorted(failing)[0]
    name = failing[export_id]
    health = await rec.call("batch-export-health", {"project_id": 1, "name_contains": name})
    entry = next(e for e in entries_of(health) if e["name"] == name)
    errors = await rec.call(
        "batch-export-errors", {"project_id": 1, "batch_export_id": entry["batch_export_id"], "after": "-2d"}
    )
    runs = [r for r in state["runs"] if r["batch_export"] == export_id and r["status"] in FAILED]
    newest = max(runs, key=lambda r: r["created_at"])
    line = errors["exports"][0].get("newest") if errors["exports"] else None
    # The newest error line is about the newest failed run's interval, says what the run says, and names it.
    interval = newest["data_interval_start"].replace("T", " ").removesuffix("Z")
    rec.played.right = (
        line is not None
        and interval in line["message"]
        and (newest["latest_error"] or "")[:60] in line["message"]
        and errors["exports"][0].get("failed_run_id") == newest["id"]
    )
    rec.played.why = f"newest failed run {newest['id']}: {'found' if rec.played.right else 'missed'}"


async def can_posthog_reach_snowflake(rec: Recorder, control: SandboxControl) -> None:
    """The operator names the export (its id is known from the health answer earlier in the conversation)."""
    state = control.state()
    export = next(e for e in state["exports"] if e["team_id"] == 1 and e["destination"]["type"] == "Snowflake")
    answer = await rec.call("batch-export-destination-check", {"project_id": 1, "batch_export_id": export["id"]})
    reachable = export["outcome"]["outcome"] == "succeed"
    rec.played.right = answer["passed"] is reachable and all(
        s["status"] in ("passed", "failed", "not run") for s in answer["steps"]
    )
    rec.played.why = f"passed={answer['passed']}, sandbox outcome {export['outcome']['outcome']}"


async def backfill_what_failed_last_week(rec: Recorder, control: SandboxControl, elicits: bool) -> None:
    state = control.state()
    export_id = sorted(failing_exports(state))[0]
    now = _parse(control.clock())
    week_ago = now - timedelta(days=7)
    found = await rec.call("batch-export-gaps", {"project_id": 1, "batch_export_id": export_id, "start": "-7d"})
    arguments = found["next"]["arguments"]
    first = await rec.call("batch-export-gaps-backfill", arguments)
    if not elicits:
        assert first["status"] == "confirmation_required", first
        first = await rec.call(
            "batch-export-gaps-backfill", {**arguments, "confirmation_token": first["confirmation_token"]}
        )
    control.advance(30)  # PostHog writes the backfill rows a moment later
    after = control.state()
    made = [
        b
        for b in after["backfills"]
        if b["batch_export"] == export_id and b["id"] not in {x["id"] for x in state["backfills"]}
    ]
    covered = set()
    for backfill in made:
        start, end = _parse(backfill["start_at"]), _parse(backfill["end_at"])
        covered |= {s for s, r in _newest_by_interval(state, export_id).items() if start <= _parse(s) < end}
    failed_last_week = {
        s for s, r in _newest_by_interval(state, export_id).items() if r["status"] in FAILED and _parse(s) >= week_ago
    }
    rec.played.right = (
        first["status"] == "executed" and covered == failed_last_week and len(made) == len(found["ranges"])
    )
    rec.played.why = f"{len(failed_last_week)} failed intervals, {len(made)} backfill(s) covering {len(covered)}"


OUTAGE_INTENT = "repair yesterday's Snowflake outage across the project"


async def repair_an_outage(rec: Recorder, control: SandboxControl, elicits: bool) -> None:
    """Snowflake down for 18 hours until a day ago: find what every export missed, repair it as one plan."""
    start = (_parse(control.clock()) - timedelta(hours=42)).replace(minute=0, second=0, microsecond=0)
    control.outage("Snowflake", start.isoformat(), (start + timedelta(hours=18)).isoformat())
    iso = "%Y-%m-%dT%H:%M:%SZ"
    window = {"start": (start - timedelta(hours=24)).strftime(iso), "end": (start + timedelta(hours=20)).strftime(iso)}
    before = {b["id"] for b in control.state()["backfills"]}
    found = await rec.call("batch-export-gaps", {"project_id": 1, "destination_type": "Snowflake", **window})
    gaps = list(found["gaps"])
    if "omitted" in found:  # the rest of the exports with gaps, by the exact call the answer gives
        gaps += (await rec.call("batch-export-gaps", found["omitted"]["call"]["arguments"]))["gaps"]
    call = found["repair"]["call"]
    done = await rec.call(call["tool"], call["arguments"])
    if not elicits:
        done = await rec.call(call["tool"], {**call["arguments"], "confirmation_token": done["confirmation_token"]})
    control.advance(10)  # PostHog writes the backfill rows a moment later
    made = sorted(
        (b["batch_export"], _parse(b["start_at"]), _parse(b["end_at"]))
        for b in control.state()["backfills"]
        if b["id"] not in before
    )
    wanted = sorted(
        (g["batch_export_id"], _parse(r["start_at"]), _parse(r["end_at"])) for g in gaps for r in g["ranges"]
    )
    rec.played.right = done["status"] == "executed" and made == wanted and len(gaps) >= 40
    rec.played.why = f"{len(gaps)} exports with gaps, {len(wanted)} ranges, {len(made)} backfills made"


async def errors_in_the_last_day(rec: Recorder, control: SandboxControl) -> None:
    answer = await rec.call("batch-export-errors", {"project_id": 1})
    after = answer["window"]["after"]
    # The answer's window is pinned; lines a run writes after it (the sandbox's clock runs) are not its.
    window = {"after": after} | ({"before": answer["window"]["before"]} if answer["window"].get("before") else {})
    direct = {}
    control.throttle(False)  # the check reads every export's logs; PostHog's rate limit is not under test here
    for export in control.state()["exports"]:
        if export["team_id"] != 1 or export["deleted"]:
            continue
        rows = control.api(
            "GET", f"1/batch_exports/{export['id']}/logs/", params={"level": "ERROR", **window, "limit": 500}
        ).json()["results"]
        if rows:
            direct[export["id"]] = len(rows)
    got = {g["batch_export_id"]: g["count"] for g in answer["exports"]}
    rec.played.right = got == direct
    rec.played.why = f"{sum(got.values())} error lines over {len(got)} export(s); sandbox has {sum(direct.values())}"


Intent = Callable[[Recorder, SandboxControl], Awaitable[None]]

INTENTS: dict[str, Intent] = {
    "which exports are failing?": which_are_failing,
    "why did last night's run of X fail?": why_did_last_nights_run_fail,
    "can PostHog reach my Snowflake destination?": can_posthog_reach_snowflake,
    "errors in the last 24 hours across the project": errors_in_the_last_day,
}
BACKFILL_INTENT = "backfill what failed last week"

# Issue 11's targets: (most calls, most bytes of results or None).
TARGETS: dict[str, tuple[int, int | None]] = {
    "which exports are failing?": (1, 16_000),
    "why did last night's run of X fail?": (2, None),
    "can PostHog reach my Snowflake destination?": (1, None),
    "errors in the last 24 hours across the project": (1, None),
}


def backfill_target(elicits: bool) -> int:
    """One read and one guarded write, plus the confirmation round trip where the client cannot elicit."""
    return 2 if elicits else 3


def grow_project(control: SandboxControl, extra: int, failing_every: int = 10) -> None:
    """A larger project on a sandbox that cannot seed one: `extra` hourly HTTP exports, every
    `failing_every`-th of them failing, then three simulated hours so each has runs."""
    created = []
    for index in range(extra):
        body = {
            "name": f"Stand-in export {index:03d}",
            "interval": "hour",
            "destination": {
                "type": "HTTP",
                "config": {"url": "https://us.i.posthog.com/batch/", "token": f"tok{index}"},
            },
        }
        answer = control.api("POST", "1/batch_exports/", json=body)
        answer.raise_for_status()
        created.append(answer.json()["id"])
    for index, export_id in enumerate(created):
        if index % failing_every == 0:
            control.set_outcome(
                export_id, "fail", error="ConnectionError: the stand-in endpoint refused the connection"
            )
    control.advance(3 * 3600)


def now_utc() -> datetime:
    return datetime.now(UTC)
