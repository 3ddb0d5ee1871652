"""What tools accept: the parameter bases every tool builds on, and the strict input enums.

Input enums are strict, so a model gets a clear error before anything is sent. Their values
follow `docs/posthog-api.md`, section "Exports and destinations" and section "Runs".
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

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

    project_id: int = Field(ge=1, description="PostHog project id.")


class ExportParams(Params):
    batch_export_id: UUID = Field(description="Batch export id (UUID).")


class RunParams(Params):
    batch_export_id: UUID = Field(description="Batch export id (UUID).")
    run_id: UUID = Field(description="Run id (UUID).")


class BackfillParams(Params):
    batch_export_id: UUID = Field(description="Batch export id (UUID).")
    backfill_id: UUID = Field(description="Backfill id (UUID).")
