"""What a tool advertises: a catalog entry turned into an MCP `Tool` definition.

Pydantic's JSON Schema is trimmed here (titles, `$defs`, null branches of optional
inputs) because every byte of `tools/list` is paid for in the model's context.
"""

from __future__ import annotations

import copy
from typing import Any

import mcp.types as types
from pydantic import BaseModel

from server.guard_result import TOKEN_PARAM, guarded_output_schema
from tools.declaration import ToolSpec

TOKEN_SCHEMA = {
    "type": "string",
    "maxLength": 2000,
    "description": "From the preview; only once the user agreed.",
}
SCOPES_META = "posthog/requiredScopes"


def _inline_refs(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/$defs/"):
            target = _inline_refs(copy.deepcopy(defs[ref.rsplit("/", 1)[1]]), defs)
            siblings = {k: _inline_refs(v, defs) for k, v in node.items() if k != "$ref"}
            return {**target, **siblings}
        return {k: _inline_refs(v, defs) for k, v in node.items() if k != "$defs"}
    if isinstance(node, list):
        return [_inline_refs(v, defs) for v in node]
    return node


def _trim(node: Any, *, keep_null: bool) -> Any:
    """Drop titles and fold `anyOf [X, null]`: optional inputs become plain X (absent = null);
    nullable outputs become `type: [X, "null"]`."""
    if isinstance(node, list):
        return [_trim(v, keep_null=keep_null) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title":
            continue
        if key == "properties":
            out[key] = {name: _trim(prop, keep_null=keep_null) for name, prop in value.items()}
        else:
            out[key] = _trim(value, keep_null=keep_null)
    branches = out.get("anyOf")
    if isinstance(branches, list) and len(branches) == 2 and {"type": "null"} in branches:
        other = next(b for b in branches if b != {"type": "null"})
        del out["anyOf"]
        if keep_null and isinstance(other.get("type"), str):
            other = {**other, "type": [other["type"], "null"]}
        elif keep_null:
            out["anyOf"] = [other, {"type": "null"}]
            other = {}
        out = {**other, **out}
    if out.get("default", 0) is None:
        del out["default"]
    if out.get("additionalProperties") is True:
        del out["additionalProperties"]  # the default, so it costs bytes and says nothing
    return out


def compact_schema(model: type[BaseModel], *, keep_null: bool) -> dict[str, Any]:
    raw = model.model_json_schema()
    schema: dict[str, Any] = _trim(_inline_refs(raw, raw.get("$defs", {})), keep_null=keep_null)
    return schema


def input_schema(spec: ToolSpec, *, pinned_project: bool, guarded: bool) -> dict[str, Any]:
    schema = compact_schema(spec.params, keep_null=False)
    properties = dict(schema.get("properties", {}))
    required = [r for r in schema.get("required", [])]
    if pinned_project:
        properties.pop("project_id", None)
        required = [r for r in required if r != "project_id"]
    if guarded:
        properties[TOKEN_PARAM] = TOKEN_SCHEMA
    result: dict[str, Any] = {"type": "object", "properties": properties}
    if required:
        result["required"] = required
    result["additionalProperties"] = False
    return result


def _shallow(node: dict[str, Any], depth: int) -> dict[str, Any]:
    """An output schema cut below `depth` levels of objects: what a field holds deeper is in the result
    itself, and every level is paid for in each session's context."""
    out = dict(node)
    if "properties" in out:
        if depth <= 0:
            return {k: v for k, v in out.items() if k not in ("properties", "required")}
        out["properties"] = {k: _shallow(v, depth - 1) for k, v in out["properties"].items()}
    if isinstance(out.get("items"), dict):
        out["items"] = _shallow(out["items"], depth)
    return out


def output_schema(spec: ToolSpec, *, guarded: bool) -> dict[str, Any]:
    inner = _shallow(compact_schema(spec.output, keep_null=True), 1)
    return guarded_output_schema(inner) if guarded else inner


def description(spec: ToolSpec, *, guarded: bool) -> str:
    """The tool's own sentence; the scope it needs is in `_meta` (SCOPES_META), not repeated here."""
    text = spec.description
    if guarded:
        text += " Previews and asks to confirm first."
    return text


def tool_meta(spec: ToolSpec) -> dict[str, Any]:
    meta: dict[str, Any] = {SCOPES_META: [spec.scope]}
    if spec.ui_resource is not None:
        # MCP Apps: a host that speaks it reads this resource and renders the result in it (server/ui).
        meta["ui"] = {"resourceUri": spec.ui_resource}
    return meta


def tool_definition(spec: ToolSpec, *, pinned_project: bool, guarded: bool) -> types.Tool:
    return types.Tool(
        name=spec.name,
        title=spec.title,
        description=description(spec, guarded=guarded),
        input_schema=input_schema(spec, pinned_project=pinned_project, guarded=guarded),
        output_schema=output_schema(spec, guarded=guarded),
        # No annotations.title (the tool's own title says it), and for a read-only tool no destructive or
        # idempotent hint: the MCP spec gives them meaning only when readOnlyHint is false.
        annotations=types.ToolAnnotations(
            read_only_hint=spec.read_only,
            destructive_hint=None if spec.read_only else spec.destructive,
            idempotent_hint=None if spec.read_only else spec.idempotent,
            open_world_hint=spec.open_world,
        ),
        _meta=tool_meta(spec),
    )
