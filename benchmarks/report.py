"""results.json as Markdown: one table per benchmark, the machine and the command on top."""

from __future__ import annotations

from typing import Any


def _ok(flag: bool | None) -> str:
    return "n/a" if flag is None else ("yes" if flag else "**no**")


def _kb(size: int) -> str:
    return f"{size / 1024:.1f} KB"


def headline(doc: dict[str, Any]) -> str:
    r = doc["results"]
    parts = []
    if "context_cost" in r:
        c = r["context_cost"]
        parts.append(f"tools/list {_kb(c['ours']['total_bytes'])} (FastMCP {c['ratio_fastmcp_to_ours']}x)")
    if "scenarios" in r:
        parts.append(f"intents on target: {_ok(r['scenarios']['all_met'])}")
    if "cold_start" in r:
        parts.append(f"cold start {r['cold_start']['ratio']}x floor")
    if "first_answer" in r:
        parts.append(f"first answer {r['first_answer']['server/discover']['ours_median_ms']} ms")
    if "http_throughput" in r:
        parts.append(f"HTTP {r['http_throughput']['ratio']}x floor")
    if "call_overhead" in r:
        parts.append(f"+{r['call_overhead']['auto']['added_median_ms']} ms/call")
    if "memory" in r:
        parts.append(f"RSS {r['memory']['idle_rss_mb']} -> {r['memory']['final_rss_mb']} MB")
    if "http_load" in r:
        h = r["http_load"]
        parts.append(f"HTTP {h['calls_per_second']} calls/s, {h['errors']} errors")
    if "sandbox_scale" in r:
        big = r["sandbox_scale"]["large"]
        parts.append(
            f"sandbox {big['exports']} exports: start {big['start_seconds']} s, list {big['list_page']['median_ms']} ms"
        )
    if "soak" in r:
        parts.append(f"soak {r['soak']['clients']}x{r['soak']['seconds']}s, {r['soak']['errors']} errors")
    return "; ".join(parts)


def markdown(doc: dict[str, Any]) -> str:
    m = doc["machine"]
    packages = ", ".join(f"{k} {v}" for k, v in m["packages"].items() if v)
    out = [
        "# Benchmark results",
        "",
        f"Generated {doc['generated_at']} by `{doc['command']}`.",
        "",
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gb']} GB RAM, {m['os']}, Python {m['python']} ({packages}).",
        "",
        "How each figure is measured: [README](README.md). Everything ran on loopback against the local sandbox.",
        "",
    ]
    r = doc["results"]
    if "context_cost" in r:
        out += _context(r["context_cost"])
    if "scenarios" in r:
        out += _scenarios(r["scenarios"])
    if "cold_start" in r:
        c = r["cold_start"]
        out += [
            "## Cold start (spawn to tools/list answered, stdio)",
            "",
            "| | median | runs |",
            "|---|---:|---:|",
            f"| our server (`python -m server`) | {c['ours_median_ms']} ms | {c['runs']} |",
            f"| floor: one-tool mcp SDK server | {c['floor_median_ms']} ms | {c['runs']} |",
            "",
            f"Ratio **{c['ratio']}x** (target <= {c['target_ratio']}x: {_ok(c['within_target'])}).",
            "",
        ]
    if "first_answer" in r:
        out += _first_answer(r["first_answer"])
    if "call_overhead" in r:
        o = r["call_overhead"]
        out += [
            "## Per-call overhead (batch-export-get, in-process mcp.Client vs the same GET with httpx)",
            "",
            "| era | httpx median | httpx p99 | MCP median | MCP p99 | added median | added p99 | < 2 ms |",
            "|---|---:|---:|---:|---:|---:|---:|---|",
        ]
        for mode in ("auto", "legacy"):
            if mode in o:
                e = o[mode]
                d, t = e["direct_httpx"], e["through_mcp"]
                out.append(
                    f"| {mode} | {d['median_ms']} ms | {d['p99_ms']} ms | {t['median_ms']} ms | {t['p99_ms']} ms | "
                    f"**{e['added_median_ms']} ms** | {e['added_p99_ms']} ms | {_ok(e['within_target'])} |"
                )
        out += ["", f"{o['calls']} calls each, interleaved, after a warm-up.", ""]
    if "memory" in r:
        mem = r["memory"]
        trail = ", ".join(f"{p['calls']}: {p['rss_mb']}" for p in mem["trail"])
        out += [
            "## Memory (stdio server, VmRSS)",
            "",
            "| idle | after warm-up | after all calls | growth after warm-up | calls | errors |",
            "|---:|---:|---:|---:|---:|---:|",
            f"| {mem['idle_rss_mb']} MB | {mem['warm_rss_mb']} MB | {mem['final_rss_mb']} MB | "
            f"{mem['growth_after_warmup_mb']} MB ({mem['growth_after_warmup_pct']}%) | {mem['calls']} | {mem['errors']} |",
            "",
            f"Trail (calls: MB): {trail}.",
            "",
        ]
    if "http_load" in r:
        h = r["http_load"]
        lat = h["latency"]
        out += [
            "## Load on streamable HTTP (`serve --transport http`, loopback)",
            "",
            "| clients x calls | calls/s | p50 | p99 | errors | server RSS before / after |",
            "|---|---:|---:|---:|---:|---|",
            f"| {h['clients']} x {h['calls_each']} | {h['calls_per_second']} | {lat['median_ms']} ms | {lat['p99_ms']} ms | "
            f"{h['errors']} | {h['server_rss_mb']['before']} / {h['server_rss_mb']['after']} MB |",
            "",
        ]
    if "http_throughput" in r:
        out += _throughput(r["http_throughput"])
    if "soak" in r:
        s = r["soak"]
        lat = s["latency"] or {"median_ms": "-", "p99_ms": "-"}
        rss = ", ".join(f"{p['t_s']:g}s: {p['rss_mb']}" for p in s["rss_mb"])
        out += [
            "## Soak on streamable HTTP",
            "",
            "| clients | seconds | calls | calls/s | p50 | p99 | errors | RSS growth after warm-up |",
            "|---:|---:|---:|---:|---:|---:|---:|---:|",
            f"| {s['clients']} | {s['seconds']} | {s['calls']} | {s['calls_per_second']} | {lat['median_ms']} ms | "
            f"{lat['p99_ms']} ms | {s['errors']} | {s['rss_growth_after_warmup_mb']} MB |",
            "",
            f"Server RSS over time (MB): {rss}.",
            "",
        ]
    if "shared_state" in r:
        out += _shared_state(r["shared_state"])
    if "sandbox_scale" in r:
        from benchmarks.sandbox_scale import markdown as scale_markdown

        out += scale_markdown(r["sandbox_scale"])
    return "\n".join(out)


