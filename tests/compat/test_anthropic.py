"""Anthropic SDK: every listed tool turned into a runnable tool by the SDK's MCP helper
(`anthropic.lib.tools.mcp.async_mcp_tool`, on its defaults), its tool parameter (`to_dict()`, what the
Messages API receives) checked against the API's rules for `input_schema` (a JSON Schema object), and
called through the tool object's own `call`, as the SDK's tool runner calls it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
from anthropic.lib.tools import ToolError
from anthropic.lib.tools.mcp import async_mcp_tool
from mcp import ClientSession, StdioServerParameters, stdio_client

from tests.compat.support import DEFAULT_TOOLS, KEYS, judged, server_command, strict_arguments, targets
from tests.support import SandboxControl


def _text(output: Any) -> str:
    if isinstance(output, str):
        return output
    return "".join(str(block.get("text", "")) for block in output if isinstance(block, dict))


async def test_every_tool_converts_and_answers_a_strict_shaped_call(make_sandbox: Any, tmp_path: Path) -> None:
    sandbox = make_sandbox(generation=3, keys=KEYS)
    control = SandboxControl(sandbox.base_url)
    given = targets(control)
    before = control.state()
    command, args, env = server_command(sandbox.base_url, tmp_path)
    answers: dict[str, str] = {}
    async with stdio_client(StdioServerParameters(command=command, args=args, env=env)) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            listed = (await session.list_tools()).tools
            tools = [async_mcp_tool(tool, session) for tool in listed]
            assert {t.name for t in tools} == DEFAULT_TOOLS
            for tool in tools:
                param: dict[str, Any] = dict(tool.to_dict())
                schema = param["input_schema"]
                assert schema.get("type") == "object" and param["description"], tool.name
                jsonschema.Draft202012Validator.check_schema(schema)
                arguments = strict_arguments(tool.name, schema, given[tool.name])
                jsonschema.Draft202012Validator(schema).validate(arguments)
                try:
                    answers[tool.name] = _text(await tool.call(arguments))
                except ToolError as error:  # the helper raises the tool's error result as this
                    answers[tool.name] = f"error: {error}"
    problems = [p for name, text in answers.items() if (p := judged(name, text))]
    assert problems == []
    assert control.state() == before, "a strict-shaped call changed something"
    control.close()
    assert json.dumps(answers)
