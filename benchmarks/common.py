"""What every benchmark shares: the machine, summary statistics, a sandbox in its own process,
the environment our server is spawned with, and resident memory read from /proc."""

from __future__ import annotations

import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import httpx

from posthog_sandbox import DEFAULT_API_KEY

ROOT = Path(__file__).resolve().parent.parent


def machine() -> dict[str, object]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gb = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory_gb = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    versions = {}
    for package in ("mcp", "httpx", "pydantic", "fastmcp"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gb": memory_gb,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": versions,
    }


def summary(samples_ms: Sequence[float]) -> dict[str, float]:
    """Median, p99, mean, min in milliseconds (p99 by the inclusive quantile method)."""
    ordered = sorted(samples_ms)
    p99 = statistics.quantiles(ordered, n=100, method="inclusive")[98] if len(ordered) > 1 else ordered[0]
    return {
        "n": len(ordered),
        "median_ms": round(statistics.median(ordered), 3),
        "p99_ms": round(p99, 3),
        "mean_ms": round(statistics.fmean(ordered), 3),
        "min_ms": round(ordered[0], 3),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_up(url: str, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode} before answering {url}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    raise RuntimeError(f"{url} did not answer within {timeout} s")


def stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


@dataclass
class Sandbox:
    base_url: str
    api_key: str = DEFAULT_API_KEY


@contextmanager
def sandbox_process() -> Iterator[Sandbox]:
    """The sandbox in its own process (clock frozen, throttle off), so it does not share a GIL
    with the code being measured."""
    port = free_port()
    command = [sys.executable, "-m", "server", "sandbox", "--port", str(port), "--speed", "0", "--no-throttle"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/_sandbox/clock", process)
        yield Sandbox(f"http://127.0.0.1:{port}")
    finally:
        stop(process)


def server_env(sandbox: Sandbox, state_dir: Path) -> dict[str, str]:
    """The environment a user would give our server, pointed at the sandbox."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTHOG_")}
    env.update(
        POSTHOG_PERSONAL_API_KEY=sandbox.api_key,
        POSTHOG_HOST=sandbox.base_url,
        POSTHOG_MCP_AUDIT_LOG=str(state_dir / "audit.jsonl"),
        POSTHOG_MCP_LOG_LEVEL="WARNING",
        PYTHONPATH=str(ROOT),
    )
    return env


@contextmanager
def state_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="phbe-bench-") as path:
        yield Path(path)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    raise RuntimeError(f"no VmRSS for pid {pid}")


def children_running(*arguments: str) -> list[int]:
    """Pids of this process's children whose arguments (after the program) are exactly `arguments`."""
    me, found = os.getpid(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")[:-1]
        except (OSError, IndexError, ValueError):
            continue
        if ppid == me and argv[1:] == list(arguments):
            found.append(int(entry.name))
    return found


def export_id(sandbox: Sandbox, name: str = "Hourly events to S3") -> str:
    page = httpx.get(
        f"{sandbox.base_url}/api/projects/1/batch_exports/", headers={"Authorization": f"Bearer {sandbox.api_key}"}
    ).json()
    return next(e["id"] for e in page["results"] if e["name"] == name)
