"""batch-export-update for many exports: a credential changed where PostHog keeps it, as one plan.

Newer PostHog keeps a destination's credentials in an integration several exports share: moving every
export that uses integration A to integration B is one plan (`on_integration`), previewed only once
the destination's test steps pass with B (tools/answers/destination_check.py). Older PostHog keeps
them in each export's config: the same secret set on every export of a type is one plan
(`all_of_type`). Either way: what PostHog would refuse is refused before anyone is asked, at most
MAX_PLAN_WRITES exports a plan (oldest first), the rest named, and the receipt gives the call that
plans them. The catalog attaches these steps to the update tool's declaration, since they read what
the answers read.
"""

from __future__ import annotations

from typing import Any

from tools import continuation, secrets
from tools.answers.destination_check import CheckParams, check_destination_steps
from tools.answers.health import all_exports
from tools.declaration import MAX_PLAN_WRITES, Applied, NotPossible, Plan, PlannedWrite, PlanSteps
from tools.destinations import INTEGRATION_KIND, INTEGRATION_ON_EVERY_UPDATE, TESTABLE_TYPES, DestinationInput
from tools.exports import EXPORT_PATH, UpdateParams, is_newer_posthog
from tools.integrations import IN_POSTHOG, held_keys, held_refusal, integration, named, stored_integration
from tools.upstream import Upstream, UpstreamError, path_for
from tools.versions import export_version

ROWS = 60  # exports listed by name in a preview; the others are counted (the receipt names every one)
RECEIPT_ROWS_BYTES = 11_000
# What one call of the update tool may send once it can plan (`ToolSpec.max_requests`): the export list of a
# 20,000-export project twice (the plan, a refusal's count), the integrations and test steps read, and a
# re-check and a write for each of MAX_PLAN_WRITES exports.
MAX_REQUESTS = 2 * 200 + 20 + 2 * MAX_PLAN_WRITES  # the receipt's rows; the rest of it fits in what is left of 16 KB


