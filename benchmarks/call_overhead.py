"""Per-call overhead: a read tool (batch-export-get) through an in-process `mcp.Client`, against the
same GET sent straight to the sandbox with httpx (and its JSON decoded), interleaved call by call
so both see the same machine and sandbox at the same moment. Measured in both protocol eras."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
from mcp import Client

from benchmarks.common import Sandbox, export_id, summary
from server.app import open_app
from server.config import Settings

TARGET_ADDED_MS = 2.0


async def run(sandbox: Sandbox, state: Path, calls: int, warmup: int = 200) -> dict[str, Any]:
    target = export_id(sandbox)
    arguments = {"project_id": 1, "batch_export_id": target}
    url = f"/api/projects/1/batch_exports/{target}/"
    settings = Settings(api_key=sandbox.api_key, host=sandbox.base_url, audit_log=state / "audit.jsonl")
    results: dict[str, Any] = {"calls": calls, "target_added_median_ms": TARGET_ADDED_MS}
    headers = {"Authorization": f"Bearer {sandbox.api_key}", "Accept": "application/json"}
    async with open_app(settings) as app, httpx.AsyncClient(base_url=sandbox.base_url, headers=headers) as http:
        for mode in ("auto", "legacy"):
            async with Client(app.server, mode=mode) as client:
                direct: list[float] = []
                through: list[float] = []
                for i in range(warmup + calls):
                    started = time.perf_counter()
                    response = await http.get(url)
                    response.raise_for_status()
                    response.json()
                    middle = time.perf_counter()
                    result = await client.call_tool("batch-export-get", arguments)
                    ended = time.perf_counter()
                    assert not result.is_error, result
                    if i >= warmup:
                        direct.append((middle - started) * 1000)
                        through.append((ended - middle) * 1000)
                d, t = summary(direct), summary(through)
                added = round(t["median_ms"] - d["median_ms"], 3)
                results[mode] = {
                    "direct_httpx": d,
                    "through_mcp": t,
                    "added_median_ms": added,
                    "added_p99_ms": round(t["p99_ms"] - d["p99_ms"], 3),
                    "within_target": added < TARGET_ADDED_MS,
                }
    return results
