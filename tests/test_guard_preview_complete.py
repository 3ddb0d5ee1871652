"""Every argument a write sends appears in what the person approves (issue 13, item 2).

One test over every guarded tool: its arguments with every parameter of its schema filled, and
each value must be in the preview (secrets as markers, long texts shortened visibly). A parameter
added to a guarded tool without a place in its preview fails here.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from posthog_sandbox import DEFAULT_API_KEY
from server.guard.result import TOKEN_PARAM
from tests.support import (
    SandboxControl,
    connect,
    guarded_arguments,
    running_app,
    sandbox_now,
    settings_for,
    text,
    tools_by_name,
)
from tools.destinations import SECRET_CONFIG_KEYS

LONG_QUERY = "SELECT event, properties.$email AS email FROM events WHERE " + " OR ".join(
    f"event = 'signup_{n}'" for n in range(120)
)
IDS = {"batch_export_id", "run_id", "backfill_id"}
# Arguments that make batch-export-update a plan of many exports (checked on their own below).
PLAN_SELECTORS = {("batch-export-update", "on_integration"), ("batch-export-update", "all_of_type")}


def every_argument(control: SandboxControl) -> dict[str, dict[str, Any]]:
    """Each guarded tool's arguments with every optional parameter given too."""
    full = guarded_arguments(control)
    schedule = {
        "model": "hogql",
        "hogql_query": LONG_QUERY,
        "filters": [{"key": "$browser", "value": ["Firefox"], "operator": "exact", "type": "event"}],
        "start_at": "2026-12-01T00:00:00Z",
        "end_at": "2027-06-01T00:00:00Z",
        "timezone": "Europe/Berlin",
        "offset_day": 2,
        "offset_hour": 5,
        "paused": True,
        "interval": "week",
    }
    create = full["batch-export-create"]
    create["destination"] = {**create["destination"], "integration_id": 7}
    full["batch-export-create"] = {**create, **schedule}
    http_export = control.export_id("Project 2 events to HTTP", project=2)
    full["batch-export-update"] = {
        "project_id": 2,
        "batch_export_id": http_export,
        "name": "Project 2 events to HTTP (renamed)",
        **schedule,
        "destination": {
            "type": "HTTP",
            "config": {"url": "https://eu.i.posthog.com/batch/", "token": "sandbox-canary-rotated"},
            "integration_id": 8,
        },
    }
    now = datetime.fromisoformat(sandbox_now(control).replace("Z", "+00:00")).replace(minute=0, second=0, microsecond=0)
    window = {
        "start": (now - timedelta(days=7)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    scope = {"destination_type": "Snowflake", "name_contains": "Snowflake", "offset": 0}
    full["batch-export-gaps-backfill"] = {**full["batch-export-gaps-backfill"], **window, **scope}
    return full


def pairs(node: Any, key: str = "") -> list[tuple[str, Any]]:
    """Every (key, value) in a preview, at any depth."""
    found = [(key, node)]
    if isinstance(node, dict):
        for k, v in node.items():
            found += pairs(v, k)
    elif isinstance(node, list):
        for v in node:
            found += pairs(v, key)
    return found


def leaves(arguments: dict[str, Any], path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    out: list[tuple[tuple[str, ...], Any]] = []
    for key, value in arguments.items():
        if isinstance(value, dict):
            out += leaves(value, (*path, key))
        else:
            out.append(((*path, key), value))
    return out


def same(shown: Any, sent: Any) -> bool:
    if isinstance(shown, dict) and "to" in shown:
        shown = shown["to"]
    if shown == sent:
        return True
    if isinstance(shown, str) and isinstance(sent, str):
        if len(sent) > 1000 and shown.startswith(sent[:1000]) and "characters in all" in shown:
            return True  # shortened, visibly
        try:
            return datetime.fromisoformat(shown.replace("Z", "+00:00")) == datetime.fromisoformat(
                sent.replace("Z", "+00:00")
            )
        except ValueError:
            return False
    return False


def missing_from(preview: dict[str, Any], arguments: dict[str, Any]) -> list[str]:
    seen = pairs(preview)
    missing = []
    for path, value in leaves(arguments):
        names = {path[-1], ".".join(path), "_".join(path[-2:])}
        if path[-1] in SECRET_CONFIG_KEYS:
            ok = any(k in names and isinstance(v, str) and v.startswith("(secret") for k, v in seen)
            ok = ok and all(value not in str(v) for _, v in seen)
        else:
            ok = any(k in names and same(v, value) for k, v in seen)
            ok = ok or (path[-1] in IDS and any(k == "id" and v == value for k, v in seen))
        if not ok:
            missing.append(".".join(path))
    return missing


async def test_every_argument_a_guarded_write_sends_is_in_its_preview(make_sandbox: Any, tmp_path: Any) -> None:
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    full = every_argument(control)
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, include_deprecated=True)
    async with running_app(settings) as app, connect(app, "legacy") as client:
        listed = await tools_by_name(client)
        guarded = [spec.name for spec in app.specs if app.guard.applies(spec)]
        assert guarded, "no guarded tool listed"
        problems = {}
        for name in guarded:
            assert name in full, f"{name} is guarded: give it full arguments here"
            schema = listed[name].input_schema
            for prop, sub in schema["properties"].items():
                if prop == TOKEN_PARAM or (name, prop) in PLAN_SELECTORS:
                    continue
                assert prop in full[name], f"{name}: the test does not send {prop}; add it above"
                for inner in sub.get("properties", {}):
                    assert inner in full[name][prop], f"{name}: the test does not send {prop}.{inner}"
            result = await client.call_tool(name, full[name])
            assert not result.is_error, (name, text(result))
            preview = result.structured_content["preview"]
            missing = missing_from(preview, full[name])
            if missing:
                problems[name] = missing
        # A change to many exports is a plan: its preview shows every argument too.
        many = {
            "project_id": 2,
            "all_of_type": True,
            "destination": {"type": "HTTP", "config": {"url": "https://eu.i.posthog.com/batch/", "token": "t0ken-new"}},
        }
        result = await client.call_tool("batch-export-update", many)
        assert not result.is_error, text(result)
        missing = missing_from(result.structured_content["preview"], many)
        if missing:
            problems["batch-export-update (many)"] = missing
    assert problems == {}, problems
    control.close()
