"""What a tool advertises: a catalog entry turned into an MCP `Tool` definition.

Pydantic's JSON Schema is trimmed here (titles, `$defs`, null branches of optional
inputs) because every byte of `tools/list` is paid for in the model's context.

The listed input schema says what a model needs to choose its arguments: names, types,
enums, bounds, what is required. Limits that only protect the server (string and list
lengths, the exact grammar of a time filter whose description names its formats, an id's
uuid format, unknown keys) are enforced on every call by the tool's parameter model, with an
error that names the argument (`server/app.py` `describe_invalid`); `enforced_input_schema`
is the schema with them, which the generated bad-input tests draw from. A parameter marked
`tools.params.UNLISTED` (a continuation's offset, which the `call` an answer gives back carries)
is enforced and not listed at all.

The listing is also written in the subset every agent framework's converter carries to its
provider (docs/architecture.md, "Every agent framework"): no string format but date-time
(Gemini refuses the rest), no object without properties (a free-form object is listed as a
string holding its JSON, which the parameter model also takes, tools/params.py `JsonObject`),
no boolean `additionalProperties` (google-genai's converter cannot read one), no `default`
(OpenAI strict mode does not take it: the description says it). An optional argument that a
strict converter makes required can be sent as "not given": a string as "", anything else as
null, which the listing allows for it.
A parameter marked `tools.params.UNLISTED` (a continuation's offset, which the `call` an answer
gives back carries) is enforced and not listed at all.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import mcp.types as types
from pydantic import BaseModel

from server.guard.result import TOKEN_PARAM, guarded_output_schema
from tools.declaration import ToolSpec

TOKEN_MAX_CHARS = 2000
TOKEN_SCHEMA = {"type": "string", "description": "From the preview, once the user agreed."}
# Enforced on call, not listed (see the module's docstring).
ENFORCED_ONLY = ("pattern", "maxLength", "minLength", "maxItems", "minItems", "additionalProperties")
SCOPES_META = "posthog/requiredScopes"
# The one string format every provider's function subset takes; an id's uuid format is enforced on call.
LISTED_FORMATS = ("date-time",)
JSON_TEXT = "JSON-encoded object."


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


def _is_nullable(node: Any) -> bool:
    branches = node.get("anyOf") if isinstance(node, dict) else None
    return isinstance(branches, list) and len(branches) == 2 and {"type": "null"} in branches


def _trim(node: Any, *, null_means_absent: bool) -> Any:
    """Drop titles and fold `anyOf [X, null]` into plain X. An optional input becomes X (absent =
    null). With `null_means_absent` (outputs: results leave null fields out, server/results.py) a
    nullable field also leaves `required`, since it is then absent rather than null."""
    if isinstance(node, list):
        return [_trim(v, null_means_absent=null_means_absent) for v in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title":
            continue
        if key == "properties":
            out[key] = {name: _trim(prop, null_means_absent=null_means_absent) for name, prop in value.items()}
        else:
            out[key] = _trim(value, null_means_absent=null_means_absent)
    if _is_nullable(out):
        other = next(b for b in out.pop("anyOf") if b != {"type": "null"})
        out = {**other, **out}
    if null_means_absent and isinstance(node.get("properties"), dict) and "required" in out:
        nullable = {name for name, prop in node["properties"].items() if _is_nullable(prop)}
        out["required"] = [name for name in out["required"] if name not in nullable]
        if not out["required"]:
            del out["required"]
    if out.get("default", 0) is None:
        del out["default"]
    if out.get("additionalProperties") is True:
        del out["additionalProperties"]  # the default, so it costs bytes and says nothing
    return out


def compact_schema(model: type[BaseModel], *, null_means_absent: bool) -> dict[str, Any]:
    raw = model.model_json_schema()
    schema: dict[str, Any] = _trim(_inline_refs(raw, raw.get("$defs", {})), null_means_absent=null_means_absent)
    return schema


def _without_enforced(node: Any) -> Any:
    if isinstance(node, list):
        return [_without_enforced(v) for v in node]
    if not isinstance(node, dict):
        return node
    return {
        key: (
            {n: _without_enforced(p) for n, p in value.items() if not p.get("unlisted")}
            if key == "properties"
            else _without_enforced(value)
        )
        for key, value in node.items()
        if key not in ENFORCED_ONLY and not (key == "format" and value not in LISTED_FORMATS)
    }


def unlisted(spec: ToolSpec) -> set[str]:
    """The parameters marked `tools.params.UNLISTED`: held on call, not listed."""
    return {
        name
        for name, field in spec.params.model_fields.items()
        if isinstance(field.json_schema_extra, dict) and field.json_schema_extra.get("unlisted")
    }


def _shown(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value)
    return value if isinstance(value, str) else json.dumps(value)


def _is_plain_string(node: dict[str, Any]) -> bool:
    return node.get("type") == "string" and not {"enum", "format"} & set(node)


def _nullable(node: dict[str, Any]) -> dict[str, Any]:
    """`node` that also takes null: a second type where that is all it takes, else a null branch (an enum
    listing null would be refused by Gemini, and an object's type list is missed by some converters)."""
    kind = node.get("type")
    if isinstance(kind, str) and kind != "object" and "enum" not in node:
        return {**node, "type": [kind, "null"]}
    branch = {k: v for k, v in node.items() if k != "description"}
    described = {"description": node["description"]} if "description" in node else {}
    return {"anyOf": [branch, {"type": "null"}], **described}


def _optional(node: dict[str, Any]) -> dict[str, Any]:
    """An argument a strict converter makes required: its default said in words, or a way to send none."""
    if "default" in node:
        out = {k: v for k, v in node.items() if k != "default"}
        said = out.get("description", "")
        if "default" not in said.lower():
            shown = f"default {_shown(node['default'])}."
            out["description"] = f"{said.removesuffix('.')}; {shown}" if said else shown.capitalize()
        return out
    return node if _is_plain_string(node) else _nullable(node)


def _portable(node: Any, *, root: bool = False) -> Any:
    """The listed schema in the subset every framework's converter carries (see the module's docstring)."""
    if isinstance(node, list):
        return [_portable(v) for v in node]
    if not isinstance(node, dict):
        return node
    if not root and node.get("type") == "object" and not node.get("properties"):
        said = node.get("description", "")
        return {"type": "string", "description": f"{said} {JSON_TEXT}".strip()}
    out = {k: _portable(v) for k, v in node.items() if k != "properties"}
    if isinstance(node.get("properties"), dict):
        required = set(node.get("required", []))
        out["properties"] = {
            name: _portable(prop) if name in required else _optional(_portable(prop))
            for name, prop in node["properties"].items()
        }
    return out


def input_schema(spec: ToolSpec, *, pinned_project: bool, guarded: bool) -> dict[str, Any]:
    """The inputSchema `tools/list` gives."""
    listed: dict[str, Any] = _portable(
        _without_enforced(enforced_input_schema(spec, pinned_project=pinned_project, guarded=guarded)), root=True
    )
    hidden = unlisted(spec)
    listed["properties"] = {name: prop for name, prop in listed["properties"].items() if name not in hidden}
    return listed


def enforced_input_schema(spec: ToolSpec, *, pinned_project: bool, guarded: bool) -> dict[str, Any]:
    """The listed schema plus the limits a call is held to."""
    schema = compact_schema(spec.params, null_means_absent=False)
    # The marker is ours, not JSON Schema: it says what is listed, and leaves the schema here.
    properties = {
        name: {k: v for k, v in prop.items() if k != "unlisted"} for name, prop in schema.get("properties", {}).items()
    }
    required = [r for r in schema.get("required", [])]
    if pinned_project:
        properties.pop("project_id", None)
        required = [r for r in required if r != "project_id"]
    if guarded:
        properties[TOKEN_PARAM] = {**TOKEN_SCHEMA, "maxLength": TOKEN_MAX_CHARS}
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
    inner = _shallow(compact_schema(spec.output, null_means_absent=True), 1)
    return guarded_output_schema(inner) if guarded else inner


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
        # The tool's own sentence. The scope is in `_meta`; that a write previews first is said by its
        # confirmation_token parameter and by the server's instructions, not again in each description.
        description=spec.description,
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
