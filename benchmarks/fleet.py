"""Issue 19, the whole fleet in one answer: each answer tool at 5, 500 and 2,000 exports, through a real MCP client
against the sandbox with PostHog's throttle on: PostHog requests one call makes, bytes of its answer, seconds.

Also the whole of batch-export-list followed through its continuations (calls, requests, every export once).
The figures go to benchmarks/results.md; tests/test_fleet_answers.py checks the same answers against the
sandbox's own state.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import mcp.types as types
from mcp import Client

from posthog_sandbox import DEFAULT_API_KEY, SandboxConfig, SandboxKey, start_sandbox
from posthog_sandbox.control import SandboxControl
from server.app import open_app
from server.config import Settings
from tools.continuation import BUDGET

SIZES = (5, 500, 2000)
ALL_SCOPES = ["batch_export:read", "batch_export:write", "query:read", "activity_log:read", "project:read"]
READER = "phx_bench_reader"  # batch_export:read only


def _text(result: types.CallToolResult) -> str:
    return "".join(b.text for b in result.content if isinstance(b, types.TextContent))


async def _measure(client: Client, control: SandboxControl, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    control.clear_requests()
    started = time.perf_counter()
    result = await client.call_tool(tool, arguments)
    seconds = time.perf_counter() - started
    requests = control.requests()
    text = _text(result)
    return {
        "tool": tool,
        "arguments": {k: v for k, v in arguments.items() if k != "project_id"},
        "requests": len(requests),
        "throttled": sum(1 for r in requests if r.get("status") == 429),
        "bytes": len(text.encode()),
        "seconds": round(seconds, 2),
        "error": text[:200] if result.is_error else None,
        "cut": '"omitted"' in text,
    }


async def _follow_list(client: Client, control: SandboxControl) -> dict[str, Any]:
    import json

    control.clear_requests()
    started = time.perf_counter()
    arguments: dict[str, Any] = {"project_id": 1}
    seen: list[str] = []
    calls = largest = 0
    while calls < 1000:
        result = await client.call_tool("batch-export-list", arguments)
        text = _text(result)
        calls += 1
        largest = max(largest, len(text.encode()))
        answer = json.loads(text)
        seen += [e["id"] for e in answer["results"]]
        if "omitted" not in answer:
            break
        arguments = answer["omitted"]["call"]["arguments"]
    return {
        "calls": calls,
        "requests": len(control.requests()),
        "exports_seen": len(seen),
        "each_once": len(seen) == len(set(seen)),
        "largest_bytes": largest,
        "seconds": round(time.perf_counter() - started, 1),
    }


async def _size(size: int, audit: Path) -> dict[str, Any]:
    keys = [SandboxKey(DEFAULT_API_KEY, ALL_SCOPES), SandboxKey(READER, ["batch_export:read"])]
    sandbox = start_sandbox(SandboxConfig(exports=size, keys=keys))
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    try:
        rows = []
        exports = control.api("GET", "1/batch_exports/", params={"limit": 1}).json()["results"]
        one = exports[0]["id"]
        for api_key, who in ((DEFAULT_API_KEY, "key with query:read"), (READER, "batch_export:read only")):
            settings = Settings(api_key=api_key, host=sandbox.base_url, audit_log=audit, toolsets=("all",))
            async with open_app(settings) as app, Client(app.server, read_timeout_seconds=120) as client:
                calls: list[tuple[str, dict[str, Any]]] = [
                    ("batch-export-health", {"project_id": 1}),
                    ("batch-export-errors", {"project_id": 1}),
                ]
                if api_key == DEFAULT_API_KEY:
                    calls += [
                        ("batch-export-health", {"project_id": 1, "state": "all"}),
                        ("batch-export-changes", {"project_id": 1}),
                        ("batch-export-gaps", {"project_id": 1, "batch_export_id": one}),
                        ("batch-export-list", {"project_id": 1}),
                        ("batch-export-runs-list", {"project_id": 1, "batch_export_id": one, "limit": 100}),
                    ]
                for tool, arguments in calls:
                    row = await _measure(client, control, tool, arguments)
                    row["key"] = who
                    rows.append(row)
                if api_key == DEFAULT_API_KEY:
                    followed = await _follow_list(client, control)
        return {"exports": size, "answers": rows, "list_followed": followed}
    finally:
        control.close()
        sandbox.close()


async def run(sandbox: Any = None, settings_dir: Any = None) -> dict[str, Any]:
    folder = Path(settings_dir) if settings_dir else Path(tempfile.mkdtemp(prefix="pbe-fleet-"))
    audit = folder / "fleet-audit.jsonl"
    sizes = [await _size(size, audit) for size in SIZES]
    within = all(r["bytes"] <= BUDGET for s in sizes for r in s["answers"])
    no_429 = all(r["throttled"] == 0 for s in sizes for r in s["answers"])
    return {"sizes": sizes, "all_within_budget": within, "no_429": no_429}


def fleet_markdown(f: dict[str, Any]) -> list[str]:
    out = [
        "## The whole fleet in one answer (issue 19)",
        "",
        "Each answer tool once at 5, 500 and 2,000 exports, through `mcp.Client`, PostHog's throttle on "
        "([fleet.py](fleet.py); checked against the sandbox's state in tests/test_fleet_answers.py). *requests*: "
        "PostHog requests the one call made; *bytes*: its answer's text; *cut*: it names a continuation call.",
        "",
        "| exports | tool | arguments | key | requests | bytes | seconds | cut |",
        "|---:|---|---|---|---:|---:|---:|:-:|",
    ]
    for size in f["sizes"]:
        for row in size["answers"]:
            arguments = ", ".join(f"{k}={v}" for k, v in row["arguments"].items() if k != "batch_export_id")
            out.append(
                f"| {size['exports']} | {row['tool']} | {arguments or '-'} | {row['key']} | {row['requests']} | "
                f"{row['bytes']} | {row['seconds']} | {'yes' if row['cut'] else 'no'} |"
            )
    out += [
        "",
        "Following batch-export-list's continuation to the end:",
        "",
        "| exports | calls | PostHog requests | exports seen | each once | largest answer | seconds |",
        "|---:|---:|---:|---:|:-:|---:|---:|",
    ]
    for size in f["sizes"]:
        followed = size["list_followed"]
        out.append(
            f"| {size['exports']} | {followed['calls']} | {followed['requests']} | {followed['exports_seen']} | "
            f"{'yes' if followed['each_once'] else 'NO'} | {followed['largest_bytes']} | {followed['seconds']} |"
        )
    out += [
        "",
        f"Every answer within {BUDGET // 1000} KB: {'yes' if f['all_within_budget'] else 'NO'}; "
        f"no 429 from the sandbox: {'yes' if f['no_429'] else 'NO'}.",
        "",
    ]
    return out
