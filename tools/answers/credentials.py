"""batch-export-integrations: where each export's credentials are kept, and which exports share them.

An export either names an integration (newer PostHog: the credentials live there, shared by every
export that names it) or holds its credentials inline (older PostHog, and some older Postgres and
Redshift exports). One call reads the export list (100 a page) and, when the key has integration:read,
the integrations as PostHog serves them (kind, display name, the settings it shows, never a secret);
without that scope each integration is named by its id only, and the answer says which scope shows more.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tools import continuation
from tools.answers.health import all_exports
from tools.declaration import ToolSpec
from tools.destinations import INTEGRATION_KIND, DestinationType
from tools.integrations import (
    IN_POSTHOG,
    INTEGRATION_READ,
    INTEGRATION_WRITE,
    NAMED_KINDS,
    REQUIRED,
    integrations_of,
    stored_integration,
)
from tools.params import UNLISTED, Params
from tools.upstream import Upstream

NAMES_SHOWN = 8  # export names listed per integration; the count says how many use it


class CredentialsParams(Params):
    integration_id: int | None = Field(None, ge=1, description="Only this one, with all its exports.")
    destination_type: DestinationType | None = Field(None, description="Only this type.")
    offset: int = Field(0, ge=0, description="See omitted.call.", json_schema_extra=UNLISTED)


class CredentialsAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    integrations: list[dict[str, Any]]


def _export_ref(export: dict[str, Any]) -> dict[str, Any]:
    return {"id": export.get("id"), "name": export.get("name")}


async def credentials(upstream: Upstream, params: CredentialsParams, request: Any = None) -> dict[str, Any]:
    exports = await all_exports(upstream)
    chosen = [
        e
        for e in exports
        if params.destination_type is None or (e.get("destination") or {}).get("type") == params.destination_type
    ]
    served = await integrations_of(upstream)
    by_id = {int(i["id"]): i for i in served or [] if isinstance(i.get("id"), int)}
    users: dict[int, list[dict[str, Any]]] = {}
    inline: dict[str, int] = {}
    for export in chosen:
        used = stored_integration(export)
        if used is None:
            kind = str((export.get("destination") or {}).get("type"))
            inline[kind] = inline.get(kind, 0) + 1
        else:
            users.setdefault(used, []).append(export)
    ids = (
        [params.integration_id] if params.integration_id is not None else sorted(set(users) | _of_types(by_id, params))
    )
    answer: dict[str, Any] = {"project_id": params.project_id, "exports": len(chosen), "integrations": []}
    entries = []
    for integration_id in ids:
        using = users.get(integration_id, [])
        served_one = by_id.get(integration_id)
        entry: dict[str, Any] = {"id": integration_id}
        if served_one is not None:
            entry |= {k: served_one[k] for k in ("kind", "display_name", "config", "errors") if served_one.get(k)}
            entry["rotates"] = _rotates(str(served_one.get("kind")))
        entry["used_by"] = len(using)
        entry["destination_types"] = sorted({str((e.get("destination") or {}).get("type")) for e in using})
        entry["exports"] = [_export_ref(e) for e in using[: None if params.integration_id else NAMES_SHOWN]]
        entries.append(entry)
    if inline:
        answer["inline_credentials"] = {
            "exports_by_type": inline,
            "change": "batch-export-update with all_of_type and the new secret in destination.config: one plan",
        }
    if served is None:
        answer["note"] = (
            f"The key lacks {INTEGRATION_READ}: integrations are named by id only. Creating one needs {INTEGRATION_WRITE}."
        )
    answer["integrations"] = entries[params.offset :]
    if params.integration_id is not None and entries and entries[0]["used_by"]:
        # One integration: its export list is what may be long, so that is what is cut and continued.
        exports_of = entries[0]["exports"]
        room = continuation.FIT - continuation.size({**answer, "integrations": [{**entries[0], "exports": []}]}) - 600
        kept = continuation.longest_fitting(exports_of[params.offset :], lambda p: continuation.size(list(p)) <= room)
        entries[0]["exports"] = exports_of[params.offset : params.offset + kept]
        answer["integrations"] = entries[:1]
        left = len(exports_of) - params.offset - kept
        if left > 0:
            arguments = params.model_dump(mode="json", exclude_none=True) | {"offset": params.offset + kept}
            answer["omitted"] = continuation.omitted(
                "batch-export-integrations", arguments, f"{kept} exports fit the answer", left
            )
        return answer
    room = continuation.FIT - 600
    kept = continuation.longest_fitting(
        answer["integrations"], lambda p: continuation.size({**answer, "integrations": list(p)}) <= room
    )
    left = len(answer["integrations"]) - kept
    answer["integrations"] = answer["integrations"][:kept]
    if left > 0:
        arguments = params.model_dump(mode="json", exclude_none=True) | {"offset": params.offset + kept}
        answer["omitted"] = continuation.omitted(
            "batch-export-integrations", arguments, f"{kept} integrations fit the answer", left
        )
    return answer


def _rotates(kind: str) -> str:
    """How a credential of this kind changes (docs/posthog-api.md, "Integrations")."""
    if kind not in REQUIRED:
        return f"PostHog's API cannot create this kind: change it in {IN_POSTHOG}"
    if kind in NAMED_KINDS:
        return "create another (batch-export-integration-create), then move the exports to it"
    return "create the same identity again (batch-export-integration-create): every export using it changes at once"


def _of_types(by_id: dict[int, dict[str, Any]], params: CredentialsParams) -> set[int]:
    """Integrations no selected export uses, of the kinds batch exports use (the destination type's kind)."""
    kinds = (
        {INTEGRATION_KIND[params.destination_type]}
        if params.destination_type in INTEGRATION_KIND
        else set(INTEGRATION_KIND.values())
    )
    return {i for i, one in by_id.items() if one.get("kind") in kinds}


TOOLS = [
    ToolSpec(
        name="batch-export-integrations",
        title="Credentials",
        description="Integrations (stored credentials) with the exports sharing each.",
        method="GET",
        path="batch_exports/",
        scope=INTEGRATION_READ,  # listed to keys that may read integrations: what makes its answer worth the room
        params=CredentialsParams,
        output=CredentialsAnswer,
        handler=credentials,
        max_requests=300,  # the export list of a 20,000-export project and the integrations
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
]
