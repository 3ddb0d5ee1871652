"""Batch exports themselves: list, read, create, change, delete, pause and unpause."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from tools.models import (
    SECRET_CONFIG_KEYS,
    BatchExport,
    Deleted,
    DestinationType,
    ExportPage,
    ExportParams,
    Interval,
    Model,
    Params,
    PausedState,
    destination_config_problem,
)
from tools.spec import READ, WRITE, NotPossible, Preview, ToolSpec, Upstream, newest_id, path_for

EXPORT_PATH = "batch_exports/{batch_export_id}/"

_CONFIG_HELP = (
    "Config keys (required first): AwsS3/S3Compatible: bucket_name, region, prefix, file_format, compression; "
    "Snowflake: database, warehouse, schema, table_name; Postgres/Redshift: database, schema, table_name, host, port; "
    "BigQuery: dataset_id, table_id; Databricks: http_path, catalog, schema, table_name; AzureBlob: container_name; "
    "HTTP: url, token; Workflows: hog_function_id. Newer PostHog holds credentials in integration_id."
)


class DestinationInput(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: DestinationType = Field(description="Destination type (S3 is for older PostHog; newer uses AwsS3).")
    config: dict[str, Any] = Field(description="Destination settings; secrets are write-only.")
    integration_id: int | None = Field(
        None,
        ge=1,
        validation_alias=AliasChoices("integration_id", "integration"),
        description="Integration holding the credentials: copy destination.integration from an export of this type.",
    )


class _ExportFields(BaseModel):
    """Writable fields shared by create, update and the test steps."""

    model: Model | None = Field(None, description="What to export (events when created without it).")
    paused: bool | None = Field(None, description="Whether the export is paused.")
    start_at: datetime | None = Field(None, description="No runs are scheduled before this time.")
    end_at: datetime | None = Field(None, description="No runs are scheduled after this time.")
    hogql_query: str | None = Field(None, max_length=20000, description="HogQL query (model hogql).")
    filters: list[dict[str, Any]] | None = Field(None, description="Property filters, each with a type.")
    timezone: str | None = Field(None, max_length=64, description="IANA timezone for daily/weekly schedules.")
    offset_day: int | None = Field(None, ge=0, le=6, description="Weekly exports: weekday, 0 = Sunday.")
    offset_hour: int | None = Field(None, ge=0, le=23, description="Daily/weekly exports: hour of day.")

    @model_validator(mode="after")
    def _offsets_fit_interval(self) -> Any:
        interval = getattr(self, "interval", None)
        if (self.offset_day is not None or self.offset_hour is not None) and interval is None:
            raise ValueError("offset_day/offset_hour need interval in the same call; send interval too.")
        if self.offset_day is not None and interval != "week":
            raise ValueError("offset_day only applies to weekly exports; set interval to week or drop offset_day.")
        if self.offset_hour is not None and interval not in ("day", "week"):
            raise ValueError("offset_hour only applies to daily or weekly exports; drop it or change interval.")
        return self


def check_destination(destination: DestinationInput | None, *, partial: bool) -> None:
    if destination is None:
        return
    problem = destination_config_problem(destination.type, destination.config, partial=partial)
    if problem:
        raise ValueError(problem)


class CreateParams(_ExportFields, Params):
    name: str = Field(min_length=1, max_length=255, description="Export name.")
    interval: Interval = Field(description="How often a run exports.")
    destination: DestinationInput = Field(description="Where data goes. " + _CONFIG_HELP)

    @model_validator(mode="after")
    def _destination_is_complete(self) -> CreateParams:
        check_destination(self.destination, partial=False)
        return self


class UpdateParams(_ExportFields, ExportParams):
    name: str | None = Field(None, min_length=1, max_length=255, description="New name.")
    interval: Interval | None = Field(None, description="New interval.")
    destination: DestinationInput | None = Field(
        None, description="Type (unchanged) and config keys to change; merged into the stored config."
    )

    @model_validator(mode="after")
    def _destination_keys_are_known(self) -> UpdateParams:
        check_destination(self.destination, partial=True)
        changes = self.model_dump(exclude_none=True, exclude={"project_id", "batch_export_id"})
        if not changes:
            raise ValueError("Nothing to change: pass at least one field to update (for example name or paused).")
        return self


class ListParams(Params):
    limit: int | None = Field(None, ge=1, le=100, description="Page size (default 100).")
    offset: int | None = Field(None, ge=0, description="Items to skip.")


class UnpauseParams(ExportParams):
    backfill: bool = Field(False, description="Also backfill the time the export was paused.")


_DIGEST_KEYS = ("id", "status", "data_interval_start", "data_interval_end", "records_completed", "latest_error")


def _runs_digest(export: Any, keep: int = 5) -> Any:
    """An export with its embedded runs cut to what triage needs, so answers stay small."""
    runs = export.get("latest_runs") if isinstance(export, dict) else None
    if isinstance(runs, list):
        export = dict(export)
        export["latest_runs"] = [
            {k: r[k] for k in _DIGEST_KEYS if r.get(k) is not None} for r in runs[:keep] if isinstance(r, dict)
        ]
    return export


def _shape_list(page: Any) -> Any:
    if isinstance(page, dict) and isinstance(page.get("results"), list):
        return {**page, "results": [_runs_digest(e) for e in page["results"]]}
    return page


def _shape_one(export: Any) -> Any:
    return _runs_digest(export, keep=10)


def export_version(export: dict[str, Any]) -> str:
    """The export's state as one short value: any change to it (name, paused, config...) changes this.

    `last_updated_at` alone is not enough: a change within the same clock tick keeps it.
    """
    stable = {k: v for k, v in export.items() if k != "latest_runs"}
    text = json.dumps(stable, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def is_newer_posthog(export: dict[str, Any]) -> bool:
    """Gen-2 and later PostHog return schedule offsets and a timezone; the docs-page generation does not."""
    return "timezone" in export or "offset_hour" in export


INTERVAL_WORDS = {"hour": "hourly", "day": "daily", "week": "weekly"}


async def read_export(upstream: Upstream, export_id: UUID) -> dict[str, Any]:
    return await upstream.request("GET", path_for(EXPORT_PATH, batch_export_id=export_id))


def export_summary(export: dict[str, Any]) -> dict[str, Any]:
    destination = export.get("destination") or {}
    return {
        "id": export.get("id"),
        "name": export.get("name"),
        "destination_type": destination.get("type"),
        "interval": export.get("interval"),
        "paused": export.get("paused"),
    }


def _masked(value: Any, marker: str) -> Any:
    """A config value with every secret key's value, at any depth, replaced by a marker.

    Secrets nest (Redshift `copy_inputs.authorization`), so masking only the top level would
    put a nested key's value in front of a person.
    """
    if isinstance(value, dict):
        return {k: (marker if k in SECRET_CONFIG_KEYS else _masked(v, marker)) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(v, marker) for v in value]
    return value


def _diff(current: dict[str, Any], params: UpdateParams) -> dict[str, Any]:
    proposed = params.model_dump(mode="json", exclude_none=True, exclude={"project_id", "batch_export_id"})
    changes: dict[str, Any] = {}
    destination = proposed.pop("destination", None)
    for key, new in proposed.items():
        old = current.get(key)
        if old != new:
            changes[key] = {"from": old, "to": new}
    if destination:
        stored = (current.get("destination") or {}).get("config") or {}
        for key, new in destination.get("config", {}).items():
            if key in SECRET_CONFIG_KEYS:
                changes[f"destination.config.{key}"] = "(secret, changed)"
            elif stored.get(key) != new:
                changes[f"destination.config.{key}"] = {
                    "from": stored.get(key),
                    "to": _masked(new, "(secret, changed)"),
                }
        old_type = (current.get("destination") or {}).get("type")
        if destination.get("type") != old_type:
            changes["destination.type"] = {"from": old_type, "to": destination.get("type")}
        if "integration_id" in destination:
            changes["destination.integration_id"] = {
                "from": (current.get("destination") or {}).get("integration"),
                "to": destination["integration_id"],
            }
    return changes


async def preview_create(upstream: Upstream, params: CreateParams) -> Preview:
    details = {
        "name": params.name,
        "model": params.model or "events",
        "interval": params.interval,
        "destination_type": params.destination.type,
        # Not named "config": results drop secret keys under any "config", and the person should
        # still see which secrets will be set (as markers, never values).
        "destination_config": _masked(params.destination.config, "(secret, set)"),
        "paused": bool(params.paused),
    }
    if params.destination.integration_id is not None:
        details["integration_id"] = params.destination.integration_id
    state = "paused" if params.paused else "active"
    summary = (
        f"Create {state} {INTERVAL_WORDS.get(params.interval, params.interval)} export {params.name!r} "
        f"of {details['model']} "
        f"to {params.destination.type} in project {params.project_id}."
    )
    return Preview(summary=summary, details=details, version=await newest_id(upstream, "batch_exports/"))


async def preview_update(upstream: Upstream, params: UpdateParams) -> Preview:
    current = await read_export(upstream, params.batch_export_id)
    old_type = (current.get("destination") or {}).get("type")
    if params.destination is not None and params.destination.type != old_type and is_newer_posthog(current):
        raise NotPossible(
            f"This PostHog cannot change a destination's type ({old_type} to {params.destination.type}); "
            f"send destination.type {old_type}, or create a new export for {params.destination.type}."
        )
    changes = _diff(current, params)
    summary = f"Update export {current.get('name')!r}: " + (
        ", ".join(changes) if changes else "no field differs from the current state"
    )
    return Preview(
        summary=summary + ".",
        details={"export": export_summary(current), "changes": changes},
        version=export_version(current),
        target_id=str(params.batch_export_id),
    )


async def preview_delete(upstream: Upstream, params: ExportParams) -> Preview:
    current = await read_export(upstream, params.batch_export_id)
    running = [r for r in current.get("latest_runs") or [] if r.get("status") in ("Running", "Starting")]
    summary = (
        f"Delete export {current.get('name')!r} ({(current.get('destination') or {}).get('type')}, "
        f"{current.get('interval')}, {'paused' if current.get('paused') else 'active'}). "
        "Its running backfills and runs will be cancelled; it stops exporting and cannot be restored."
    )
    return Preview(
        summary=summary,
        details={"export": export_summary(current), "running_runs": len(running)},
        version=export_version(current),
        target_id=str(params.batch_export_id),
        confirm_name=current.get("name"),
    )


async def preview_pause(upstream: Upstream, params: ExportParams) -> Preview:
    current = await read_export(upstream, params.batch_export_id)
    if current.get("paused"):
        summary = f"Export {current.get('name')!r} is already paused; pausing again changes nothing."
    else:
        summary = f"Pause export {current.get('name')!r}: no new runs are scheduled until it is unpaused."
    return Preview(
        summary=summary,
        details={"export": export_summary(current)},
        version=export_version(current),
        target_id=str(params.batch_export_id),
    )


async def preview_unpause(upstream: Upstream, params: UnpauseParams) -> Preview:
    current = await read_export(upstream, params.batch_export_id)
    details: dict[str, Any] = {"export": export_summary(current)}
    if not current.get("paused"):
        summary = f"Export {current.get('name')!r} is not paused; unpausing changes nothing."
    else:
        summary = f"Unpause export {current.get('name')!r}: scheduled runs resume."
        if params.backfill:
            since = current.get("last_paused_at")
            details["backfill_range"] = {"start_at": since, "end_at": "now"}
            summary += f" Then backfill from {since} (when it was paused) to now."
    return Preview(
        summary=summary, details=details, version=export_version(current), target_id=str(params.batch_export_id)
    )


async def delete_export(upstream: Upstream, params: ExportParams) -> dict[str, Any]:
    await upstream.request("DELETE", path_for(EXPORT_PATH, batch_export_id=params.batch_export_id))
    return {"deleted": True, "id": str(params.batch_export_id)}


TOOLS = [
    ToolSpec(
        name="batch-export-list",
        title="List batch exports",
        description="List the project's batch exports, newest first, each with its latest run statuses.",
        method="GET",
        path="batch_exports/",
        scope=READ,
        params=ListParams,
        output=ExportPage,
        query=("limit", "offset"),
        shape=_shape_list,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    ToolSpec(
        name="batch-export-get",
        title="Get a batch export",
        description="Read one batch export: destination (secrets omitted), schedule, state and its 10 latest runs.",
        method="GET",
        path=EXPORT_PATH,
        scope=READ,
        params=ExportParams,
        output=BatchExport,
        shape=_shape_one,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    ToolSpec(
        name="batch-export-create",
        title="Create a batch export",
        description="Create a scheduled batch export to a destination.",
        method="POST",
        path="batch_exports/",
        scope=WRITE,
        params=CreateParams,
        output=BatchExport,
        shape=_shape_one,
        preview=preview_create,
        read_only=False,
        destructive=False,
        idempotent=False,
    ),
    ToolSpec(
        name="batch-export-update",
        title="Update a batch export",
        description="Change fields of a batch export (PATCH); destination config is merged, so secrets need not be resent.",
        method="PATCH",
        path=EXPORT_PATH,
        scope=WRITE,
        params=UpdateParams,
        output=BatchExport,
        shape=_shape_one,
        preview=preview_update,
        read_only=False,
        destructive=True,
        idempotent=True,
    ),
    ToolSpec(
        name="batch-export-delete",
        title="Delete a batch export",
        description="Delete a batch export; its running backfills and runs are cancelled.",
        method="DELETE",
        path=EXPORT_PATH,
        scope=WRITE,
        params=ExportParams,
        output=Deleted,
        preview=preview_delete,
        handler=delete_export,
        read_only=False,
        destructive=True,
        idempotent=True,
    ),
    ToolSpec(
        name="batch-export-pause",
        title="Pause a batch export",
        description="Pause a batch export's schedule; a paused export can be unpaused later.",
        method="POST",
        path=EXPORT_PATH + "pause/",
        scope=WRITE,
        params=ExportParams,
        output=PausedState,
        preview=preview_pause,
        read_only=False,
        destructive=False,
        idempotent=True,
    ),
    ToolSpec(
        name="batch-export-unpause",
        title="Unpause a batch export",
        description="Resume a paused batch export, optionally backfilling the paused period.",
        method="POST",
        path=EXPORT_PATH + "unpause/",
        scope=WRITE,
        params=UnpauseParams,
        output=PausedState,
        preview=preview_unpause,
        read_only=False,
        destructive=False,
        idempotent=True,
    ),
]
