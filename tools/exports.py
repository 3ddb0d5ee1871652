"""Batch exports themselves: list, read, create, change, delete, pause and unpause."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field, field_validator, model_validator

from tools import continuation, secrets
from tools.declaration import MAX_PLAN_WRITES, READ, WRITE, NotPossible, Preview, ToolSpec
from tools.destinations import (
    CONFIG_HELP,
    INTEGRATION_ALWAYS,
    INTEGRATION_ON_EVERY_UPDATE,
    INTEGRATION_ON_NEWER,
    SECRET_CONFIG_KEYS,
    DestinationInput,
    check_destination,
    destination_config_problem,
    missing_integration,
)
from tools.integrations import held_keys, held_refusal, stored_integration
from tools.models import BatchExport, Deleted, ExportPage, PausedState, UpdateApplied
from tools.params import UNLISTED, ExportParams, Interval, JsonObject, Model, Params
from tools.refusals import asked_once, copy_inputs_missing, hogql_query_problem, known, refuse_destination
from tools.request import build_request
from tools.upstream import Request, Upstream, UpstreamError
from tools.versions import export_version, newest_id

EXPORT_PATH = "batch_exports/{batch_export_id}/"


class _ExportFields(BaseModel):
    """Writable fields shared by create, update and the test steps."""

    model: Model | None = Field(None, description="What to export (default events).")
    paused: bool | None = Field(None, description="Paused or not.")
    start_at: datetime | None = Field(None, description="No runs before this time.")
    end_at: datetime | None = Field(None, description="No runs after this time.")
    hogql_query: str | None = Field(None, max_length=20000, description="HogQL query (model hogql).")
    filters: list[JsonObject] | None = Field(None, description="Property filters, each with a type.")
    timezone: str | None = Field(None, max_length=64, description="IANA timezone (daily/weekly).")
    offset_day: int | None = Field(None, ge=0, le=6, description="Weekly: weekday, 0 = Sunday.")
    offset_hour: int | None = Field(None, ge=0, le=23, description="Daily/weekly: hour of day.")

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


class CreateParams(_ExportFields, Params):
    name: str = Field(min_length=1, max_length=255, description="Export name.")
    interval: Interval = Field(description="How often a run exports.")
    destination: DestinationInput = Field(description="Where data goes. " + CONFIG_HELP)

    @field_validator("destination")
    @classmethod
    def _destination_is_complete(cls, destination: DestinationInput) -> DestinationInput:
        """A field check, so it is reported beside any other field that is missing or wrong: an
        incomplete create names everything it lacks in one refusal."""
        problems = create_problems(destination)
        if problems:
            raise ValueError("; ".join(problems))
        return destination

    @model_validator(mode="after")
    def _hogql_query_is_supported(self) -> CreateParams:
        if self.model == "hogql" and self.hogql_query and (problem := hogql_query_problem(self.hogql_query)):
            raise ValueError(problem)
        return self


def create_problems(destination: DestinationInput) -> list[str]:
    """Everything a create's destination lacks or PostHog would refuse whatever its generation, at once."""
    problems = []
    config = destination_config_problem(destination.type, destination.config, partial=False)
    if config:
        problems.append(config)
    if destination.integration_id is None and destination.type in INTEGRATION_ALWAYS:
        problems.append(missing_integration(destination.type))
    if destination.config.get("legacy_parquet_extension") is True:
        problems.append(
            "destination.config.legacy_parquet_extension cannot be true on a new export: PostHog keeps it only "
            "for exports that already write the codec into their Parquet file names; drop it"
        )
    if destination.type == "Redshift" and (problem := copy_inputs_missing(destination.config)):
        problems.append(problem)
    return problems


_FLEET = ("on_integration", "all_of_type", "offset")


