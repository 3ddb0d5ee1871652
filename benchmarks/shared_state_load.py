"""HTTP throughput with the shared confirmation ledger off (one process) and on (Redis), side by side.

Three set-ups of `serve --transport http`, each driven by N concurrent `mcp.Client`s on loopback:
- one process, ledger in process (no POSTHOG_MCP_REDIS_URL): the one-process figure;
- one process, ledger on a real redis-server;
- two replicas sharing the redis-server, the clients split between them.
Two workloads: reads (`batch-export-get`, which never touch the ledger) and confirmed writes
(`batch-export-pause` previewed then confirmed with its token: a spend in the ledger each), one
export per client so no confirmation races another.

Everything (clients, replicas, sandbox, Redis) shares this machine's cores, so figures are floors.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import anyio
import httpx
from mcp import Client

from benchmarks.common import ROOT, Sandbox, free_port, server_env, stop, summary, wait_until_up

CONFIRM_SECRET = "benchmark-replicas-share-this-confirm-secret"


@contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server") or "/usr/bin/redis-server"
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="phbe-bench-redis-") as folder:
        command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
        process = subprocess.Popen([*command, "--dir", folder], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                        sock.sendall(b"PING\r\n")
                        if sock.recv(16).startswith(b"+PONG"):
                            break
                except OSError:
                    time.sleep(0.05)
            else:
                raise RuntimeError("redis-server did not start")
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            stop(process)


@contextmanager
def replica(sandbox: Sandbox, state: Path, redis_url: str | None) -> Iterator[str]:
    port = free_port()
    env = server_env(sandbox, state) | {"POSTHOG_MCP_CONFIRM_SECRET": CONFIRM_SECRET}
    if redis_url:
        env["POSTHOG_MCP_REDIS_URL"] = redis_url
    else:
        env["POSTHOG_MCP_SINGLE_REPLICA"] = "true"  # the one-process setup: a secret without Redis is its own
    command = [sys.executable, "-m", "server", "serve", "--transport", "http", "--port", str(port)]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/healthz", process, timeout=120.0)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        stop(process)


def exports_for(sandbox: Sandbox, count: int) -> list[str]:
    """One export per client, created through the sandbox's API."""
    ids = []
    headers = {"Authorization": f"Bearer {sandbox.api_key}"}
    with httpx.Client(base_url=sandbox.base_url, headers=headers, timeout=10.0) as http:
        for n in range(count):
            body = {
                "name": f"Benchmark export {n} {time.monotonic_ns()}",
                "interval": "hour",
                "destination": {"type": "HTTP", "config": {"url": "https://us.i.posthog.com/batch/", "token": "t"}},
            }
            ids.append(http.post("/api/projects/1/batch_exports/", json=body).raise_for_status().json()["id"])
    return ids


async def drive(urls: list[str], exports: list[str], calls_each: int, writes: bool) -> dict[str, Any]:
    latencies: list[float] = []
    errors: list[str] = []

    async def one_client(n: int) -> None:
        arguments = {"project_id": 1, "batch_export_id": exports[n]}
        try:
            async with Client(urls[n % len(urls)], read_timeout_seconds=60) as client:
                for _ in range(calls_each):
                    started = time.perf_counter()
                    try:
                        if writes:
                            first = await client.call_tool("batch-export-pause", arguments)
                            token = (first.structured_content or {}).get("confirmation_token")
                            result = await client.call_tool(
                                "batch-export-pause", {**arguments, "confirmation_token": token}
                            )
                        else:
                            result = await client.call_tool("batch-export-get", arguments)
                        if result.is_error:
                            errors.append(str(result.content[0].text if result.content else "error")[:200])
                    except Exception as exc:  # counted, never hidden
                        errors.append(f"{type(exc).__name__}: {exc}"[:200])
                    latencies.append((time.perf_counter() - started) * 1000)
        except Exception as exc:
            errors.append(f"client failed: {type(exc).__name__}: {exc}"[:200])

    started = time.perf_counter()
    async with anyio.create_task_group() as tasks:
        for n in range(len(exports)):
            tasks.start_soon(one_client, n)
    wall = time.perf_counter() - started
    done = len(latencies)
    return {
        "operations": done,
        "errors": len(errors),
        "error_samples": errors[:3],
        "per_second": round(done / wall, 1) if wall else 0.0,
        "latency": summary(latencies) if latencies else None,
    }


async def run(sandbox: Sandbox, state: Path, clients: int, calls_each: int) -> dict[str, Any]:
    exports = exports_for(sandbox, clients)
    setups: dict[str, Any] = {}
    with redis_server() as redis_url:
        plans = {
            "one process, ledger in process": (1, None),
            "one process, ledger on Redis": (1, redis_url),
            "two replicas, ledger on Redis": (2, redis_url),
        }
        for label, (count, url) in plans.items():
            with ExitStack() as stack:
                urls = [stack.enter_context(replica(sandbox, state, url)) for _ in range(count)]
                await drive(urls, exports[:2], 5, writes=True)  # warm-up
                setups[label] = {
                    "replicas": count,
                    "reads": await drive(urls, exports, calls_each, writes=False),
                    "confirmed_writes": await drive(urls, exports, max(1, calls_each // 4), writes=True),
                }
    base = setups["one process, ledger in process"]
    for figures in setups.values():
        for kind in ("reads", "confirmed_writes"):
            floor = base[kind]["per_second"]
            figures[kind]["vs_one_process"] = round(figures[kind]["per_second"] / floor, 2) if floor else None
    return {"clients": clients, "calls_each": calls_each, "setups": setups}