def _scenarios(s: dict[str, Any]) -> list[str]:
    out = [
        "## Operator intents (issue 11)",
        "",
        "Each intent played through `mcp.Client` as a model would ([tests/scenarios](../tests/scenarios/intents.py)); "
        "*right* is checked against the sandbox's own state (`/_sandbox/state`), not against expected strings. "
        "Bytes are the text of every result returned to the model.",
        "",
        "| intent | project | calls (target) | result bytes (largest; target) | right | meets target |",
        "|---|---|---:|---:|:-:|:-:|",
    ]
    for row in s["intents"]:
        target_bytes = f"; <= {row['target_bytes']}" if row["target_bytes"] else ""
        out.append(
            f"| {row['intent']} | {row['project']} | {row['calls']} (<= {row['target_calls']}) | "
            f"{row['result_bytes']} ({row['largest_result_bytes']}{target_bytes}) | {_ok(row['right'])} | "
            f"{_ok(row['meets_target'])} |"
        )
    return out + ["", f"Every target met: {_ok(s['all_met'])}.", ""]


def _context(c: dict[str, Any]) -> list[str]:
    ours, theirs, lean, budget = (
        c["ours"],
        c["fastmcp_from_openapi"],
        c["fastmcp_from_openapi_without_output_schemas"],
        c["budget"],
    )
    out = [
        "## Context cost of the default tools/list",
        "",
        "Compact JSON as sent; tokens approximated as bytes / 4 (tiktoken would need a download at run time).",
        "",
        "| server | tools | bytes | approx tokens | largest tool | annotated tools |",
        "|---|---:|---:|---:|---|---:|",
    ]
    rows = [("**ours** (default toolsets)", ours)]
    if "ours_every_toolset" in c:
        rows.append(("ours, every toolset (`POSTHOG_MCP_TOOLSETS=all`)", c["ours_every_toolset"]))
    if "ours_endpoint_tools" in c:
        rows.append(("ours, endpoint tools only (no answer tools)", c["ours_endpoint_tools"]))
    for label, m in (
        *rows,
        ("FastMCP 4 `from_openapi` (default)", theirs),
        ("FastMCP 4 `from_openapi`, `validate_output=False`", lean),
    ):
        big = m["largest_tool"]
        out.append(
            f"| {label} | {m['tools']} | {m['total_bytes']} | {m['approx_tokens']} | "
            f"{big['name']} ({big['bytes']} B) | {m['with_annotations']} |"
        )
    out += [
        "",
        f"FastMCP, fed an OpenAPI 3.1 description of the {c['openapi_operations']} endpoint operations "
        f"([openapi.py](openapi.py)), lists **{c['ratio_fastmcp_to_ours']}x** the bytes of our default listing "
        f"(answer tools included, the `logs` and `tests` toolsets left out), and {c['ratio_fastmcp_lean_to_ours']}x "
        "without output schemas (then it also has no structured output to validate).",
        "",
    ]
    if "ratio_fastmcp_to_our_endpoint_tools" in c:
        out += [
            f"Like for like (our {c['ours_endpoint_tools']['tools']} endpoint tools, every toolset, no answer tools): "
            f"FastMCP uses {c['ratio_fastmcp_to_our_endpoint_tools']}x our bytes by default and "
            f"{c['ratio_fastmcp_lean_to_our_endpoint_tools']}x without output schemas.",
            "",
        ]
    out += [
        f"Budget: total {_kb(ours['total_bytes'])} of {_kb(budget['total_bytes'])} ({_ok(budget['total_ok'])}); "
        f"tools over {_kb(budget['per_tool_bytes'])}: {', '.join(budget['tools_over_budget']) or 'none'}.",
        "",
        "| our tool | bytes | approx tokens | description | inputSchema | outputSchema |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for t in ours["per_tool"]:
        out.append(
            f"| {t['name']} | {t['bytes']} | {t['approx_tokens']} | {t['description_bytes']} | "
            f"{t['input_schema_bytes']} | {t['output_schema_bytes']} |"
        )
    out += [
        "",
        "| FastMCP tool (default) | bytes | approx tokens | inputSchema | outputSchema |",
        "|---|---:|---:|---:|---:|",
    ]
    for t in theirs["per_tool"]:
        out.append(
            f"| {t['name']} | {t['bytes']} | {t['approx_tokens']} | {t['input_schema_bytes']} | {t['output_schema_bytes']} |"
        )
    out.append("")
    return out


def _shared_state(shared: dict[str, Any]) -> list[str]:
    out = [
        "## Replicas: HTTP throughput with the confirmation ledger in process and on Redis",
        "",
        f"{shared['clients']} clients, {shared['calls_each']} reads each, then a quarter as many confirmed writes "
        "(preview + confirm of batch-export-pause, one export per client). Reads never touch the ledger, so a reads "
        "ratio away from 1.0x is this machine's noise (clients, replicas, sandbox and Redis share its cores).",
        "",
        "| set-up | reads/s | vs one process | read p50 | confirmed writes/s | vs one process | write p50 | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for label, f in shared["setups"].items():
        reads, writes = f["reads"], f["confirmed_writes"]
        read_p50 = reads["latency"]["median_ms"] if reads["latency"] else "-"
        write_p50 = writes["latency"]["median_ms"] if writes["latency"] else "-"
        out.append(
            f"| {label} | {reads['per_second']} | {reads['vs_one_process']}x | {read_p50} ms | "
            f"{writes['per_second']} | {writes['vs_one_process']}x | {write_p50} ms | "
            f"{reads['errors'] + writes['errors']} |"
        )
    return [*out, ""]


def _first_answer(f: dict[str, Any]) -> list[str]:
    out = [
        "## Time to first answer (spawn to the answer of the first message, stdio)",
        "",
        "| first message | ours | ours `--sandbox` | floor | ratio | `--sandbox` ratio | <= 1.2x | CPU ratio, `--sandbox` |",
        "|---|---:|---:|---:|---:|---:|---|---:|",
    ]
    for opening in ("server/discover", "initialize"):
        o = f[opening]
        out.append(
            f"| `{opening}` | {o['ours_median_ms']} ms | {o['ours_sandbox_median_ms']} ms | {o['floor_median_ms']} ms | "
            f"{o['ratio']}x | {o['sandbox_ratio']}x | {_ok(o['within_target'])} | "
            f"{o['cpu_ratio']}x, {o['cpu_sandbox_ratio']}x |"
        )
    imports = f["import_ms"]
    out += [
        "",
        f"Medians of {f['runs']} runs each, interleaved; the floor is the one-tool mcp SDK server. The CPU ratio "
        "compares the CPU time each process spent until its answer (from /proc), which the machine's other load "
        "inflates much less than the wall time. The first answer "
        "comes from the settings alone: the key's scopes (and, with `--sandbox`, the sandbox) load behind it, and "
        "`tools/list` waits for them. `@ai-sdk/mcp` waits 1 s for `server/discover`, then sends `initialize` on the "
        "same pipe, which the server accepts.",
        f"`python -X importtime`: `import server.cli.commands, server.stdio` {imports['server.cli.commands + server.stdio']} ms, "
        f"`import mcp.server, mcp.server.stdio` {imports['mcp.server + stdio']} ms (medians).",
        "",
    ]
    return out


def _throughput(t: dict[str, Any]) -> list[str]:
    rounds = ", ".join(str(r["ratio"]) for r in t["per_round"])
    return [
        "## HTTP throughput against a bare mcp SDK server (`batch-export-get`, loopback)",
        "",
        "| clients x calls | ours calls/s | floor calls/s | ratio (median) | rounds | errors | >= 0.9x |",
        "|---|---:|---:|---:|---|---:|---|",
        f"| {t['clients']} x {t['calls_each']} | {t['ours_calls_per_second']} | {t['floor_calls_per_second']} | "
        f"**{t['ratio']}x** | {rounds} | {t['errors']} | {_ok(t['within_target'])} |",
        "",
        "The floor ([http_floor_server.py](http_floor_server.py)) is a stateless streamable-HTTP server on the same SDK "
        "whose one tool sends the same upstream GET; each round drives one server, then the other.",
        "",
    ]
