"""Memory: resident set size (VmRSS from /proc) of our stdio server as a user runs it, idle after
tools/list, then along 10,000 read calls. Growth is judged from the first checkpoint after warm-up
(caches, pools and lazy imports filled) to the last."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

from benchmarks.common import ROOT, Sandbox, children_running, export_id, rss_mb, server_env


async def run(sandbox: Sandbox, state: Path, calls: int, checkpoints: int = 10) -> dict[str, Any]:
    arguments = {"project_id": 1, "batch_export_id": export_id(sandbox)}
    parameters = StdioServerParameters(
        command=sys.executable, args=["-m", "server"], env=server_env(sandbox, state), cwd=str(ROOT)
    )
    every = max(1, calls // checkpoints)
    async with Client(parameters, read_timeout_seconds=60) as client:
        await client.list_tools()
        pids = children_running("-m", "server")
        assert len(pids) == 1, f"expected one server process, found {pids}"
        pid = pids[0]
        idle = rss_mb(pid)
        trail = []
        errors = 0
        for i in range(1, calls + 1):
            result = await client.call_tool("batch-export-get", arguments)
            errors += bool(result.is_error)
            if i % every == 0:
                trail.append({"calls": i, "rss_mb": rss_mb(pid)})
    warm, last = trail[0]["rss_mb"], trail[-1]["rss_mb"]
    return {
        "calls": calls,
        "errors": errors,
        "idle_rss_mb": idle,
        "warm_rss_mb": warm,
        "final_rss_mb": last,
        "growth_after_warmup_mb": round(last - warm, 1),
        "growth_after_warmup_pct": round((last - warm) / warm * 100, 1),
        "trail": trail,
    }
