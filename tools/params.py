"""What tools accept: the parameter bases every tool builds on, and the strict input enums.

Input enums are strict, so a model gets a clear error before anything is sent. Their values
follow `docs/posthog-api.md`, section "Exports and destinations" and section "Runs".
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, field_validator
from pydantic.config import JsonDict

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


class Params(BaseModel):
    """Every tool's arguments: strict, so a typo is an error rather than a silent no-op."""

    model_config = ConfigDict(extra="forbid")

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
