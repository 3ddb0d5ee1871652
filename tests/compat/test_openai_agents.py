"""OpenAI Agents SDK: our server as an `MCPServerStdio` of an `Agent`, its tools as the SDK makes them
(`MCPUtil.to_function_tool` through `Agent.get_all_tools`), with `convert_schemas_to_strict` off (the SDK's
default) and on. Strict conversion must hold for every tool (the SDK silently falls back to a non-strict
tool when `ensure_strict_json_schema` refuses one), the function the SDK sends (`Converter.tool_to_openai`)
must be valid in OpenAI's strict mode, and every tool must answer a strict-shaped call through the
SDK's own `on_invoke_tool`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from agents import Agent, RunContextWrapper
from agents.mcp import MCPServerStdio
from agents.models.chatcmpl_converter import Converter
from agents.tool import FunctionTool
from agents.tool_context import ToolContext

from tests.compat.support import (
    DEFAULT_TOOLS,
    KEYS,
    judged,
    openai_strict_problems,
    server_command,
    strict_arguments,
    targets,
)
from tests.support import SandboxControl


def _text(output: Any) -> str:
    """The text of what the SDK hands the model: a string, a text item, or a list of items."""
    if isinstance(output, list):
        return "".join(_text(item) for item in output)
    if isinstance(output, dict):
        return str(output.get("text", output))
    return str(getattr(output, "text", output))


@pytest.mark.parametrize("strict", [False, True], ids=["default", "strict"])
async def test_every_tool_converts_and_answers_a_strict_shaped_call(
    make_sandbox: Any, tmp_path: Path, strict: bool
) -> None:
    sandbox = make_sandbox(generation=3, keys=KEYS)
    control = SandboxControl(sandbox.base_url)
    given = targets(control)
    before = control.state()
    command, args, env = server_command(sandbox.base_url, tmp_path)
    params = {"command": command, "args": args, "env": env}
    async with MCPServerStdio(params=params, client_session_timeout_seconds=60) as server:  # type: ignore[arg-type]
        agent = Agent(name="ops", mcp_servers=[server], mcp_config={"convert_schemas_to_strict": strict})
        tools = [t for t in await agent.get_all_tools(RunContextWrapper(context=None)) if isinstance(t, FunctionTool)]
        assert {t.name for t in tools} == DEFAULT_TOOLS
        answers: dict[str, str] = {}
        for tool in tools:
            sent = Converter.tool_to_openai(tool)["function"]
            parameters: dict[str, Any] = sent["parameters"]  # type: ignore[typeddict-item]
            if strict:
                assert sent.get("strict") is True, f"{tool.name} fell back to a non-strict function"
                assert openai_strict_problems(parameters) == [], (tool.name, openai_strict_problems(parameters))
            arguments = strict_arguments(tool.name, parameters, given[tool.name])
            jsonschema.Draft202012Validator(parameters).validate(arguments)
            payload = json.dumps(arguments)
            context = ToolContext(
                context=None, tool_name=tool.name, tool_call_id=f"call-{tool.name}", tool_arguments=payload
            )
            answers[tool.name] = _text(await tool.on_invoke_tool(context, payload))
    problems = [p for name, text in answers.items() if (p := judged(name, text))]
    assert problems == []
    assert control.state() == before, "a strict-shaped call changed something"
    control.close()
