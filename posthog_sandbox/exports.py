"""A new stored export from validated create fields, with the defaults PostHog fills in (docs/posthog-api.md,
"Exports and destinations"). Used by the create handler and the seed alike."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from . import simulation
from .store import Store


def make_export(
    store: Store,
    generation: int,
    team_id: int,
    fields: dict[str, Any],
    now: datetime,
    export_id: str | None = None,
    save: bool = True,
) -> dict[str, Any]:
    """A new stored export from validated fields, with PostHog's defaults for the rest."""
    destination = dict(fields["destination"])
    config = dict(destination["config"])
    if generation >= 3 and destination["type"] in ("AwsS3", "S3Compatible", "AzureBlob"):
        config["legacy_parquet_extension"] = False
    destination["config"] = config
    export = {
        "id": export_id or str(uuid.uuid4()),
        "team_id": team_id,
        "name": fields["name"],
        "model": fields.get("model", "events"),
        "destination": destination,
        "interval": fields["interval"],
        "paused": fields.get("paused", False),
        "deleted": False,
        "created_at": now,
        "last_updated_at": now,
        "last_paused_at": fields.get("last_paused_at"),
        "start_at": fields.get("start_at"),
        "end_at": fields.get("end_at"),
        "hogql_query": fields.get("hogql_query"),
        "schema": fields.get("schema"),
        "_columns": fields.get("_columns"),  # a hogql model's output columns (it has no schema)
        "filters": fields.get("filters"),
        "timezone": fields.get("timezone") or "UTC",
        "interval_offset": fields.get("interval_offset"),
        "hogql_modifiers": fields.get("hogql_modifiers"),
        "primary_key": fields.get("primary_key"),
        "version_key": fields.get("version_key"),
        "incremental_mode": fields.get("incremental_mode") or "APPEND",
        "_outcome": simulation.default_outcome(),
    }
    export["next_tick"] = simulation.next_tick_after(export, now)
    if save:
        store.put_export(export)
    return export
