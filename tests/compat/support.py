"""What the agent-framework tests share: our server started as a framework would start it, the arguments a
model sends when a strict converter made every argument required, and each provider's documented rules.

Every framework test converts every tool a default server lists with the framework's own converter,
checks the result against the provider's rules below, then calls every tool through the framework's own
tool object with strict-shaped arguments: the required ones real, every optional one empty ("" for a
plain string, null where the schema allows it, else the default its description names). A guarded write
must answer with its preview (confirmation_required), never a validation error; nothing may change.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from pydantic_core import PydanticUndefined

from posthog_sandbox import DEFAULT_API_KEY, SandboxKey
from server.untrusted import unmark
from server.visibility import listed_by_default
from tests.support import EVERY_TOOL_SCOPES, SandboxControl, guarded_arguments
from tools.catalog import BY_NAME, CATALOG

# The sandbox key of these tests may use every tool, so a default server lists every default toolset's.
KEYS = [SandboxKey(DEFAULT_API_KEY, list(EVERY_TOOL_SCOPES))]
DEFAULT_TOOLS = frozenset(spec.name for spec in CATALOG if listed_by_default(spec))


def server_command(base_url: str, tmp_path: Path) -> tuple[str, list[str], dict[str, str]]:
    """`posthog-batch-exports-mcp serve` over stdio, as an MCP host starts it, against the sandbox."""
    env = {
        "POSTHOG_HOST": base_url,
        "POSTHOG_PERSONAL_API_KEY": DEFAULT_API_KEY,
        "POSTHOG_MCP_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONUNBUFFERED": "1",
    }
    return sys.executable, ["-m", "server", "serve"], env


def targets(control: SandboxControl) -> dict[str, dict[str, Any]]:
    """The required arguments of every default tool, real ones from the seeded project 1. The guarded
    writes aim where tests/support.py `guarded_arguments` aims them; a destination's config goes as the
    JSON text the listing asks for (server/definitions.py)."""
    s3 = control.export_id("Hourly events to S3")
    snowflake = control.export_id("Daily events to Snowflake")
    bigquery = control.export_id("Events to BigQuery (backfilling)")
    state = control.state()
    failed = next(r for r in state["runs"] if r["batch_export"] == snowflake and r["status"] == "Failed")
    finished = next(r for r in state["runs"] if r["batch_export"] == s3 and r["status"] == "Completed")
    backfill = next(b for b in state["backfills"] if b["batch_export"] == bigquery)
    chosen = {
        "batch-export-list": {"project_id": 1},
        "batch-export-get": {"project_id": 1, "batch_export_id": s3},
        "batch-export-runs-list": {"project_id": 1, "batch_export_id": s3},
        "batch-export-run-get": {"project_id": 1, "batch_export_id": snowflake, "run_id": failed["id"]},
        "batch-export-backfills-list": {"project_id": 1, "batch_export_id": bigquery},
        "batch-export-backfill-get": {"project_id": 1, "batch_export_id": bigquery, "backfill_id": backfill["id"]},
        "batch-export-health": {"project_id": 1},
        "batch-export-errors": {"project_id": 1},
        # Either an existing export or a proposed destination: the existing one, the proposal sent empty.
        "batch-export-destination-check": {"project_id": 1, "batch_export_id": s3},
        "batch-export-gaps": {"project_id": 1, "batch_export_id": s3},
        # One of two ids: the run, the backfill id sent empty.
        "batch-export-wait": {"project_id": 1, "batch_export_id": s3, "run_id": finished["id"]},
        "batch-export-projects": {},
        "batch-export-changes": {"project_id": 1, "batch_export_id": s3},
        "batch-export-integrations": {"project_id": 1},
    }
    for name, arguments in guarded_arguments(control).items():
        if name in DEFAULT_TOOLS:
            destination = arguments.get("destination")
            if destination is not None:
                arguments = {**arguments, "destination": {**destination, "config": json.dumps(destination["config"])}}
            if isinstance(arguments.get("integration_config"), dict):  # listed as JSON text too
                arguments = {**arguments, "integration_config": json.dumps(arguments["integration_config"])}
            chosen[name] = arguments
    assert set(chosen) == DEFAULT_TOOLS, set(chosen) ^ DEFAULT_TOOLS
    return chosen


def _types(node: dict[str, Any]) -> set[str]:
    kind = node.get("type")
    return set(kind) if isinstance(kind, list) else {kind} if isinstance(kind, str) else set()


def allows_null(node: dict[str, Any]) -> bool:
    if "enum" in node and None not in node["enum"]:
        return False
    return "null" in _types(node) or any(allows_null(b) for b in node.get("anyOf", []))


def _object_branch(node: dict[str, Any]) -> dict[str, Any] | None:
    if "properties" in node:
        return node
    return next((b for b in node.get("anyOf", []) if "properties" in b), None)


def default_of(tool: str, argument: str) -> Any:
    field = BY_NAME[tool].params.model_fields[argument]
    assert field.default is not PydanticUndefined, f"{tool}.{argument} has no default to send"
    value = field.default
    return list(value) if isinstance(value, list | tuple) else value


def strict_arguments(tool: str, schema: dict[str, Any], given: dict[str, Any]) -> dict[str, Any]:
    """Every property of `schema` sent as a model held to it sends them: `given` where given, else empty:
    null where allowed, "" for a plain string; otherwise left out where the schema lets it, else (a strict
    function, where all are required) the default the description names."""
    out: dict[str, Any] = {}
    required = set(schema.get("required", []))
    for name, prop in schema.get("properties", {}).items():
        if name in given:
            value, branch = given[name], _object_branch(prop)
            out[name] = strict_arguments(tool, branch, value) if isinstance(value, dict) and branch else value
        elif allows_null(prop):
            out[name] = None
        elif _types(prop) == {"string"} and "enum" not in prop:
            out[name] = ""
        elif name in required:
            out[name] = default_of(tool, name)
    return out


def judged(tool: str, text: str) -> str | None:
    """Why a tool's answer is not what a strict-shaped call must get, or None: a guarded write answers
    with its preview, any other tool with its JSON answer (an error is a line of text). A framework that hands
    the model the result's text hands it marked as PostHog's data (server/untrusted.py): the JSON is inside."""
    try:
        answer = json.loads(unmark(text))
    except ValueError:
        return f"{tool} answered with an error: {text[:300]}"
    if not isinstance(answer, dict):
        return f"{tool} answered {text[:300]}"
    if BY_NAME[tool].is_guarded:
        if answer.get("status") != "confirmation_required" or not answer.get("confirmation_token"):
            return f"{tool} did not preview: {text[:300]}"
    return None


# --- OpenAI strict mode ------------------------------------------------------------------------------
# The subset OpenAI's Structured Outputs guide documents for strict functions ("Supported schemas", the same
# list Pydantic AI encodes in pydantic_ai/profiles/openai.py): these keywords only, these string formats,
# every object closed (additionalProperties false) with every property required, a nullable argument as a
# union with null, the root a plain object, at most 10 levels of nesting.
OPENAI_STRICT_KEYWORDS = frozenset(
    {"type", "description", "enum", "const", "anyOf", "properties", "required", "additionalProperties", "items"}
    | {"$ref", "$defs", "pattern", "format", "multipleOf", "maximum", "exclusiveMaximum", "minimum"}
    | {"exclusiveMinimum", "minItems", "maxItems"}
)
OPENAI_STRICT_FORMATS = frozenset(
    {"date-time", "time", "date", "duration", "email", "hostname", "ipv4", "ipv6", "uuid"}
)
JSON_TYPES = frozenset({"string", "number", "integer", "boolean", "object", "array", "null"})


def openai_strict_problems(schema: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    if schema.get("type") != "object" or "anyOf" in schema:
        problems.append("the root is not a plain object")

    def walk(node: Any, path: str, depth: int) -> None:
        if not isinstance(node, dict):
            problems.append(f"{path}: not a schema")
            return
        unsupported = set(node) - OPENAI_STRICT_KEYWORDS
        if unsupported:
            problems.append(f"{path}: unsupported keyword(s) {sorted(unsupported)}")
        kinds = _types(node)
        if kinds - JSON_TYPES:
            problems.append(f"{path}: unknown type {node.get('type')}")
        if not kinds and not {"anyOf", "enum", "const", "$ref"} & set(node):
            problems.append(f"{path}: no type")
        if "format" in node and node["format"] not in OPENAI_STRICT_FORMATS:
            problems.append(f"{path}: format {node['format']!r}")
        if "enum" in node and None not in node["enum"] and "null" in kinds:
            problems.append(f"{path}: null allowed by type but not by enum")
        for index, branch in enumerate(node.get("anyOf", [])):
            walk(branch, f"{path}.anyOf[{index}]", depth)
        if "object" in kinds or "properties" in node:
            if depth > 10:
                problems.append(f"{path}: nested deeper than 10 levels")
            if node.get("additionalProperties") is not False:
                problems.append(f"{path}: additionalProperties is not false")
            properties = node.get("properties", {})
            if set(node.get("required", [])) != set(properties):
                problems.append(f"{path}: not every property is required")
            for name, prop in properties.items():
                walk(prop, f"{path}.{name}", depth + 1)
        if "array" in kinds:
            walk(node.get("items"), f"{path}[]", depth)

    walk(schema, "parameters", 1)
    return problems


# --- Gemini --------------------------------------------------------------------------------------------
# The Gemini API's Schema (the OpenAPI subset google-genai's MCP conversion produces), as the API answers
# (docs/architecture.md, "Every agent framework"): "format: only 'enum' and 'date-time' are supported for
# STRING type" (INTEGER int32/int64 and NUMBER float/double per its Schema reference), enum values strings
# only, an OBJECT whose properties are empty or missing "should be non-empty for OBJECT type", properties or
# required on a non-OBJECT "only allowed for OBJECT type".
GEMINI_FORMATS = {"STRING": {"enum", "date-time"}, "INTEGER": {"int32", "int64"}, "NUMBER": {"float", "double"}}


def gemini_problems(schema: Any, path: str = "parameters") -> list[str]:
    from google.genai import types

    problems: list[str] = []
    if schema.any_of:
        for index, branch in enumerate(schema.any_of):
            problems += gemini_problems(branch, f"{path}.anyOf[{index}]")
        return problems
    kind = schema.type.value if schema.type is not None else None
    if kind is None or schema.type in (types.Type.TYPE_UNSPECIFIED, types.Type.NULL):
        problems.append(f"{path}: type {kind}")
    if schema.additional_properties is not None:
        problems.append(f"{path}: additionalProperties")
    if kind == "OBJECT":
        if not schema.properties:
            problems.append(f"{path}: an OBJECT without properties")
        if set(schema.required or []) - set(schema.properties or {}):
            problems.append(f"{path}: required names an unknown property")
        for name, prop in (schema.properties or {}).items():
            problems += gemini_problems(prop, f"{path}.{name}")
    elif schema.properties is not None or schema.required is not None:
        problems.append(f"{path}: properties or required on {kind}")
    if schema.format is not None and schema.format not in GEMINI_FORMATS.get(kind or "", set()):
        problems.append(f"{path}: format {schema.format!r} on {kind}")
    if schema.enum is not None and (kind != "STRING" or not all(isinstance(v, str) for v in schema.enum)):
        problems.append(f"{path}: enum {schema.enum} on {kind}")
    if kind == "ARRAY":
        if schema.items is None:
            problems.append(f"{path}: ARRAY without items")
        else:
            problems += gemini_problems(schema.items, f"{path}[]")
    return problems
