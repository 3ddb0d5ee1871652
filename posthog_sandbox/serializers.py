"""Objects as PostHog's serializers answer them (docs/posthog-api.md, "Exports and destinations"), secrets removed at every depth."""

from __future__ import annotations

from typing import Any

from . import destinations as d
from .timeutil import drf


def _coerce(config: dict[str, Any], spec: d.Spec | None) -> dict[str, Any]:
    """Gen-3 converts stringified stored values back to declared types (docs/posthog-api.md, "Exports and destinations")."""
    out = dict(config)
    for key, value in config.items():
        kind = (spec or {}).get(key, d.BASE_FIELDS.get(key, ("any", False)))[0]
        if isinstance(value, str):
            if kind == "bool" and value.lower() in ("true", "false"):
                out[key] = value.lower() == "true"
            elif kind == "int" and value.strip().lstrip("-").isdigit():
                out[key] = int(value)
    return out


def destination(export: dict[str, Any], generation: int) -> dict[str, Any]:
    dest = export["destination"]
    config = d.strip_secrets(dest["config"], d.SECRET_FIELDS.get(dest["type"], set()))
    if generation >= 3:
        config = _coerce(config, d.fields_for(generation, dest["type"]))
    return {"type": dest["type"], "config": config, "integration": dest.get("integration")}


# Fields the older (Gen-1) run model does not have (docs/posthog-api.md, "Runs").
GEN1_MISSING_RUN_FIELDS = ("records_failed", "batch_export_on_demand")


def run(value: dict[str, Any], generation: int = 3) -> dict[str, Any]:
    out = {k: v for k, v in value.items() if not k.startswith("_")}
    if generation < 3:
        for key in GEN1_MISSING_RUN_FIELDS:
            out.pop(key, None)
    for key in ("data_interval_start", "data_interval_end", "created_at", "finished_at", "last_updated_at"):
        out[key] = drf(out[key])
    return out


def export(value: dict[str, Any], generation: int, latest_runs: list[dict[str, Any]]) -> dict[str, Any]:
    interval, offset = value["interval"], value.get("interval_offset")
    out: dict[str, Any] = {
        "id": value["id"],
        "team_id": value["team_id"],
        "name": value["name"],
        "model": value["model"],
        "destination": destination(value, generation),
        "interval": interval,
        "paused": value["paused"],
        "created_at": drf(value["created_at"]),
        "last_updated_at": drf(value["last_updated_at"]),
        "last_paused_at": drf(value.get("last_paused_at")),
        "start_at": drf(value.get("start_at")),
        "end_at": drf(value.get("end_at")),
        "latest_runs": [run(r, generation) for r in latest_runs],
    }
    if generation >= 3:
        out.update(
            {
                "hogql_query": value.get("hogql_query"),
                "hogql_modifiers": value.get("hogql_modifiers"),
                "primary_key": value.get("primary_key"),
                "version_key": value.get("version_key"),
                "incremental_mode": value.get("incremental_mode") or "APPEND",
            }
        )
    out["schema"] = value.get("schema")
    out["filters"] = value.get("filters")
    if generation >= 3:
        out["timezone"] = value.get("timezone") or "UTC"
        out["offset_day"] = (offset or 0) // 86400 if interval == "week" else None
        out["offset_hour"] = ((offset or 0) % 86400) // 3600 if interval in ("day", "week") else None
    return out


def backfill(value: dict[str, Any], generation: int, progress: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": value["id"],
        "progress": progress,
        "start_at": drf(value["start_at"]),
        "end_at": drf(value["end_at"]),
        "status": value["status"],
        "created_at": drf(value["created_at"]),
        "finished_at": drf(value["finished_at"]),
        "last_updated_at": drf(value["last_updated_at"]),
    }
    if generation >= 3:
        out["total_records_count"] = value.get("total_records_count")
        out["adjusted_start_at"] = drf(value.get("adjusted_start_at"))
    out["team"] = value["team"]
    out["batch_export"] = value["batch_export"]
    return out


def log_entry(value: dict[str, Any]) -> dict[str, Any]:
    return {
        "log_source_id": value["log_source_id"],
        "instance_id": value["instance_id"],
        "timestamp": drf(value["timestamp"]),
        "level": value["level"],
        "message": value["message"],
    }
