"""Load on the streamable HTTP transport: our server in its own process (`serve --transport http`),
N concurrent `mcp.Client`s on loopback each making M read calls (or calling for a fixed time).

The clients run in this one Python process on the same cores as the server and the sandbox, so on
a small machine the figures are a floor for what the server alone could do."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import anyio
from mcp import Client

from benchmarks.common import ROOT, Sandbox, export_id, free_port, rss_mb, server_env, stop, summary, wait_until_up

# The load runs against a sandbox without its throttle, a PostHog with rate limiting off: the server's budget
# is told so, since what is measured is the transport, not PostHog's limits (tests/test_budget_replicas.py
# measures those).
UNTHROTTLED = "crud=1000000/minute;query=1000000/minute,1000"


class HttpServer:
    def __init__(self, sandbox: Sandbox, state: Path) -> None:
        self.port = free_port()
        command = [sys.executable, "-m", "server", "serve", "--transport", "http", "--port", str(self.port)]
        env = {**server_env(sandbox, state), "POSTHOG_MCP_POSTHOG_LIMITS": UNTHROTTLED}
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.url = f"http://127.0.0.1:{self.port}/mcp"

    def __enter__(self) -> HttpServer:
        wait_until_up(f"http://127.0.0.1:{self.port}/healthz", self.process)
        return self

    def __exit__(self, *exc: object) -> None:
        stop(self.process)

    @property
    def rss_mb(self) -> float:
        return rss_mb(self.process.pid)


async def drive(
    url: str,
    arguments: dict[str, Any],
    clients: int,
    calls_each: int | None,
    seconds: float | None,
    on_tick: Any = None,
) -> dict[str, Any]:
    """Run the clients; returns latencies, errors (exceptions and error results) and wall time."""
    latencies: list[float] = []
    errors: list[str] = []
    deadline = time.perf_counter() + seconds if seconds else None

    async def one_client() -> None:
        try:
            async with Client(url, read_timeout_seconds=30) as client:
                done = 0
                while (calls_each is None or done < calls_each) and (
                    deadline is None or time.perf_counter() < deadline
                ):
                    started = time.perf_counter()
                    try:
                        result = await client.call_tool("batch-export-get", arguments)
                        if result.is_error:
                            errors.append(str(result.content[0].text if result.content else "error")[:200])
                    except Exception as exc:  # counted, never hidden: the load figure needs zero of these
                        errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    latencies.append((time.perf_counter() - started) * 1000)
                    done += 1
        except Exception as exc:
            errors.append(f"client failed: {type(exc).__name__}: {exc}"[:200])

    started = time.perf_counter()
    async with anyio.create_task_group() as tasks:
        for _ in range(clients):
            tasks.start_soon(one_client)
        if on_tick is not None:
            tasks.start_soon(on_tick)
    wall = time.perf_counter() - started
    return {"latencies": latencies, "errors": errors, "wall_s": wall}


async def run(sandbox: Sandbox, state: Path, clients: int, calls_each: int) -> dict[str, Any]:
    arguments = {"project_id": 1, "batch_export_id": export_id(sandbox)}
    with HttpServer(sandbox, state) as server:
        await drive(server.url, arguments, 2, 20, None)  # warm-up
        rss_before = server.rss_mb
        outcome = await drive(server.url, arguments, clients, calls_each, None)
        rss_after = server.rss_mb
    total = len(outcome["latencies"])
    return {
        "clients": clients,
        "calls_each": calls_each,
        "calls": total,
        "errors": len(outcome["errors"]),
        "error_samples": outcome["errors"][:5],
        "calls_per_second": round(total / outcome["wall_s"], 1),
        "latency": summary(outcome["latencies"]),
        "server_rss_mb": {"before": rss_before, "after": rss_after},
    }


async def soak(
    sandbox: Sandbox, state: Path, clients: int, seconds: float, sample_every: float = 5.0
) -> dict[str, Any]:
    """Hold `clients` concurrent clients calling for `seconds`; sample the server's memory as it goes."""
    arguments = {"project_id": 1, "batch_export_id": export_id(sandbox)}
    with HttpServer(sandbox, state) as server:
        await drive(server.url, arguments, 2, 20, None)  # warm-up
        rss: list[dict[str, float]] = [{"t_s": 0.0, "rss_mb": server.rss_mb}]
        started = time.perf_counter()

        async def sample() -> None:
            while (elapsed := time.perf_counter() - started) < seconds:
                await anyio.sleep(min(sample_every, max(0.0, seconds - elapsed)))
                rss.append({"t_s": round(time.perf_counter() - started, 1), "rss_mb": server.rss_mb})

        outcome = await drive(server.url, arguments, clients, None, seconds, on_tick=sample)
    total = len(outcome["latencies"])
    settled = [point["rss_mb"] for point in rss if point["t_s"] >= min(10.0, seconds / 3)]
    return {
        "clients": clients,
        "seconds": seconds,
        "calls": total,
        "errors": len(outcome["errors"]),
        "error_samples": outcome["errors"][:5],
        "calls_per_second": round(total / outcome["wall_s"], 1),
        "latency": summary(outcome["latencies"]) if total else None,
        "rss_mb": rss,
        "rss_growth_after_warmup_mb": round(settled[-1] - settled[0], 1) if settled else None,
    }