class UpdateParams(_ExportFields, Params):
    batch_export_id: UUID | None = Field(None, description="One export.")
    on_integration: int | None = Field(None, ge=1, description="Or: all exports using it.")
    # None rather than false and 0 by default: what is not given is not sent in the PATCH either.
    all_of_type: bool | None = Field(None, description="Or: all of destination.type.")
    offset: int | None = Field(None, ge=0, description="See receipt.next.", json_schema_extra=UNLISTED)
    name: str | None = Field(None, min_length=1, max_length=255, description="New name.")
    interval: Interval | None = Field(None, description="New interval.")
    destination: DestinationInput | None = Field(None, description="Its type and the config keys to change (merged).")

    @model_validator(mode="after")
    def _destination_keys_are_known(self) -> UpdateParams:
        check_destination(self.destination, partial=True)
        changes = self.model_dump(exclude_none=True, exclude={"project_id", "batch_export_id", *_FLEET})
        if not changes:
            raise ValueError("Nothing to change: pass at least one field to update (for example name or paused).")
        # PostHog never changes an export's model, so a write that names hogql is refused or of a hogql export.
        if self.model == "hogql" and self.hogql_query and (problem := hogql_query_problem(self.hogql_query)):
            raise ValueError(problem)
        many = self.on_integration is not None or bool(self.all_of_type)
        if many == (self.batch_export_id is not None):
            raise ValueError(
                "say which exports: batch_export_id for one, or on_integration / all_of_type for many (not both)"
            )
        if many and (self.destination is None or set(changes) != {"destination"}):
            raise ValueError(
                f"a change to many exports (at most {MAX_PLAN_WRITES} a plan) is a change of their destination: "
                "pass destination only (its type, and the config keys or integration_id to set)"
            )
        if not many and self.offset:
            raise ValueError("offset continues a change to many exports; drop it with batch_export_id")
        return self

    @property
    def many(self) -> bool:
        return self.batch_export_id is None


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
    """Each export with a digest of its runs; PostHog's page links left out: `omitted.call` continues."""
    if isinstance(page, dict) and isinstance(page.get("results"), list):
        kept = {k: v for k, v in page.items() if k not in ("next", "previous")}
        return {**kept, "results": [_runs_digest(e) for e in page["results"]]}
    return page


def resume_list(params: ListParams, page: Any, shown: int) -> dict[str, Any] | None:
    """The call listing the exports after the first `shown` of this page: PostHog pages exports by
    offset (docs/posthog-api.md, "Pagination"), so it is the same call at offset + shown."""
    results = page.get("results") if isinstance(page, dict) else None
    if not isinstance(results, list):
        return None
    offset = params.offset or 0
    following = offset + shown
    total = page.get("count") if isinstance(page.get("count"), int) else None
    more = following < total if total is not None else shown < len(results) or bool(page.get("next"))
    if not more:
        return None
    arguments = params.model_dump(mode="json", exclude_none=True) | {"offset": following}
    left = total - following if total is not None else None
    if shown < len(results):
        reason = f"{shown} of the {len(results)} exports on this page fit the answer budget"
    else:
        reason = f"exports {offset + 1}-{following} of {total if total is not None else 'more'} shown"
    return continuation.omitted("batch-export-list", arguments, reason + "; the call continues after them.", left)


def _shape_one(export: Any) -> Any:
    return _runs_digest(export, keep=10)


def is_newer_posthog(export: dict[str, Any]) -> bool:
    """Gen-2 and later PostHog return schedule offsets and a timezone; the docs-page generation does not."""
    return "timezone" in export or "offset_hour" in export


INTERVAL_WORDS = {"hour": "hourly", "day": "daily", "week": "weekly"}
# Older PostHog knows only S3 (inline keys); newer PostHog only AwsS3 and S3Compatible.
_S3_BY_GENERATION = ("S3", "AwsS3", "S3Compatible")


async def runs_newer_posthog(upstream: Upstream) -> bool:
    """Whether this PostHog has the newer code (Gen-2 on), known before anything is written.

    An export of the project says so by its fields; in a project without one, the test steps of
    AwsS3 (a type only newer PostHog knows) are a read that only newer PostHog answers.
    """
    page = await upstream.request("GET", "batch_exports/", query={"limit": 1})
    results = page.get("results") if isinstance(page, dict) else None
    if isinstance(results, list) and results and isinstance(results[0], dict):
        return is_newer_posthog(results[0])
    try:
        await upstream.request("GET", "batch_exports/test/", query={"destination": "AwsS3"})
    except UpstreamError as error:
        if error.status in (400, 403, 404):
            return False
        raise
    return True


def destination_to_send(params: UpdateParams, export: dict[str, Any]) -> dict[str, Any] | None:
    """The destination an update sends: type and config always together (PostHog answers 500 to one
    without the other), and the stored integration again when the caller names none (some types have
    no fallback to it, Redshift refuses to lose it; the others keep it either way)."""
    if params.destination is None:
        return None
    sent = params.destination.model_dump(mode="json", exclude_none=True)
    if "integration_id" not in sent:
        stored = stored_integration(export)
        if stored is not None:
            sent["integration_id"] = stored
    return sent


