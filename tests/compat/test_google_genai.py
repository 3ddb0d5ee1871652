"""google-genai: an MCP `ClientSession` handed to the SDK as a tool, converted the way
`client.models.generate_content` converts it (`_extra_utils.parse_config_for_mcp_sessions`, which runs
`_mcp_utils.mcp_to_gemini_tool` on every listed tool), and called through the SDK's own
`McpToGenAiToolAdapter.call_tool`, as its automatic function calling does. One declaration the Gemini
API refuses fails the whole request, so every converted declaration is checked against the API's rules.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
from google.genai import _extra_utils, types
from mcp import ClientSession, StdioServerParameters, stdio_client

from tests.compat.support import DEFAULT_TOOLS, KEYS, gemini_problems, judged, server_command, strict_arguments, targets
from tests.support import SandboxControl


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
            config, adapters = await _extra_utils.parse_config_for_mcp_sessions(
                types.GenerateContentConfig(tools=[session])
            )
            assert config is not None and config.tools
            declarations = [d for tool in config.tools for d in (tool.function_declarations or [])]  # type: ignore[union-attr]
            assert {d.name for d in declarations} == DEFAULT_TOOLS == set(adapters)
            for declaration in declarations:
                assert declaration.name is not None and declaration.parameters is not None
                problems = gemini_problems(declaration.parameters)
                assert problems == [], (declaration.name, problems)
                # Arguments valid for the declaration as Gemini reads it (its JSON Schema form).
                as_json = declaration.parameters.json_schema.model_dump(mode="json", by_alias=True, exclude_none=True)
                arguments = strict_arguments(declaration.name, as_json, given[declaration.name])
                jsonschema.Draft202012Validator(as_json).validate(arguments)
                call = types.FunctionCall(name=declaration.name, args=arguments)
                result = await adapters[declaration.name].call_tool(call)
                answers[declaration.name] = "".join(getattr(block, "text", "") for block in result.content)
    problems = [p for name, text in answers.items() if (p := judged(name, text))]
    assert problems == []
    assert control.state() == before, "a strict-shaped call changed something"
    control.close()


def test_the_conversion_refuses_what_the_listing_avoids() -> None:
    """The rules above are the SDK's and the API's, not ours: what the listing used to send fails them."""
    from google.genai import _mcp_utils
    from mcp import types as mcp_types

    def converted(schema: dict[str, Any]) -> Any:
        tool = mcp_types.Tool(name="t", description="d", input_schema=schema)
        return _mcp_utils.mcp_to_gemini_tool(tool).function_declarations[0].parameters  # type: ignore[index]

    uuid_id = {"type": "object", "properties": {"batch_export_id": {"type": "string", "format": "uuid"}}}
    assert gemini_problems(converted(uuid_id)) == ["parameters.batch_export_id: format 'uuid' on STRING"]
    free_form = {"type": "object", "properties": {"config": {"type": "object"}}}
    assert gemini_problems(converted(free_form)) == ["parameters.config: an OBJECT without properties"]
    assert gemini_problems(converted({"type": "object", "properties": {}})) == [
        "parameters: an OBJECT without properties"
    ]
    enum_with_null = {"type": "object", "properties": {"s": {"type": ["string", "null"], "enum": ["a", None]}}}
    assert gemini_problems(converted(enum_with_null)) == ["parameters.s: enum ['a', None] on STRING"]
    try:  # a boolean additionalProperties breaks the SDK's conversion itself
        converted({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": False})
    except AttributeError:
        pass
    else:
        raise AssertionError("google-genai now converts additionalProperties: false; the listing could carry it")
    assert json.dumps(uuid_id)  # the schemas above are plain JSON
