"""Cold start: from spawning the stdio server to the answer of tools/list, median of repeated runs,
against the floor (benchmarks/floor_server.py) spawned the same way, runs interleaved.

Ours includes its call to PostHog (GET /api/personal_api_keys/@current/ to learn the key's scopes),
which tools/list waits for, answered here by the local sandbox over loopback."""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

from benchmarks.common import ROOT, Sandbox, server_env

TARGET_RATIO = 1.5


async def time_to_tools_list(parameters: StdioServerParameters) -> float:
    started = time.perf_counter()
    async with Client(parameters, read_timeout_seconds=60) as client:
        tools = (await client.list_tools()).tools
        elapsed = time.perf_counter() - started
    assert tools, "tools/list came back empty"
    return elapsed * 1000


async def run(sandbox: Sandbox, state: Path, runs: int) -> dict[str, Any]:
    env = server_env(sandbox, state)
    ours = StdioServerParameters(command=sys.executable, args=["-m", "server"], env=env, cwd=str(ROOT))
    floor = StdioServerParameters(
        command=sys.executable, args=["-m", "benchmarks.floor_server"], env=env, cwd=str(ROOT)
    )
    await time_to_tools_list(ours)  # warm the file-system cache for both before timing
    await time_to_tools_list(floor)
    samples: dict[str, list[float]] = {"ours": [], "floor": []}
    for _ in range(runs):
        samples["ours"].append(await time_to_tools_list(ours))
        samples["floor"].append(await time_to_tools_list(floor))
    ours_ms, floor_ms = statistics.median(samples["ours"]), statistics.median(samples["floor"])
    return {
        "runs": runs,
        "ours_median_ms": round(ours_ms, 1),
        "floor_median_ms": round(floor_ms, 1),
        "ratio": round(ours_ms / floor_ms, 2),
        "target_ratio": TARGET_RATIO,
        "within_target": ours_ms / floor_ms <= TARGET_RATIO,
        "samples_ms": {k: [round(v, 1) for v in vs] for k, vs in samples.items()},
    }
