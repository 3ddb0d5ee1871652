"""LangChain's side of tests/compat/test_langchain.py, run in this folder's own environment (mcp<2).

A conversation of JSON lines on stdin and stdout. It reads {"command", "args", "env"}, starts the
server over stdio with the MCP SDK, loads its tools with langchain-mcp-adapters (`load_mcp_tools`) and
writes the listing: each tool as `convert_to_openai_tool(tool, strict=True)` makes it and as
`ChatOpenAI.bind_tools(..., strict=True)` would send it. Then it reads {tool: arguments} and writes, for
each, the answer of the LangChain tool invoked with that tool call (`ainvoke`), as an agent invokes it.
"""

from __future__ import annotations

import asyncio
import json
import sys
from importlib.metadata import version
from typing import Any

from langchain_core.messages import ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool
from langchain_mcp_adapters.tools import load_mcp_tools
from langchain_openai import ChatOpenAI
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def _text(message: Any) -> str:
    content = message.content if isinstance(message, ToolMessage) else message
    if isinstance(content, str):
        return content
    return "".join(str(block.get("text", "")) if isinstance(block, dict) else str(block) for block in content)


def _send(value: Any) -> None:
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


async def main() -> None:
    server = json.loads(sys.stdin.readline())
    params = StdioServerParameters(command=server["command"], args=server["args"], env=server["env"])
    # No request leaves this process: the key only lets the model object be built.
    model = ChatOpenAI(model="gpt-5", api_key="not-used")  # type: ignore[arg-type]
    listing: dict[str, Any] = {
        "versions": {name: version(name) for name in ("langchain-mcp-adapters", "langchain-openai", "mcp")},
        "tools": {},
    }
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        tools = await load_mcp_tools(session)
        for tool in tools:
            bound = model.bind_tools([tool], strict=True)
            listing["tools"][tool.name] = {
                "converted": convert_to_openai_tool(tool, strict=True),
                "bound": bound.kwargs["tools"][0],  # type: ignore[attr-defined]
            }
        _send(listing)
        by_name = {tool.name: tool for tool in tools}
        answers = {}
        for name, arguments in json.loads(sys.stdin.readline()).items():
            call = {"name": name, "args": arguments, "id": f"call-{name}", "type": "tool_call"}
            message = await by_name[name].ainvoke(call)
            error = isinstance(message, ToolMessage) and message.status == "error"
            answers[name] = ("error: " if error else "") + _text(message)
        _send(answers)


if __name__ == "__main__":
    asyncio.run(main())
