"""Context cost: how many bytes (and roughly how many tokens) the default tools/list puts into a
model's context, per tool and in total, next to FastMCP.from_openapi over the same endpoints.

Tokens are approximated as bytes / 4. tiktoken would give exact counts for one tokenizer, but it
downloads its encoding files on first use, and the benchmark must run with only PyPI reachable;
no tokenizer of the models that actually read tools/list is public anyway.
"""

from __future__ import annotations

import json
from typing import Any

import mcp.types as types
from mcp import Client

from benchmarks.common import Sandbox
from benchmarks.openapi import SPEC, operation_count
from server.app import open_app
from server.config import Settings
from tools.catalog import ANSWERS

# Issue 11: the default tools/list, answers included, at most 24 KB, no tool over 3 KB.
BUDGET_TOTAL = 24 * 1024
BUDGET_PER_TOOL = 3 * 1024
# The tools that answer questions rather than map one endpoint: FastMCP's listing has no
# counterpart to them, so the like-for-like figure leaves them out.
ANSWER_TOOLS = frozenset(spec.name for spec in ANSWERS)


def compact(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def measure(tools: list[types.Tool]) -> dict[str, Any]:
    """Sizes of a tools/list result as it goes on the wire (compact JSON, camelCase, no nulls)."""
    dumped = [tool.model_dump(by_alias=True, exclude_none=True, mode="json") for tool in tools]
    per_tool = []
    for tool in dumped:
        size = compact(tool)
        per_tool.append(
            {
                "name": tool["name"],
                "bytes": size,
                "approx_tokens": size // 4,
                "input_schema_bytes": compact(tool.get("inputSchema", {})),
                "output_schema_bytes": compact(tool["outputSchema"]) if "outputSchema" in tool else 0,
                "description_bytes": len(tool.get("description", "").encode()),
                "annotated": "annotations" in tool,
            }
        )
    total = compact({"tools": dumped})
    return {
        "tools": len(dumped),
        "total_bytes": total,
        "approx_tokens": total // 4,
        "largest_tool": max(per_tool, key=lambda t: t["bytes"]) if per_tool else None,
        "with_annotations": sum(t["annotated"] for t in per_tool),
        "per_tool": per_tool,
    }


async def ours(sandbox: Sandbox, settings_dir: Any) -> dict[str, Any]:
    """The default listing: what every session pays for."""
    return measure(await _listing(sandbox, settings_dir))


async def ours_endpoints_only(sandbox: Sandbox, settings_dir: Any) -> dict[str, Any]:
    """Our listing of every endpoint tool (every toolset) without the answer tools: the same
    operations FastMCP is given."""
    listing = await _listing(sandbox, settings_dir, toolsets=("all",))
    return measure([t for t in listing if t.name not in ANSWER_TOOLS])


async def ours_every_toolset(sandbox: Sandbox, settings_dir: Any) -> dict[str, Any]:
    """What a server started with POSTHOG_MCP_TOOLSETS=all lists."""
    return measure(await _listing(sandbox, settings_dir, toolsets=("all",)))


async def _listing(sandbox: Sandbox, settings_dir: Any, **settings: Any) -> list[types.Tool]:
    config = Settings(
        api_key=sandbox.api_key, host=sandbox.base_url, audit_log=settings_dir / "audit.jsonl", **settings
    )
    async with open_app(config) as app, Client(app.server) as client:
        return (await client.list_tools()).tools


async def fastmcp_from_openapi(validate_output: bool) -> dict[str, Any]:
    import httpx2
    from fastmcp import Client as FastMCPClient
    from fastmcp import FastMCP

    async with httpx2.AsyncClient(base_url="http://127.0.0.1:9") as http:
        server = FastMCP.from_openapi(SPEC, client=http, name="PostHog batch exports", validate_output=validate_output)
        async with FastMCPClient(server) as client:
            return measure(await client.list_tools())


async def run(sandbox: Sandbox, settings_dir: Any) -> dict[str, Any]:
    mine = await ours(sandbox, settings_dir)
    endpoints = await ours_endpoints_only(sandbox, settings_dir)
    everything = await ours_every_toolset(sandbox, settings_dir)
    theirs = await fastmcp_from_openapi(validate_output=True)
    lean = await fastmcp_from_openapi(validate_output=False)
    over_tool_budget = [t["name"] for t in mine["per_tool"] if t["bytes"] > BUDGET_PER_TOOL]
    return {
        "ours": mine,
        "ours_endpoint_tools": endpoints,
        "ours_every_toolset": everything,
        "ratio_fastmcp_lean_to_our_endpoint_tools": round(lean["total_bytes"] / endpoints["total_bytes"], 2),
        "ratio_fastmcp_to_our_endpoint_tools": round(theirs["total_bytes"] / endpoints["total_bytes"], 2),
        "fastmcp_from_openapi": theirs,
        "fastmcp_from_openapi_without_output_schemas": lean,
        "openapi_operations": operation_count(),
        "ratio_fastmcp_to_ours": round(theirs["total_bytes"] / mine["total_bytes"], 2),
        "ratio_fastmcp_lean_to_ours": round(lean["total_bytes"] / mine["total_bytes"], 2),
        "budget": {
            "total_bytes": BUDGET_TOTAL,
            "per_tool_bytes": BUDGET_PER_TOOL,
            "total_ok": mine["total_bytes"] <= BUDGET_TOTAL,
            "tools_over_budget": over_tool_budget,
        },
        "token_method": "approx: compact JSON bytes / 4 (tiktoken needs a download at run time)",
    }
