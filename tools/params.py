"""What tools accept: the parameter bases every tool builds on, and the strict input enums.

Input enums are strict, so a model gets a clear error before anything is sent. Their values
follow `docs/posthog-api.md`, section "Exports and destinations" and section "Runs".

Agent frameworks that turn a tool into an OpenAI strict function (docs/architecture.md, "Every agent
framework") make every optional argument required, so a model has to send something for each: an
empty string or null. Here both mean "not given" (`without_empty`, which server/app.py applies to
every call before validating it). Free-form objects (a destination's config, a filter) may also come
as a string holding the JSON object, the form a strict or Gemini function can carry (`JsonObject`).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, get_args, get_origin
from uuid import UUID

from annotated_types import MinLen
from pydantic import (
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    ValidationInfo,
    field_validator,
)
from pydantic.config import JsonDict
from pydantic.fields import FieldInfo

# A parameter marked UNLISTED is held by the tool's model on every call but left out of the schema
# tools/list shows (server/definitions.py): a continuation's offset, which only the `call` an answer gives
# back carries, or a filter a tool takes "with the same arguments" as another that lists it.
UNLISTED: JsonDict = {"unlisted": True}

Model = Literal["events", "persons", "sessions", "hogql"]
Interval = Literal["hour", "day", "week", "every 5 minutes", "every 15 minutes"]
RunStatus = Literal[
    "Cancelled",
    "Completed",
    "ContinuedAsNew",
    "Failed",
    "FailedRetryable",
    "FailedBilling",
    "Terminated",
    "TimedOut",
    "Running",
    "Starting",
]
LogLevel = Literal["DEBUG", "LOG", "INFO", "WARNING", "ERROR"]
RunOrdering = Literal["created_at", "-created_at", "data_interval_start", "-data_interval_start"]
BackfillOrdering = Literal["created_at", "-created_at", "start_at", "-start_at"]


def _names(name: str, field: FieldInfo) -> list[str]:
    """The keys a caller may send a field under: its name and any validation alias."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [name] + [choice for choice in alias.choices if isinstance(choice, str)]
    return [name, alias] if isinstance(alias, str) else [name]


def _not_given(value: Any, field: FieldInfo) -> bool:
    """An empty value a strict function had to send for an optional argument. An empty list counts only
    where the field needs at least one item: elsewhere (an export's filters) an empty list is a value."""
    if value is None or value == "":
        return True
    takes_list = any(get_origin(t) is list for t in (field.annotation, *get_args(field.annotation)))
    return value == [] and takes_list and any(isinstance(m, MinLen) and m.min_length > 0 for m in field.metadata)


def _nested(annotation: Any) -> type[Arguments] | None:
    """The argument model a field holds (alone or optional), if any."""
    options = get_args(annotation) or (annotation,)
    return next((o for o in options if isinstance(o, type) and issubclass(o, Arguments)), None)


def without_empty(model: type[BaseModel], arguments: dict[str, Any]) -> dict[str, Any]:
    """`arguments` less the optional ones a strict function sent empty ("" or null), at every level of
    argument models, so their defaults apply. A step of its own before validation rather than a model
    validator: a mode="before" validator would make a strict JSON validation read its fields as Python
    values, where a datetime string is no longer a datetime (server/app.py validates strictly)."""
    out: dict[str, Any] = {}
    for key, value in arguments.items():
        named = next(((n, f) for n, f in model.model_fields.items() if key in _names(n, f)), None)
        if named is None:
            out[key] = value  # unknown: refused by the model, naming it
            continue
        field = named[1]
        if not field.is_required() and _not_given(value, field):
            continue
        inner = _nested(field.annotation)
        out[key] = without_empty(inner, value) if inner is not None and isinstance(value, dict) else value
    return out


class Arguments(BaseModel):
    """What every tool's arguments share: strict, so a typo is an error rather than a silent no-op. A call's
    optional arguments sent as "" or null are taken as not given first (`without_empty`)."""

    model_config = ConfigDict(extra="forbid")


def _json_object(value: Any, info: ValidationInfo) -> Any:
    if not isinstance(value, str):
        return value
    try:
        parsed = json.loads(value)
    except ValueError:
        parsed = None
    if not isinstance(parsed, dict):
        # The text itself is not repeated: a destination config may hold a password.
        raise ValueError(
            f"{info.field_name} must be a JSON object, or a string holding one; the string sent is not a JSON object"
        )
    return parsed


JsonObject = Annotated[dict[str, Any], BeforeValidator(_json_object)]
"""A free-form object, also accepted as a string holding it (server/definitions.py lists it that way)."""


class Params(Arguments):
    """Every tool's arguments but the one about the key itself: which project they act on."""

    project_id: int

    @field_validator("project_id")
    @classmethod
    def _is_a_project_id(cls, value: int) -> int:
        # A check rather than `ge=1`, which every tool's listed schema would repeat (server/definitions.py).
        if value < 1:
            raise ValueError(f"project_id {value} is not a project id: they start at 1 (see batch-export-projects)")
        return value


class ExportParams(Params):
    batch_export_id: UUID


class RunParams(Params):
    batch_export_id: UUID
    run_id: UUID


class BackfillParams(Params):
    batch_export_id: UUID
    backfill_id: UUID
