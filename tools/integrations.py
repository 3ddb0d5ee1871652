"""Integrations: where newer PostHog keeps a destination's credentials (docs/posthog-api.md, "Integrations").

Several exports share one integration, so a credential changes where PostHog keeps it: a key with
`integration:write` may create one (the only write PostHog's API has for them; there is no update),
then the exports move to it (`batch-export-update` with `on_integration`, one plan). Kinds PostHog
keys by a name (aws-s3, s3-compatible, snowflake) take a new name each time; the others replace the
integration with the same identity in place, which changes every export using it at once.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tools import secrets
from tools.declaration import NotPossible, Preview, ToolSpec
from tools.destinations import INTEGRATION_HELD_KEYS
from tools.params import JsonObject, Params
from tools.upstream import Request, Upstream, UpstreamError, path_for

INTEGRATIONS_PATH = "integrations/"
INTEGRATION_PATH = "integrations/{integration_id}/"
INTEGRATION_READ = "integration:read"
INTEGRATION_WRITE = "integration:write"
PAGE = 100
MAX_PAGES = 50

CreatableKind = Literal[
    "snowflake", "aws-s3", "s3-compatible", "postgresql", "databricks", "google-cloud-service-account", "azure-blob"
]
NAMED_KINDS = ("aws-s3", "s3-compatible", "snowflake")
# What each kind needs in `config` (docs/posthog-api.md, "Integrations"); PostHog checks the rest.
REQUIRED: dict[str, tuple[str, ...]] = {
    "snowflake": ("name", "account", "user"),
    "aws-s3": ("name", "aws_access_key_id", "aws_secret_access_key"),
    "s3-compatible": ("name", "endpoint_url", "aws_access_key_id", "aws_secret_access_key"),
    "postgresql": ("host", "port", "user", "password"),
    "databricks": ("server_hostname", "client_id", "client_secret"),
    "google-cloud-service-account": ("service_account_email", "project_id"),
    "azure-blob": ("connection_string",),
}
# Where a person changes an integration PostHog's API cannot: its settings page.
IN_POSTHOG = (
    "PostHog's integration settings (Project settings > Integrations, or the destination's setup in Data pipelines)"
)


class IntegrationCreateParams(Params):
    kind: CreatableKind = Field(description="Integration kind (a destination type's credentials).")
    # PostHog's body calls it `config`; a parameter of that name is swallowed by LangChain, which passes its
    # own RunnableConfig as `config` (docs/architecture.md, "Every agent framework"). `_send` renames it.
    integration_config: JsonObject = Field(
        description="Its settings and secret, e.g. snowflake: name, account, user, password."
    )

    @model_validator(mode="after")
    def _complete(self) -> IntegrationCreateParams:
        config = self.integration_config
        missing = [k for k in REQUIRED[self.kind] if config.get(k) in (None, "")]
        if self.kind == "snowflake" and not (config.get("password") or config.get("private_key")):
            missing.append("password (or private_key with authentication_type keypair)")
        if missing:
            raise ValueError(f"integration_config for a {self.kind} integration needs {', '.join(missing)}")
        return self


class IntegrationCreated(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: int
    kind: str


def stored_integration(export: dict[str, Any]) -> int | None:
    """The integration id an export's destination uses, if any."""
    destination = export.get("destination") or {}
    value = destination.get("integration_id", destination.get("integration"))
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def held_keys(export: dict[str, Any], config: dict[str, Any]) -> list[str]:
    """The keys of `config` PostHog keeps in this export's integration rather than in its config (newer
    PostHog, an export with an integration): an update sending them is refused."""
    destination = export.get("destination") or {}
    if stored_integration(export) is None or "incremental_mode" not in export:  # Gen-3 (docs/posthog-api.md)
        return []
    return sorted(set(config) & INTEGRATION_HELD_KEYS.get(str(destination.get("type")), frozenset()))


async def exports_using(upstream: Upstream, integration_id: int) -> list[dict[str, Any]]:
    """Every export whose destination uses the integration (the export list, 100 a page)."""
    found: list[dict[str, Any]] = []
    offset = 0
    for _ in range(MAX_PAGES * 4):
        page = await upstream.request("GET", "batch_exports/", query={"limit": PAGE, "offset": offset})
        results = [e for e in (page or {}).get("results") or [] if isinstance(e, dict)]
        found += [e for e in results if stored_integration(e) == integration_id]
        offset += len(results)
        if not (page or {}).get("next") or not results:
            break
    return found


