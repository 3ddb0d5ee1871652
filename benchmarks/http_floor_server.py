"""The floor for HTTP throughput: the smallest stateless streamable-HTTP server the mcp SDK makes, with
one tool, `batch-export-get`, that sends the same upstream GET as ours (one shared httpx client, the key
in a header) and returns the decoded JSON as text and structured content. No validation, no shaping,
no guard: what is left is the SDK, uvicorn and httpx.

    python -m benchmarks.http_floor_server --port 8123    # POSTHOG_HOST and POSTHOG_PERSONAL_API_KEY from env
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import mcp.types as types
import uvicorn
from mcp.server import Server, ServerRequestContext
from starlette.applications import Starlette

GET = types.Tool(
    name="batch-export-get",
    description="Read one batch export.",
    input_schema={
        "type": "object",
        "properties": {"project_id": {"type": "integer"}, "batch_export_id": {"type": "string"}},
        "required": ["project_id", "batch_export_id"],
    },
)


def build(host: str, api_key: str) -> Starlette:
    upstream = httpx.AsyncClient(base_url=host, headers={"Authorization": f"Bearer {api_key}"}, timeout=20.0)

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return types.ListToolsResult(tools=[GET])

    async def call_tool(ctx: ServerRequestContext[Any], params: types.CallToolRequestParams) -> types.CallToolResult:
        arguments = params.arguments or {}
        path = f"/api/projects/{int(arguments['project_id'])}/batch_exports/{arguments['batch_export_id']}/"
        body = (await upstream.get(path)).json()
        return types.CallToolResult(
            content=[types.TextContent(type="text", text=json.dumps(body))], structured_content=body
        )

    server: Server[Any] = Server("floor-http", version="0", on_list_tools=list_tools, on_call_tool=call_tool)
    app = server.streamable_http_app(stateless_http=True)
    inner = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(starlette: Starlette) -> AsyncIterator[None]:
        async with inner(starlette):
            yield
        await upstream.aclose()

    app.router.lifespan_context = lifespan
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    app = build(os.environ["POSTHOG_HOST"], os.environ["POSTHOG_PERSONAL_API_KEY"])
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
