"""Hypothesis strategies written from a tool's advertised inputSchema, and the mutations that break it.

hypothesis-jsonschema would be the library for this, but its 0.23 line fails against current
hypothesis (`'many' object has no attribute 'more'`). Our schemas use a small subset of JSON
Schema (object, array, string with format/pattern/length, integer with bounds, boolean, enum),
which is all this module covers; anything else fails loudly rather than generating nonsense.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, timedelta, timezone
from typing import Any

from hypothesis import strategies as st
from jsonschema import Draft202012Validator, FormatChecker

JSON_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=20))
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
_OFFSETS = st.sampled_from([UTC, timezone(timedelta(hours=2)), timezone(timedelta(hours=-7, minutes=-30))])
# RFC 3339 wants an offset; the server also takes a naive time (PostHog reads it as UTC), a
# tolerance noted in benchmarks/README.md rather than a refusal this suite insists on.
_RFC3339 = re.compile(r"^\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)?$")
_KNOWN = {
    "type",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "enum",
    "format",
    "pattern",
    "minLength",
    "maxLength",
    "minimum",
    "maximum",
    "maxItems",
    "minItems",
    "description",
    "default",
    "unlisted",  # tools.params.UNLISTED: held on call, not listed; no bearing on the values
}

FORMATS = FormatChecker()
FORMATS.checks("date-time")(lambda value: not isinstance(value, str) or bool(_RFC3339.match(value)))


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    """The advertised schema with its formats asserted (uuid, date-time), as a careful client would."""
    return Draft202012Validator(schema, format_checker=FORMATS)


def from_schema(
    schema: dict[str, Any], named: dict[str, st.SearchStrategy[Any]] | None = None
) -> st.SearchStrategy[Any]:
    """Values valid against `schema`; `named` replaces the strategy of properties by name (e.g. real ids)."""
    named = named or {}
    unknown = set(schema) - _KNOWN
    assert not unknown, f"schema keyword(s) {unknown} not covered by schema_strategies"
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    kind = schema.get("type")
    if kind == "object":
        properties = schema.get("properties", {})
        if not properties and schema.get("additionalProperties") is False:
            return st.just({})
        if not properties:
            return st.dictionaries(st.text(min_size=1, max_size=12), JSON_VALUES, max_size=3)
        required = schema.get("required", [])
        strategies = {
            name: named[name] if name in named else from_schema(sub, named) for name, sub in properties.items()
        }
        return st.fixed_dictionaries(
            {name: strategies[name] for name in required},
            optional={name: s for name, s in strategies.items() if name not in required},
        )
    if kind == "array":
        items = from_schema(schema["items"], named) if "items" in schema else JSON_VALUES
        return st.lists(items, min_size=schema.get("minItems", 0), max_size=min(schema.get("maxItems", 4), 4))
    if kind == "string":
        return _string(schema)
    if kind == "integer":
        return st.integers(min_value=schema.get("minimum"), max_value=schema.get("maximum"))
    if kind == "boolean":
        return st.booleans()
    raise AssertionError(f"schema type {kind!r} not covered by schema_strategies")


def _string(schema: dict[str, Any]) -> st.SearchStrategy[str]:
    low, high = schema.get("minLength", 0), schema.get("maxLength")
    if schema.get("format") == "uuid":
        return st.uuids().map(str)
    if schema.get("format") == "date-time":
        return st.datetimes(timezones=_OFFSETS).map(lambda d: d.isoformat())
    if "pattern" in schema:
        strategy = st.from_regex(schema["pattern"], fullmatch=True)
    else:
        strategy = st.text(min_size=low, max_size=min(high or 40, 40))
    return strategy.filter(lambda s: low <= len(s) and (high is None or len(s) <= high))


# --- mutations -----------------------------------------------------------------------------------

BAD_IDS = [
    "../../x",
    "..%2F..%2Fx",
    "%2e%2e",
    "a?b=c",
    "x#y",
    "x/y",
    "ünï/cødé",
    "",
    " ",
    "\x00",
    "6e6ae775-fb2c-4f22-9cba-21655bc183f9/../../other",
    "6e6ae775-fb2c-4f22-9cba-21655bc183f9?limit=1",
]
BAD_NUMBERS = [-1, 0, -(2**63), 2**63, 10**30, 2**53 + 1]
BAD_DATES = [
    "2024-13-45T00:00:00Z",
    "yesterday",
    "2024-02-30",
    "2024-01-01T25:61:61Z",
    "0000-00-00",
    "-99999d",
    "1e9",
    "2024-01-01T00:00:00",
    "2024-01-01T00:00:00Z/../x",
]
WRONG_TYPES: dict[str, list[Any]] = {
    "integer": ["1", True, 1.5, None, [], {}],
    "string": [1, True, None, [], {}],
    "boolean": ["true", 1, None, [], {}],
    "array": ["ERROR", 1, None, {}],
    "object": ["{}", 1, None, []],
}
HUGE = "x" * 200_000


@st.composite
def mutated(draw: st.DrawFn, valid: dict[str, Any], schema: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """One mutation of `valid`: its name and the broken arguments."""
    arguments = copy.deepcopy(valid)
    properties: dict[str, Any] = schema.get("properties", {})
    present = sorted(arguments)
    options = ["extra_key", "huge_key"]
    if present:
        options += ["wrong_type", "huge_string"]
    if any(name in arguments for name in schema.get("required", [])):
        options.append("drop_required")
    if any(_is_id(properties[n]) for n in properties):
        options.append("bad_id")
    if any(properties[n].get("type") == "integer" for n in properties):
        options.append("bad_number")
    if any(_is_time(properties[n]) for n in properties):
        options.append("bad_date")
    kind = draw(st.sampled_from(options))
    if kind == "drop_required":
        del arguments[draw(st.sampled_from([n for n in schema["required"] if n in arguments]))]
    elif kind == "extra_key":
        key = draw(st.text(min_size=1, max_size=30).filter(lambda k: k not in properties))
        arguments[key] = draw(JSON_VALUES)
    elif kind == "huge_key":
        arguments["k" * 10_000] = 1
    elif kind == "wrong_type":
        name = draw(st.sampled_from(present))
        arguments[name] = draw(st.sampled_from(WRONG_TYPES[properties[name].get("type", "object")]))
    elif kind == "huge_string":
        arguments[draw(st.sampled_from(present))] = HUGE
    elif kind == "bad_id":
        arguments[draw(st.sampled_from([n for n in properties if _is_id(properties[n])]))] = draw(
            st.sampled_from(BAD_IDS)
        )
    elif kind == "bad_number":
        name = draw(st.sampled_from([n for n in properties if properties[n].get("type") == "integer"]))
        arguments[name] = draw(st.sampled_from(BAD_NUMBERS))
    elif kind == "bad_date":
        arguments[draw(st.sampled_from([n for n in properties if _is_time(properties[n])]))] = draw(
            st.sampled_from(BAD_DATES)
        )
    return kind, arguments


def _is_id(schema: dict[str, Any]) -> bool:
    return schema.get("format") == "uuid"


def _is_time(schema: dict[str, Any]) -> bool:
    return schema.get("format") == "date-time" or (schema.get("type") == "string" and "pattern" in schema)