def _oldest_first(exports: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(exports, key=lambda e: (str(e.get("created_at") or ""), str(e.get("id"))))


def _probe(window: list[dict[str, Any]]) -> dict[str, Any]:
    """The export the test steps run on: one whose newest run completed, when there is one."""
    for export in window:
        runs = [r for r in export.get("latest_runs") or [] if isinstance(r, dict)]
        if runs and runs[0].get("status") == "Completed":
            return export
    return window[0]


async def _target(upstream: Upstream, params: UpdateParams, destination: DestinationInput) -> dict[str, Any] | None:
    """The integration the exports move to, as PostHog serves it (None when the key may not read it);
    refused here when it does not exist or is of another kind."""
    assert destination.integration_id is not None
    try:
        served = await integration(upstream, destination.integration_id)
    except UpstreamError as error:
        if error.status == 404:
            raise NotPossible(
                f"Integration {destination.integration_id} does not exist in project {params.project_id}: "
                "batch-export-integrations lists them, batch-export-integration-create makes one."
            ) from None
        raise
    want = INTEGRATION_KIND.get(destination.type)
    if served is not None and want and served.get("kind") != want:
        raise NotPossible(
            f"{named(served, destination.integration_id)} is a {served.get('kind')} integration; "
            f"{destination.type} exports take a {want} one."
        )
    return served


async def plan_updates(upstream: Upstream, params: UpdateParams) -> Plan:
    destination = params.destination
    assert destination is not None  # the parameters require it for many exports
    everything = await all_exports(upstream)
    selected = _oldest_first(
        [
            e
            for e in everything
            if (e.get("destination") or {}).get("type") == destination.type
            and (params.on_integration is None or stored_integration(e) == params.on_integration)
        ]
    )
    what = f"{destination.type} exports" + (
        f" using integration {params.on_integration}" if params.on_integration is not None else ""
    )
    if params.on_integration is not None and destination.integration_id == params.on_integration:
        raise NotPossible(f"The {what} already use integration {params.on_integration}: nothing to move.")
    window = selected[(params.offset or 0) : (params.offset or 0) + MAX_PLAN_WRITES]
    if not window:
        raise NotPossible(
            f"No {what} in project {params.project_id}"
            + (f" past the first {(params.offset or 0)}" if (params.offset or 0) else "")
            + ": nothing to change (batch-export-integrations shows which integration each export uses)."
        )
    # What PostHog would refuse, refused before anyone is asked (docs/posthog-api.md, "Integrations").
    for export in window:
        held = held_keys(export, destination.config)
        if held:
            raise NotPossible(await held_refusal(upstream, export, held))
    newer = is_newer_posthog(window[0])
    if newer and destination.integration_id is None and destination.type in INTEGRATION_ON_EVERY_UPDATE:
        without = [e for e in window if stored_integration(e) is None]
        if without:
            raise NotPossible(
                f"PostHog needs an integration with every change to a {destination.type} destination and "
                f"{len(without)} of these exports have none; pass destination.integration_id."
            )
    details: dict[str, Any] = {}
    moved_to = None
    if destination.integration_id is not None:
        served = await _target(upstream, params, destination)
        moved_to = named(served, destination.integration_id)
        if params.on_integration is not None:
            details["from"] = named(await integration(upstream, params.on_integration), params.on_integration)
        details["to"] = moved_to
    checked: dict[str, Any] | None = None
    if destination.type in TESTABLE_TYPES:
        probe = _probe(window)
        try:
            checked = await check_destination_steps(
                upstream,
                CheckParams.model_validate(
                    {
                        "project_id": params.project_id,
                        "batch_export_id": str(probe.get("id")),
                        "destination": destination,
                    }
                ),
            )
        except UpstreamError as error:
            if error.status != 403:
                raise
            # Older PostHog runs test steps for keys with scope * only (docs/posthog-api.md, "Generations").
            details["test_steps"] = f"not run: PostHog does not let this key run them ({error.detail})"
    if checked is not None:
        failed = next((s for s in checked["steps"] if s["status"] == "failed"), None)
        if not checked["passed"]:
            why = f"step {failed['name']!r}: {failed.get('message')}" if failed else "no step ran"
            with_what = moved_to or "the new settings"
            raise NotPossible(
                f"The destination's test steps fail with {with_what} on export {probe.get('name')!r} ({why}). "
                f"Nothing was changed: fix the credentials ({IN_POSTHOG}) or use another integration, then call again."
            )
        details["test_steps"] = f"{len(checked['steps'])} passed, on export {probe.get('name')!r}"
    change = (
        f"integration {moved_to}"
        if destination.integration_id is not None
        else ", ".join(f"destination.config.{k}" for k in sorted(destination.config)) or "destination"
    )
    writes = []
    for export in window:
        keeps = stored_integration(export)
        label = f"{export.get('name')} ({str(export.get('id'))[:8]})"
        if destination.integration_id is not None:
            label += f": integration {keeps} to {destination.integration_id}"
        writes.append(
            PlannedWrite(
                target=str(export.get("id")),
                label=label,
                version=export_version(export),
                action={"integration_id": destination.integration_id or keeps},
            )
        )
    summary = f"Change {change} on {len(writes)} {what}, one PATCH each."
    if destination.integration_id is not None and params.on_integration is not None:
        summary = f"Move {len(writes)} {what} to {moved_to}, one PATCH each."
    later = selected[(params.offset or 0) + MAX_PLAN_WRITES :]
    if later:
        summary += f" Not now: {len(later)} more (a plan changes at most {MAX_PLAN_WRITES} exports): the next plan."
        details["not_now"] = [
            {
                "why": f"a plan changes at most {MAX_PLAN_WRITES} exports: the next plan takes these",
                "exports": len(later),
                "names": [str(e.get("name")) for e in later[:20]]
                + ([f"... and {len(later) - 20} more"] if len(later) > 20 else []),
            }
        ]
    details["destination_type"] = destination.type
    details["destination_config"] = secrets.mask(destination.config, "(secret, changed)")
    details["selected"] = params.model_dump(
        mode="json", exclude_none=True, include={"on_integration", "all_of_type", "offset"}
    )
    details["writes"] = [w.label for w in writes[:ROWS]]
    if len(writes) > ROWS:
        details["folded"] = f"{len(writes) - ROWS} more export(s) not listed here; each is in the receipt"
    return Plan(summary=summary, details=details, writes=tuple(writes))


async def recheck_export(upstream: Upstream, params: UpdateParams, write: PlannedWrite, applied: Applied) -> str:
    export = await upstream.request("GET", path_for(EXPORT_PATH, batch_export_id=write.target))
    return export_version(export)


async def send_update(upstream: Upstream, params: UpdateParams, write: PlannedWrite) -> dict[str, Any]:
    destination = params.destination
    assert destination is not None
    sent: dict[str, Any] = {"type": destination.type, "config": destination.config}
    if write.action.get("integration_id") is not None:
        sent["integration_id"] = write.action["integration_id"]
    answer = await upstream.request(
        "PATCH", path_for(EXPORT_PATH, batch_export_id=write.target), json={"destination": sent}
    )
    stored = (answer or {}).get("destination") or {}
    return {"version": export_version(answer or {}), "integration": stored.get("integration")}


def _fitting(rows: list[dict[str, Any]], room: int) -> int:
    return continuation.longest_fitting(rows, lambda prefix: continuation.size(list(prefix)) <= room)


def update_receipt(params: UpdateParams, plan: Plan, applied: Applied) -> dict[str, Any]:
    sections = {
        "started": [
            {"batch_export_id": w.target, **{k: v for k, v in r.items() if v is not None}} for w, r in applied.started
        ],
        "skipped": [{"batch_export_id": w.target, "export": w.label, "why": why} for w, why in applied.skipped],
        "failed": [{"batch_export_id": w.target, "export": w.label, "why": why} for w, why in applied.failed],
        "not_sent": [{"batch_export_id": w.target, "export": w.label, "why": why} for w, why in applied.not_sent],
    }
    receipt: dict[str, Any] = {}
    room, folded = RECEIPT_ROWS_BYTES, 0
    kept: dict[str, int] = {}
    # What did not happen first (each says why), then what started: the audit trail has every one.
    for name in ("skipped", "failed", "not_sent", "started"):
        kept[name] = _fitting(sections[name], room)
        room -= continuation.size(sections[name][: kept[name]])
        folded += len(sections[name]) - kept[name]
    for name, rows in sections.items():
        if rows or name == "started":
            receipt[name] = rows[: kept[name]]
    if folded:
        receipt["folded"] = f"{folded} row(s) left out to fit the answer; the audit trail has every write of this plan"
    deferred = plan.details.get("not_now") or []
    if deferred:
        receipt["deferred"] = deferred
    arguments = params.model_dump(mode="json", exclude_none=True, exclude={"offset"})
    if params.all_of_type:
        arguments["offset"] = (params.offset or 0) + len(plan.writes)  # the same selection, after these
    assert params.destination is not None
    receipt["follow"] = {
        "tool": "batch-export-health",
        "arguments": {"project_id": params.project_id, "destination_type": params.destination.type},
    }
    if deferred or applied.not_sent or applied.failed or applied.skipped:
        # Last: the exact call that plans what this one left (a secret it sends is the caller's to add again).
        receipt["next"] = {
            "tool": "batch-export-update",
            "arguments": arguments,
            "does": "plans the exports this plan left (moved ones no longer use the old integration)",
        }
    return receipt


def _fleet(params: Any) -> bool:
    return isinstance(params, UpdateParams) and params.many


STEPS = PlanSteps(make=plan_updates, recheck=recheck_export, write=send_update, receipt=update_receipt, applies=_fleet)
