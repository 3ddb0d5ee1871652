"""The sandbox at a real company's size: `sandbox --exports 500` and `--exports 2000` against the default
five-export seed, side by side. Each sandbox runs in its own process (clock frozen, throttle off), started the
way a user starts it.

- start: from spawning the process to the first answer of `/_sandbox/clock` (seeding included);
- list page: `GET batch_exports/?limit=100` (each export carries its 10 latest runs);
- runs page: the first page (100) of an hourly export's runs with `after=-30d`, and of the busiest export
  (the shortest interval) with the same window;
- logs page: 100 log lines of that busiest export.

Medians of repeated requests over one kept-alive httpx connection, after one warm-up request each."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from benchmarks.common import ROOT, free_port, stop, summary, wait_until_up
from posthog_sandbox import DEFAULT_API_KEY

INTERVAL_ORDER = ["every 5 minutes", "every 15 minutes", "hour", "day", "week"]
TARGET_START_SECONDS = 5.0


@contextmanager
def _sandbox(exports: int | None) -> Iterator[tuple[str, float]]:
    port = free_port()
    command = [sys.executable, "-m", "server", "sandbox", "--port", str(port), "--speed", "0", "--no-throttle"]
    if exports is not None:
        command += ["--exports", str(exports)]
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until_up(f"http://127.0.0.1:{port}/_sandbox/clock", process, timeout=120)
        yield f"http://127.0.0.1:{port}", time.perf_counter() - started
    finally:
        stop(process)


def _timed(client: httpx.Client, url: str, requests: int) -> dict[str, float]:
    client.get(url).raise_for_status()  # warm-up
    samples = []
    for _ in range(requests):
        began = time.perf_counter()
        client.get(url).raise_for_status()
        samples.append((time.perf_counter() - began) * 1000)
    return summary(samples)


def _measure(exports: int | None, requests: int) -> dict[str, Any]:
    with _sandbox(exports) as (base_url, start_seconds):
        headers = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
        with httpx.Client(base_url=base_url, headers=headers, timeout=120) as client:
            page = client.get("/api/projects/1/batch_exports/?limit=100").json()
            found = list(page["results"])
            while page["next"] and len(found) < 2000:
                page = client.get(page["next"]).json()
                found += page["results"]
            hourly = next(e for e in found if e["interval"] == "hour" and not e["paused"])
            busiest = min(found, key=lambda e: (INTERVAL_ORDER.index(e["interval"]), e["paused"]))
            runs_of = "/api/projects/1/batch_exports/{}/runs/?after=-30d"
            return {
                "exports": len(found),
                "start_seconds": round(start_seconds, 2),
                "list_page": _timed(client, "/api/projects/1/batch_exports/?limit=100", requests),
                "runs_page_hourly": _timed(client, runs_of.format(hourly["id"]), requests),
                "runs_page_busiest": _timed(client, runs_of.format(busiest["id"]), requests),
                "busiest_interval": busiest["interval"],
                "logs_page_busiest": _timed(
                    client, f"/api/projects/1/batch_exports/{busiest['id']}/logs/?limit=100", requests
                ),
            }


def seed_seconds(exports: int | None) -> float:
    """Building the sandbox's state in this process (seeding included), without the process start."""
    from posthog_sandbox import SandboxConfig
    from posthog_sandbox.state import Sandbox

    began = time.perf_counter()
    Sandbox(SandboxConfig(exports=exports, throttle=False)).close()
    return round(time.perf_counter() - began, 2)


def run(requests: int = 20, exports: int = 500, largest: int = 2000) -> dict[str, Any]:
    load_before = os.getloadavg()[0]
    default = _measure(None, requests)
    large = _measure(exports, requests)
    most = _measure(largest, requests)
    default["seed_seconds"], large["seed_seconds"] = seed_seconds(None), seed_seconds(exports)
    most["seed_seconds"] = seed_seconds(largest)
    return {
        "load_average": round((load_before + os.getloadavg()[0]) / 2, 1),
        "cores": os.cpu_count(),
        "requests": requests,
        "default": default,
        "large": large,
        "largest": most,
        "target_start_seconds": TARGET_START_SECONDS,
        "start_within_target": max(large["start_seconds"], most["start_seconds"]) <= TARGET_START_SECONDS,
    }


def markdown(result: dict[str, Any]) -> list[str]:
    d, big = result["default"], result["large"]
    most = result.get("largest")
    sizes = [d, big, *([most] if most else [])]

    def row(name: str, key: str) -> str:
        cells = " | ".join(f"{s[key]['median_ms']} ms | {s[key]['p99_ms']} ms" for s in sizes)
        return f"| {name} | {cells} |"

    def once(name: str, key: str) -> str:
        return f"| {name} | " + " | ".join(f"{s.get(key, '-')} s | " for s in sizes) + "|"

    heads = [f"default seed ({d['exports']} exports in project 1)", *(f"{s['exports']} exports" for s in sizes[1:])]
    return [
        f"## The sandbox at size (`sandbox --exports {' / '.join(str(s['exports']) for s in sizes[1:])}` "
        "vs the default seed)",
        "",
        f"Own process each, clock frozen; medians of {result['requests']} requests after a warm-up "
        "([sandbox_scale.py](sandbox_scale.py)).",
        "",
        "| | " + " | ".join(f"{h} median | p99" for h in heads) + " |",
        "|---|" + "---:|---:|" * len(sizes),
        once("start (spawn to first answer)", "start_seconds"),
        once("seeding alone, in process", "seed_seconds"),
        row("list page (limit=100; each export with its 10 latest runs)", "list_page"),
        row("runs page, hourly export, after=-30d", "runs_page_hourly"),
        row(f"runs page, busiest export ({big['busiest_interval']}), after=-30d", "runs_page_busiest"),
        row("logs page (100 lines), busiest export", "logs_page_busiest"),
        "",
        f"Start within {result['target_start_seconds']} s: {'yes' if result['start_within_target'] else 'no'}"
        + (
            f" (load average {result['load_average']} on {result['cores']} cores during the run: the machine was shared, "
            "so compare the columns, not the absolute figures)."
            if "load_average" in result
            else "."
        ),
        "",
    ]


if __name__ == "__main__":
    import json

    print(json.dumps(run(requests=int(sys.argv[1]) if len(sys.argv) > 1 else 20), indent=2))
