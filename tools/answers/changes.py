"""batch-export-changes: what changed on an export (or on any export of the project), when, and who, from
PostHog's activity log, newest first.

PostHog logs every save of an export (docs/posthog-api.md, "Activity log"): created, each field's before and
after, a pause as the field `enabled` (shown here as `paused`, which is what its values say), a delete; the
workers' own saves (an automatic pause after failures) have no user. Destination changes are not logged there,
so no secret ever is; the answer goes through the result shaper's secrets walk all the same. Reading it needs
the key's scope activity_log:read: without it the answer says so, naming the scope.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from tools import continuation
from tools.answers.intervals import short_error
from tools.declaration import READ, NotPossible, ToolSpec
from tools.paging import CursorList
from tools.params import UNLISTED, Params
from tools.upstream import Request, Upstream, UpstreamError

ACTIVITY_PATH = "activity_log/"
ACTIVITY_SCOPE = "activity_log:read"
SCOPE = "BatchExport"
SHOWN = 25  # entries a call shows; the rest follow with omitted.call
VALUE_CHARS = 300  # a long value (a HogQL query inside `schema`) is cut, visibly
FIELD_NAMES = {"enabled": "paused"}  # PostHog's field_name_overrides, with the values unchanged


class ChangesParams(Params):
    batch_export_id: UUID | None = Field(None, description="Only this export (default: every export).")
    cursor: str | None = Field(None, max_length=2000, json_schema_extra=UNLISTED)  # omitted.call's, unchanged


class ChangesAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    changes: list[dict[str, Any]]


def _value(value: Any) -> Any:
    if isinstance(value, str):
        return short_error(value, VALUE_CHARS) if len(value) > VALUE_CHARS else value
    if isinstance(value, dict):
        return {k: _value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_value(v) for v in value]
    return value


def who(entry: dict[str, Any]) -> str:
    """Who made the change: the person (name and email), or PostHog itself for its workers' saves."""
    user = entry.get("user")
    if not isinstance(user, dict) or entry.get("is_system"):
        return "PostHog (automatic)"
    name = " ".join(str(user.get(k) or "") for k in ("first_name", "last_name")).strip()
    email = user.get("email")
    return f"{name} <{email}>" if name and email else str(name or email or f"user {user.get('id')}")


def change(entry: dict[str, Any]) -> dict[str, Any]:
    """One activity-log entry as the answer shows it."""
    detail: dict[str, Any] = entry["detail"] if isinstance(entry.get("detail"), dict) else {}
    context: dict[str, Any] = detail["context"] if isinstance(detail.get("context"), dict) else {}
    shown: dict[str, Any] = {
        "id": entry.get("id"),
        "when": entry.get("created_at"),
        "who": who(entry),
        "activity": entry.get("activity"),
        "batch_export_id": entry.get("item_id"),
        "name": context.get("name") or detail.get("name"),
    }
    fields = []
    for item in detail.get("changes") or []:
        if not isinstance(item, dict):
            continue
        field = str(item.get("field"))
        fields.append(
            {
                "field": FIELD_NAMES.get(field, field),
                "before": _value(item.get("before")),
                "after": _value(item.get("after")),
            }
        )
    if fields:
        shown["fields"] = fields
    if entry.get("was_impersonated"):
        shown["impersonated"] = True
    return {k: v for k, v in shown.items() if v is not None}


CHANGES = CursorList("batch-export-changes", "changes", lambda params: ("created_at", True), change)


async def changes(upstream: Upstream, params: ChangesParams, request: Request) -> Any:
    query: dict[str, Any] = {"scope": SCOPE}
    if params.batch_export_id is not None:
        query["item_id"] = str(params.batch_export_id)
    try:
        page = await CHANGES.page(upstream, Request("GET", ACTIVITY_PATH, query), params, SHOWN)
    except UpstreamError as error:
        if error.status == 403:
            raise NotPossible(
                f"PostHog keeps who changed what in its activity log, which this key may not read ({error.detail}). "
                f"A personal API key with scope {ACTIVITY_SCOPE} answers it in one call."
            ) from None
        raise
    if not isinstance(page, dict):
        return page
    shown: list[dict[str, Any]] = page.get("results") or []
    answer: dict[str, Any] = {"changes": shown}
    fits = continuation.fit_prefix(answer, "changes", continuation.FIT - 900)
    if fits < len(shown):
        answer["changes"] = shown[:fits]
        answer["omitted"] = CHANGES.after(
            params, shown[fits - 1], f"{fits} of the {len(shown)} changes read fit the answer budget; more follow"
        )
    elif "omitted" in page:
        answer["omitted"] = page["omitted"]
    if not answer["changes"]:
        answer["note"] = (
            "No change of this export is in PostHog's activity log."
            if params.batch_export_id
            else ("No change of any export is in PostHog's activity log.")
        )
    return answer


TOOLS = [
    ToolSpec(
        name="batch-export-changes",
        title="Who changed what",
        description="Who changed an export (or any export), when, and each field before and after.",
        method="GET",
        path=ACTIVITY_PATH,
        # Listed to every key, so one without activity_log:read that asks is told which scope answers it.
        scope=READ,
        params=ChangesParams,
        output=ChangesAnswer,
        handler=changes,
        read_only=True,
        destructive=False,
        idempotent=True,
    ),
]
