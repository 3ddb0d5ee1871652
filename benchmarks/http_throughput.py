"""HTTP throughput against a floor: N concurrent `mcp.Client`s x M calls of `batch-export-get` on our
`serve --transport http`, and the same on benchmarks/http_floor_server.py (a bare mcp SDK stateless HTTP
server whose one tool sends the same upstream GET). Both servers run in their own processes at the same
time; rounds alternate which one is driven first, and only one is driven at a time. The figure is the
median over rounds of ours/floor calls per second."""

from __future__ import annotations

import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, Sandbox, export_id, free_port, server_env, stop, wait_until_up
from benchmarks.http_load import HttpServer, drive

TARGET_RATIO = 0.9


class FloorHttpServer:
    def __init__(self, sandbox: Sandbox, state: Path) -> None:
        self.port = free_port()
        command = [sys.executable, "-m", "benchmarks.http_floor_server", "--port", str(self.port)]
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=server_env(sandbox, state), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.url = f"http://127.0.0.1:{self.port}/mcp"

    def __enter__(self) -> FloorHttpServer:
        try:
            wait_until_up(f"http://127.0.0.1:{self.port}/", self.process, timeout=120.0)  # 404 there: up
        except BaseException:
            stop(self.process)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self.process)


async def run(sandbox: Sandbox, state: Path, clients: int, calls_each: int, rounds: int) -> dict[str, Any]:
    arguments = {"project_id": 1, "batch_export_id": export_id(sandbox)}
    per_round: list[dict[str, Any]] = []
    with HttpServer(sandbox, state) as ours, FloorHttpServer(sandbox, state) as floor:
        servers = {"ours": ours.url, "floor": floor.url}
        for url in servers.values():
            await drive(url, arguments, 2, 20, None)  # warm-up
        for index in range(rounds):
            order = ("ours", "floor") if index % 2 == 0 else ("floor", "ours")
            figures: dict[str, Any] = {}
            for name in order:
                outcome = await drive(servers[name], arguments, clients, calls_each, None)
                figures[name] = {
                    "calls_per_second": round(len(outcome["latencies"]) / outcome["wall_s"], 1),
                    "errors": len(outcome["errors"]),
                    "error_samples": outcome["errors"][:3],
                }
            figures["ratio"] = round(figures["ours"]["calls_per_second"] / figures["floor"]["calls_per_second"], 3)
            per_round.append(figures)
    ratio = statistics.median(r["ratio"] for r in per_round)
    return {
        "clients": clients,
        "calls_each": calls_each,
        "rounds": rounds,
        "ours_calls_per_second": statistics.median(r["ours"]["calls_per_second"] for r in per_round),
        "floor_calls_per_second": statistics.median(r["floor"]["calls_per_second"] for r in per_round),
        "ratio": round(ratio, 2),
        "ratio_range": [min(r["ratio"] for r in per_round), max(r["ratio"] for r in per_round)],
        "errors": sum(r["ours"]["errors"] + r["floor"]["errors"] for r in per_round),
        "target_ratio": TARGET_RATIO,
        "within_target": ratio >= TARGET_RATIO,
        "per_round": per_round,
    }
