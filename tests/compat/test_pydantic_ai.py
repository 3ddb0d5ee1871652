"""Pydantic AI: our server as an `MCPToolset` (its stdio client) of an `Agent`, run with a scripted
`FunctionModel` that carries a provider's model profile, so the tool definitions it receives are the
ones Pydantic AI would send that provider (the profile's JSON schema transformer applied, strict mode
inferred for OpenAI). The scripted model calls every tool once with strict-shaped arguments; the agent
runs the calls through the toolset and hands the answers back.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from fastmcp.client import Client as FastMCPClient
from fastmcp.client.transports import StdioTransport
from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.messages import ModelMessage, ModelResponse, RetryPromptPart, TextPart, ToolCallPart, ToolReturnPart
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.profiles.google import google_model_profile
from pydantic_ai.profiles.openai import openai_model_profile

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

PROFILES = {"openai": lambda: openai_model_profile("gpt-5"), "google": lambda: google_model_profile("gemini-2.5-pro")}


@pytest.mark.parametrize("provider", list(PROFILES))
async def test_every_tool_converts_and_answers_a_strict_shaped_call(
    make_sandbox: Any, tmp_path: Path, provider: str
) -> None:
    sandbox = make_sandbox(generation=3, keys=KEYS)
    control = SandboxControl(sandbox.base_url)
    given = targets(control)
    before = control.state()
    command, args, env = server_command(sandbox.base_url, tmp_path)
    toolset = MCPToolset(FastMCPClient(StdioTransport(command, args, env=env)), tool_error_behavior="failed")
    seen: dict[str, Any] = {}
    answers: dict[str, str] = {}

    def scripted(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        if not seen:  # first turn: every tool, once
            seen.update({tool.name: tool for tool in info.function_tools})
            calls = []
            for tool in info.function_tools:
                arguments = strict_arguments(tool.name, tool.parameters_json_schema, given[tool.name])
                jsonschema.Draft202012Validator(tool.parameters_json_schema).validate(arguments)
                calls.append(ToolCallPart(tool_name=tool.name, args=json.dumps(arguments), tool_call_id=tool.name))
            return ModelResponse(parts=calls)
        for part in messages[-1].parts:  # second turn: what the agent handed back
            if isinstance(part, ToolReturnPart):
                content = part.content
                answers[part.tool_name] = content if isinstance(content, str) else json.dumps(content)
            elif isinstance(part, RetryPromptPart) and part.tool_name:
                answers[part.tool_name] = f"error: {part.content}"
        return ModelResponse(parts=[TextPart("done")])

    agent = Agent(FunctionModel(scripted, profile=PROFILES[provider]()), toolsets=[toolset])
    async with agent:
        result = await agent.run("Check every tool.")
    assert result.output == "done"
    assert set(seen) == DEFAULT_TOOLS == set(answers)
    if provider == "openai":
        # Pydantic AI infers strict mode per tool (a tool with an optional argument goes non-strict); each
        # one it sends strict must be valid in OpenAI's strict mode, or the whole request is refused.
        strict = {name: tool.parameters_json_schema for name, tool in seen.items() if tool.strict}
        assert strict, "no tool was sent strict: the inference is not being exercised"
        assert {name: openai_strict_problems(schema) for name, schema in strict.items()} == dict.fromkeys(strict, [])
    problems = [p for name, text in answers.items() if (p := judged(name, text))]
    assert problems == []
    assert control.state() == before, "a strict-shaped call changed something"
    control.close()
