"""Run every benchmark on the local sandbox and write benchmarks/results.json and results.md.

    uv run --group bench python -m benchmarks            # the full run (a few minutes)
    uv run --group bench python -m benchmarks --quick    # fewer repetitions, same shape
    uv run --group bench python -m benchmarks --only context_cost,cold_start

Benchmarks report; they never fail on a slow machine. Targets are printed next to the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from benchmarks import (
    call_overhead,
    cold_start,
    context_cost,
    first_answer,
    fleet,
    http_load,
    http_throughput,
    memory,
    report,
    sandbox_scale,
    scenarios,
    shared_state_load,
)
from benchmarks.common import machine, sandbox_process, state_dir

HERE = Path(__file__).resolve().parent
NAMES = (
    "context_cost",
    "scenarios",
    "fleet",
    "cold_start",
    "first_answer",
    "call_overhead",
    "memory",
    "http_load",
    "http_throughput",
    "soak",
    "shared_state",
    "sandbox_scale",
)
FULL = {
    "cold_runs": 15,
    "first_answer_runs": 15,
    "overhead_calls": 2000,
    "memory_calls": 10_000,
    "load_clients": 20,
    "load_calls": 100,
    "throughput_clients": 20,
    "throughput_calls": 50,
    "throughput_rounds": 3,
    "soak_clients": 50,
    "soak_seconds": 60,
    "shared_state_clients": 10,
    "shared_state_calls": 40,
    "scale_requests": 20,
}
QUICK = {
    "cold_runs": 5,
    "first_answer_runs": 5,
    "overhead_calls": 300,
    "memory_calls": 2000,
    "load_clients": 10,
    "load_calls": 20,
    "throughput_clients": 10,
    "throughput_calls": 20,
    "throughput_rounds": 1,
    "soak_clients": 10,
    "soak_seconds": 10,
    "shared_state_clients": 4,
    "shared_state_calls": 12,
    "scale_requests": 5,
}


async def run_all(only: tuple[str, ...], sizes: dict[str, int]) -> dict[str, Any]:
    results: dict[str, Any] = {}
    if "sandbox_scale" in only:  # starts its own sandboxes, in processes of their own
        print("-- sandbox_scale", file=sys.stderr, flush=True)
        started = time.perf_counter()
        results["sandbox_scale"] = await anyio.to_thread.run_sync(sandbox_scale.run, sizes["scale_requests"])
        results["sandbox_scale"]["seconds"] = round(time.perf_counter() - started, 1)
    only = tuple(name for name in only if name != "sandbox_scale")
    if not only:
        return results
    with sandbox_process() as sandbox, state_dir() as state:
        for name in only:
            print(f"-- {name}", file=sys.stderr, flush=True)
            started = time.perf_counter()
            if name == "context_cost":
                results[name] = await context_cost.run(sandbox, state)
            elif name == "scenarios":
                results[name] = await scenarios.run(sandbox, state)
            elif name == "fleet":
                results[name] = await fleet.run(sandbox, state)
            elif name == "cold_start":
                results[name] = await cold_start.run(sandbox, state, sizes["cold_runs"])
            elif name == "first_answer":
                results[name] = await first_answer.run(sandbox, state, sizes["first_answer_runs"])
            elif name == "http_throughput":
                results[name] = await http_throughput.run(
                    sandbox, state, sizes["throughput_clients"], sizes["throughput_calls"], sizes["throughput_rounds"]
                )
            elif name == "call_overhead":
                results[name] = await call_overhead.run(sandbox, state, sizes["overhead_calls"])
            elif name == "memory":
                results[name] = await memory.run(sandbox, state, sizes["memory_calls"])
            elif name == "http_load":
                results[name] = await http_load.run(sandbox, state, sizes["load_clients"], sizes["load_calls"])
            elif name == "soak":
                results[name] = await http_load.soak(sandbox, state, sizes["soak_clients"], sizes["soak_seconds"])
            elif name == "shared_state":
                clients, calls = sizes["shared_state_clients"], sizes["shared_state_calls"]
                results[name] = await shared_state_load.run(sandbox, state, clients, calls)
            results[name]["seconds"] = round(time.perf_counter() - started, 1)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    parser.add_argument("--only", help=f"comma-separated subset of: {', '.join(NAMES)}")
    parser.add_argument("--out", type=Path, default=HERE, help="directory for results.json and results.md")
    args = parser.parse_args(argv)
    only = tuple(n.strip() for n in args.only.split(",")) if args.only else NAMES
    unknown = sorted(set(only) - set(NAMES))
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    sizes = QUICK if args.quick else FULL
    document: dict[str, Any] = {
        "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": "uv run --group bench python -m benchmarks" + (" --quick" if args.quick else ""),
        "machine": machine(),
        "sizes": sizes,
    }
    path = args.out / "results.json"
    if args.only and path.exists():  # a partial run updates its sections and keeps the others
        previous = json.loads(path.read_text())
        document = {**previous, **document, "results": previous.get("results", {})}
    document.setdefault("results", {}).update(anyio.run(run_all, only, sizes))
    args.out.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2) + "\n")
    (args.out / "results.md").write_text(report.markdown(document))
    print(report.headline(document))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