async def read_export(upstream: Upstream, params: Params) -> dict[str, Any]:
    """The export as batch-export-get reads it (any tool's parameters naming batch_export_id will do)."""
    export: dict[str, Any] = await upstream.send(build_request(GET_EXPORT, params))
    return export


def export_summary(export: dict[str, Any]) -> dict[str, Any]:
    destination = export.get("destination") or {}
    return {
        "id": export.get("id"),
        "name": export.get("name"),
        "destination_type": destination.get("type"),
        "interval": export.get("interval"),
        "paused": export.get("paused"),
    }


PREVIEW_TEXT_LIMIT = 1000


def shown(value: Any) -> Any:
    """A value as a preview shows it: a long text is cut, visibly, so the person sees that it goes on."""
    if isinstance(value, str) and len(value) > PREVIEW_TEXT_LIMIT:
        return f"{value[:PREVIEW_TEXT_LIMIT]}… ({len(value)} characters in all)"
    if isinstance(value, dict):
        return {k: shown(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shown(v) for v in value]
    return value


def _diff(current: dict[str, Any], params: UpdateParams) -> dict[str, Any]:
    proposed = params.model_dump(mode="json", exclude_none=True, exclude={"project_id", "batch_export_id", *_FLEET})
    changes: dict[str, Any] = {}
    destination = proposed.pop("destination", None)
    for key, new in proposed.items():
        old = current.get(key)
        if old != new:
            changes[key] = {"from": shown(old), "to": shown(new)}
    if destination:
        stored = (current.get("destination") or {}).get("config") or {}
        for key, new in destination.get("config", {}).items():
            if key in SECRET_CONFIG_KEYS:
                changes[f"destination.config.{key}"] = "(secret, changed)"
            elif stored.get(key) != new:
                changes[f"destination.config.{key}"] = {
                    "from": shown(stored.get(key)),
                    "to": shown(secrets.mask(new, "(secret, changed)")),
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


def _unchanged(current: dict[str, Any], params: UpdateParams) -> dict[str, Any]:
    """Fields the update sends with the value they already have: still sent, so still shown."""
    proposed = params.model_dump(
        mode="json", exclude_none=True, exclude={"project_id", "batch_export_id", "destination", *_FLEET}
    )
    same = {key: shown(value) for key, value in proposed.items() if current.get(key) == value}
    return {"unchanged": same} if same else {}


async def preview_create(upstream: Upstream, params: CreateParams) -> Preview:
    destination = params.destination
    is_newer = asked_once(lambda: runs_newer_posthog(upstream))
    missing = destination.integration_id is None and destination.type in INTEGRATION_ON_NEWER
    if missing or destination.type in _S3_BY_GENERATION:
        newer = await is_newer()
        if newer and destination.type == "S3":
            raise NotPossible(
                "This PostHog no longer takes destination type S3: use AwsS3 (credentials in an integration, "
                "destination.integration_id) or S3Compatible."
            )
        if not newer and destination.type in ("AwsS3", "S3Compatible"):
            raise NotPossible(
                f"This PostHog predates the {destination.type} type: use type S3 with the bucket's keys "
                "(aws_access_key_id, aws_secret_access_key) in destination.config."
            )
        if newer and missing:
            raise NotPossible(missing_integration(destination.type))
    await refuse_destination(
        upstream,
        destination.type,
        destination.config,
        {},
        integration_id=destination.integration_id,
        updating=False,
        newer=is_newer,
    )
    details = {
        "name": params.name,
        "model": params.model or "events",
        "interval": params.interval,
        "destination_type": params.destination.type,
        # Not named "config": results drop secret keys under any "config", and the person should
        # still see which secrets will be set (as markers, never values).
        "destination_config": secrets.mask(params.destination.config, "(secret, set)"),
        "paused": bool(params.paused),
    }
    if params.destination.integration_id is not None:
        details["integration_id"] = params.destination.integration_id
    # Everything else the create sends, so a person approves the query and schedule that will run.
    sent = params.model_dump(mode="json", exclude_none=True, include=set(_ExportFields.model_fields))
    details.update({key: shown(value) for key, value in sent.items() if key not in ("model", "paused")})
    state = "paused" if params.paused else "active"
    summary = (
        f"Create {state} {INTERVAL_WORDS.get(params.interval, params.interval)} export {params.name!r} "
        f"of {details['model']} "
        f"to {params.destination.type} in project {params.project_id}."
    )
    return Preview(summary=summary, details=details, version=await newest_id(upstream, "batch_exports/"))


async def preview_update(upstream: Upstream, params: UpdateParams) -> Preview:
    current = await read_export(upstream, params)
    if params.destination is not None:
        held = held_keys(current, params.destination.config)
        if held:
            raise NotPossible(await held_refusal(upstream, current, held))
    old_type = (current.get("destination") or {}).get("type")
    if params.destination is not None and params.destination.type != old_type and is_newer_posthog(current):
        raise NotPossible(
            f"This PostHog cannot change a destination's type ({old_type} to {params.destination.type}); "
            f"send destination.type {old_type}, or create a new export for {params.destination.type}."
        )
    sent = destination_to_send(params, current)
    details: dict[str, Any] = {"export": export_summary(current)}
    if sent is not None:
        dest_type = sent["type"]
        if "integration_id" not in sent and dest_type in INTEGRATION_ON_EVERY_UPDATE and is_newer_posthog(current):
            raise NotPossible(
                f"PostHog needs an integration with every change to a {dest_type} destination and this export "
                f"has none; pass destination.integration_id (the id of a {dest_type} integration of this project)."
            )
        stored = ((current.get("destination") or {}).get("config") or {}) if dest_type == old_type else {}
        await refuse_destination(
            upstream,
            dest_type,
            sent["config"],
            stored,
            integration_id=sent.get("integration_id"),
            updating=True,
            newer=known(is_newer_posthog(current)),
        )
        # Everything the destination part of the PATCH carries, secrets as markers.
        details["destination_sent"] = {**sent, "config": secrets.mask(sent["config"], "(secret, changed)")}
    if params.hogql_query and current.get("model") == "hogql" and (problem := hogql_query_problem(params.hogql_query)):
        raise NotPossible(problem)
    changes = _diff(current, params)
    summary = f"Update export {current.get('name')!r}: " + (
        ", ".join(changes) if changes else "no field differs from the current state"
    )
    if sent is not None and params.destination is not None and params.destination.integration_id is None:
        if "integration_id" in sent:
            summary += f" (the destination is sent with its stored integration {sent['integration_id']})"
    return Preview(
        summary=summary + ".",
        details={**details, "changes": changes, **_unchanged(current, params)},
        version=export_version(current),
        target_id=str(params.batch_export_id),
    )


async def preview_delete(upstream: Upstream, params: ExportParams) -> Preview:
    current = await read_export(upstream, params)
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
    current = await read_export(upstream, params)
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
    current = await read_export(upstream, params)
    details: dict[str, Any] = {"export": export_summary(current), "backfill": params.backfill}
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


async def update_export(upstream: Upstream, params: UpdateParams, request: Request) -> Any:
    """A PATCH whose destination carries what PostHog needs with it (see destination_to_send)."""
    if params.destination is None or not isinstance(request.body, dict):
        return applied_update(params, await upstream.send(request))
    export = await read_export(upstream, params)
    body = {**request.body, "destination": destination_to_send(params, export)}
    return applied_update(params, await upstream.send(dataclasses.replace(request, body=body)))


def applied_update(params: UpdateParams, answer: Any) -> Any:
    """The fields the update set, as PostHog now holds them, and the new version: the whole export
    again would cost a model's context 2-3 KB to say one thing changed (batch-export-get reads it)."""
    if not isinstance(answer, dict):
        return answer
    asked = params.model_dump(
        mode="json", exclude_none=True, exclude={"project_id", "batch_export_id", "destination", *_FLEET}
    )
    applied: dict[str, Any] = {"batch_export_id": answer.get("id", str(params.batch_export_id))}
    applied |= {key: answer.get(key) for key in asked}
    if params.destination is not None:
        stored = answer.get("destination") or {}
        config = stored.get("config") or {}
        applied["destination"] = {
            "type": stored.get("type"),
            "config": {k: config[k] for k in params.destination.config if k in config},
        }
        if stored.get("integration") is not None:
            applied["destination"]["integration"] = stored["integration"]
    applied["version"] = export_version(answer)
    return applied


async def delete_export(upstream: Upstream, params: ExportParams, request: Request) -> dict[str, Any]:
    """PostHog answers a delete with an empty 204; say what was deleted instead."""
    await upstream.send(request)
    return {"deleted": True, "id": str(params.batch_export_id)}


GET_EXPORT = ToolSpec(
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
)

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
        resume=resume_list,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
    GET_EXPORT,
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
        description="Change an export's fields; its destination config is merged (secrets need not be resent).",
        method="PATCH",
        path=EXPORT_PATH,
        scope=WRITE,
        params=UpdateParams,
        output=UpdateApplied,
        preview=preview_update,
        handler=update_export,
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