async def held_refusal(upstream: Upstream, export: dict[str, Any], keys: list[str]) -> str:
    """Why PostHog would refuse these keys on this export, naming the integration that holds them, how many
    exports share it, and what works instead."""
    used = stored_integration(export)
    assert used is not None
    served = await integration(upstream, used)
    sharing = await exports_using(upstream, used)
    kind = (served or {}).get("kind") or "the"
    return (
        f"PostHog keeps {', '.join(keys)} of export {export.get('name')!r} in {named(served, used)}, not in the "
        f"export's config, and refuses {'it' if len(keys) == 1 else 'them'} there; {len(sharing)} export(s) share "
        "that integration. To change the "
        f"credential: create a new {kind} integration with it (batch-export-integration-create, scope "
        f"{INTEGRATION_WRITE}) and move the exports to it (batch-export-update with on_integration {used} and "
        f"destination.integration_id the new id), or change it in {IN_POSTHOG}."
    )


def named(integration: dict[str, Any] | None, integration_id: Any) -> str:
    """An integration as a person knows it: its id and, when the key may read it, PostHog's display name."""
    shown = (integration or {}).get("display_name")
    return f"integration {integration_id}" + (f" ({shown})" if shown else "")


async def integrations_of(upstream: Upstream, kind: str | None = None) -> list[dict[str, Any]] | None:
    """Every integration of the project (oldest first), or None when the key may not read them."""
    found: list[dict[str, Any]] = []
    query: dict[str, Any] = {"limit": PAGE} | ({"kind": kind} if kind else {})
    try:
        for _ in range(MAX_PAGES):
            page = await upstream.request("GET", INTEGRATIONS_PATH, query={**query, "offset": len(found)})
            results = [i for i in (page or {}).get("results") or [] if isinstance(i, dict)]
            found += results
            if not (page or {}).get("next") or not results:
                break
    except UpstreamError as error:
        if error.status in (401, 403):
            return None
        raise
    return found


async def integration(upstream: Upstream, integration_id: Any) -> dict[str, Any] | None:
    """One integration, or None when the key may not read integrations; a 404 is raised."""
    try:
        found: dict[str, Any] = await upstream.request("GET", path_for(INTEGRATION_PATH, integration_id=integration_id))
    except UpstreamError as error:
        if error.status in (401, 403):
            return None
        raise
    return found


async def preview_create_integration(upstream: Upstream, params: IntegrationCreateParams) -> Preview:
    existing = await integrations_of(upstream, params.kind)
    name = params.integration_config.get("name")
    if existing is not None and params.kind in NAMED_KINDS:
        taken = next((i for i in existing if (i.get("config") or {}).get("name") == name), None)
        if taken is not None:
            raise NotPossible(
                f"An integration named {name!r} already exists ({named(taken, taken.get('id'))}); PostHog refuses a "
                "second one of that name: give the new one another name."
            )
    summary = f"Create a {params.kind} integration"
    summary += f" {name!r}" if name else ""
    summary += f" in project {params.project_id}. PostHog keeps its secret and never shows it again."
    if params.kind in NAMED_KINDS:
        summary += " No export uses it until exports are moved to it."
    else:
        summary += (
            " PostHog replaces an integration of this kind with the same identity in place, so every export using "
            "that one gets these credentials at once."
        )
    details: dict[str, Any] = {
        "kind": params.kind,
        # Not under a config key (tools/secrets.py drops secret keys there): the person should see which
        # secrets are set, as markers, never values.
        "settings": secrets.mask(params.integration_config, "(secret, set)"),
    }
    newest = max((int(i.get("id") or 0) for i in existing or []), default=0)
    version = f"{len(existing)}:{newest}" if existing is not None else "unreadable"
    return Preview(summary=summary, details=details, version=version)


async def _send(upstream: Upstream, params: IntegrationCreateParams, request: Request) -> Any:
    """The body PostHog reads: `{kind, config}`."""
    return await upstream.send(replace(request, body={"kind": params.kind, "config": params.integration_config}))


def _shape_created(answer: Any) -> Any:
    if not isinstance(answer, dict):
        return answer
    keep = ("id", "kind", "display_name", "config", "created_at", "errors")
    created = {k: answer[k] for k in keep if answer.get(k) not in (None, "", {})}
    created["next"] = (
        "Test a destination with it (batch-export-destination-check, destination.integration_id), then move the "
        "exports to it: batch-export-update with on_integration (the old one's id) and destination.integration_id."
    )
    return created


TOOLS = [
    ToolSpec(
        name="batch-export-integration-create",
        title="Create an integration",
        description="Store new destination credentials in PostHog (an integration) to move exports to.",
        method="POST",
        path=INTEGRATIONS_PATH,
        scope=INTEGRATION_WRITE,
        params=IntegrationCreateParams,
        output=IntegrationCreated,
        shape=_shape_created,
        preview=preview_create_integration,
        handler=_send,
        max_requests=2 * MAX_PAGES + 5,  # the integrations of a kind, twice (preview, re-check), and the write
        read_only=False,
        destructive=False,
        idempotent=False,
    ),
]
