"""PostHog's batch-export objects as tools return them.

Output models are tolerant: they name the fields worth knowing, accept any others, and use
plain strings for PostHog's enums, so that a newer PostHog with new values still validates.
Field lists follow docs/posthog-api.md, sections "Exports and destinations", "Runs" and "Backfills".
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Tolerant(BaseModel):
    model_config = ConfigDict(extra="allow")


class Destination(_Tolerant):
    type: str


class Run(_Tolerant):
    id: str
    status: str
    data_interval_start: str | None = None
    data_interval_end: str | None = None
    latest_error: str | None = None


class BatchExport(_Tolerant):
    id: str
    name: str
    interval: str
    paused: bool
    destination: Destination


class Backfill(_Tolerant):
    id: str
    status: str
    start_at: str | None = None
    end_at: str | None = None


class LogEntry(_Tolerant):
    timestamp: str
    level: str
    message: str


class ExportPage(_Tolerant):
    results: list[BatchExport]


class RunPage(_Tolerant):
    results: list[Run]


class BackfillPage(_Tolerant):
    results: list[Backfill]


class LogPage(_Tolerant):
    results: list[LogEntry]
    source: str | None = Field(
        None, description="Where the rows came from: logs_route, or query_api where PostHog refused the route."
    )


class BackfillStarted(_Tolerant):
    backfill_id: str


class PausedState(_Tolerant):
    paused: bool


class Cancelled(_Tolerant):
    cancelled: bool


class UpdateApplied(_Tolerant):
    """What an update changed, as PostHog now holds it, and the export's new version; for many exports,
    the plan's receipt (updated, skipped, deferred)."""

    batch_export_id: str | None = None
    version: str | None = None


class Deleted(BaseModel):
    deleted: bool
    id: str


class TestSteps(_Tolerant):
    steps: list[dict[str, Any]]


class TestStepResult(_Tolerant):
    name: str | None = None
    result: dict[str, Any] | None = None
