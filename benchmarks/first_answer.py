"""Time to first answer over stdio: from spawning the server to the first byte of its answer to the
first message a client sends, for both openings clients use:

- `server/discover` (2026-07-28; `@ai-sdk/mcp` sends it and, after 1 s without an answer, `initialize`
  on the same pipe, which the server then accepts);
- `initialize` (the handshake era).

Three servers, spawned the same way, runs interleaved: ours against PostHog (here the local sandbox in
its own process), ours with `--sandbox` (the sandbox in-process), and the floor (benchmarks/floor_server.py,
a one-tool mcp SDK server). The message is written the moment the process exists, as clients do, so the
figure includes interpreter start, imports and everything the server does before it answers. Ours
answers from its settings alone; the key's scopes (and the sandbox) load behind the first answer.

Also: `python -X importtime` of what our first answer needs (`import server.cli.commands, server.stdio`) against
`import mcp.server, mcp.server.stdio`, the cumulative microseconds of the top-level imports, median of
the same number of runs."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.common import ROOT, Sandbox, server_env

BUDGET_MS = 1000.0  # @ai-sdk/mcp's server/discover timeout (it then sends initialize, which we accept)
TARGET_RATIO = 1.2  # ours against the floor
DISCOVER = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "server/discover",
    "params": {
        "_meta": {
            "io.modelcontextprotocol/protocolVersion": "2026-07-28",
            "io.modelcontextprotocol/clientInfo": {"name": "first-answer-bench", "version": "0"},
            "io.modelcontextprotocol/clientCapabilities": {},
        }
    },
}
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-11-25",
        "capabilities": {},
        "clientInfo": {"name": "first-answer-bench", "version": "0"},
    },
}
SERVERS = {
    "ours": ["-m", "server"],
    "ours_sandbox": ["-m", "server", "serve", "--sandbox"],
    "floor": ["-m", "benchmarks.floor_server"],
}
OURS_IMPORTS = "import server.cli.commands, server.stdio"
FLOOR_IMPORTS = "import mcp.server, mcp.server.stdio"


def cpu_ms(pid: int) -> float:
    """CPU time (user + system) a live process has used so far, from /proc (10 ms resolution)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def time_to_answer(arguments: list[str], env: dict[str, str], message: dict[str, Any]) -> float:
    """Milliseconds from Popen to the answer line (the answer must carry a result, not an error)."""
    return answer_costs(arguments, env, message)[0]


def answer_costs(arguments: list[str], env: dict[str, str], message: dict[str, Any]) -> tuple[float, float]:
    """(wall milliseconds from Popen to the answer line, CPU milliseconds the process spent until then).

    On a machine shared with other work the wall time swings with the load; the CPU time is the work
    itself, so it compares the servers where the wall time cannot."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [sys.executable, *arguments],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(json.dumps(message).encode() + b"\n")
        process.stdin.flush()
        line = process.stdout.readline()
        elapsed = (time.perf_counter() - started) * 1000
        spent = cpu_ms(process.pid)
        answer = json.loads(line)
        if "result" not in answer:
            raise RuntimeError(f"{arguments} answered {message['method']} with {line[:300]!r}")
        return elapsed, spent
    finally:
        process.kill()
        process.wait(10)


def import_microseconds(statement: str, env: dict[str, str]) -> int:
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement], cwd=ROOT, env=env, capture_output=True, text=True
    )
    top = statement.removeprefix("import ").split(",")
    total = 0
    for line in done.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\S+)$", line)
        if match and match.group(2) in {name.strip() for name in top}:
            total += int(match.group(1))
    return total


async def run(sandbox: Sandbox, state: Path, runs: int) -> dict[str, Any]:
    env = server_env(sandbox, state)
    openings = {"server/discover": DISCOVER, "initialize": INITIALIZE}
    for arguments in SERVERS.values():  # warm the file-system cache before timing
        time_to_answer(arguments, env, INITIALIZE)
    samples: dict[str, dict[str, list[float]]] = {opening: {name: [] for name in SERVERS} for opening in openings}
    cpu: dict[str, dict[str, list[float]]] = {opening: {name: [] for name in SERVERS} for opening in openings}
    imports: dict[str, list[int]] = {"ours": [], "floor": []}
    for _ in range(runs):
        for opening, message in openings.items():
            for name, arguments in SERVERS.items():
                wall, spent = answer_costs(arguments, env, message)
                samples[opening][name].append(wall)
                cpu[opening][name].append(spent)
        imports["ours"].append(import_microseconds(OURS_IMPORTS, env))
        imports["floor"].append(import_microseconds(FLOOR_IMPORTS, env))
    result: dict[str, Any] = {"runs": runs, "budget_ms": BUDGET_MS, "target_ratio": TARGET_RATIO}
    for opening, by_server in samples.items():
        floor = statistics.median(by_server["floor"])
        ours, sandboxed = statistics.median(by_server["ours"]), statistics.median(by_server["ours_sandbox"])
        result[opening] = {
            "ours_median_ms": round(ours, 1),
            "ours_sandbox_median_ms": round(sandboxed, 1),
            "floor_median_ms": round(floor, 1),
            "ratio": round(ours / floor, 2),
            "sandbox_ratio": round(sandboxed / floor, 2),
            "ours_max_ms": round(max(by_server["ours"]), 1),
            "within_target": ours <= TARGET_RATIO * floor and sandboxed <= TARGET_RATIO * floor,
            "cpu_median_ms": {k: round(statistics.median(vs), 1) for k, vs in cpu[opening].items()},
            "cpu_ratio": round(statistics.median(cpu[opening]["ours"]) / statistics.median(cpu[opening]["floor"]), 2),
            "cpu_sandbox_ratio": round(
                statistics.median(cpu[opening]["ours_sandbox"]) / statistics.median(cpu[opening]["floor"]), 2
            ),
            "within_budget": ours <= BUDGET_MS,
            "samples_ms": {k: [round(v, 1) for v in vs] for k, vs in by_server.items()},
        }
    result["import_ms"] = {
        "server.cli.commands + server.stdio": round(statistics.median(imports["ours"]) / 1000, 1),
        "mcp.server + stdio": round(statistics.median(imports["floor"]) / 1000, 1),
    }
    return result
