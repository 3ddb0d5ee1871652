"""The confirmation guard in front of every write.

Three channels, chosen per call:
- the client can elicit, in the handshake era: ask mid-call (`elicitation/create`);
- the client can elicit, in the 2026-07-28 era: answer `InputRequiredResult` and resume
  when the client retries with the user's answer and our sealed `requestState`;
- the client cannot elicit: answer `confirmation_required` with a preview and a sealed,
  single-use token that the same call must carry to execute.

A call is one linear decision (`Guard._decide`): opened confirmation or preview, the person's
answer, spend the confirmation, hold the in-flight lock (writes that add something), read the
target again and refuse if it moved, write once. Every error is caught at one depth (`run`),
and one exit (`_finish`) writes the audit line and builds the result.

What a confirmation binds to: the tool, the project, the arguments (as a keyed MAC), the
target's version and an expiry (server/guard/sealing.py). It is usable once because its nonce is spent
in the ledger before the write is sent; with POSTHOG_MCP_REDIS_URL the ledger is shared by every
replica (server/guard/shared_state.py). Writes that add something (create, backfill, retry) are also
bound to the newest member of the collection they add to, a second check within one process;
across replicas it is not a guarantee (PostHog writes a backfill's row a moment after it
answers), which is why the ledger and the in-flight lock exist. A token proves a preview
happened, not that a person agreed; elicitation puts a person in the loop when the client shows it.
"""

from __future__ import annotations

import math
import secrets
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio
import mcp.types as types
from mcp.server import ServerRequestContext
from mcp_types import version as protocol_versions

from server import budget, metrics, results, untrusted
from server.caller import caller_name
from server.config import DEFAULT_TIMEOUT, UPSTREAM_CALL_TIMEOUTS
from server.guard.audit import AuditLog
from server.guard.plans import PlanApplier, PlanCall, check_size, digest_of, kept, restored
from server.guard.result import TOKEN_PARAM, GuardedResult, GuardedStatus
from server.guard.sealing import STATE_KIND, TOKEN_KIND, Claim, Refused, TokenSigner, canonical_digest, label_of
from server.guard.shared_state import InProcessState, SharedState, StateUnavailable
from server.posthog import PostHogError
from tools.declaration import MAX_PLAN_WRITES, Applied, NotPossible, Plan, PlannedWrite, Preview, ToolSpec
from tools.upstream import OverBudget

# Re-exported: the guard's tests and callers name these through the guard.
__all__ = [
    "STATE_KIND",
    "TOKEN_KIND",
    "Guard",
    "GuardedCall",
    "PlanCall",
    "Refused",
    "TokenSigner",
    "canonical_digest",
]

ELICIT_KEY = "confirm"
# While the lock is held the guard makes two PostHog calls, the re-check read and the write.
CALLS_UNDER_THE_LOCK = 2
IN_FLIGHT_MARGIN_SECONDS = 40


def in_flight_seconds(timeout: float) -> int:
    """How long the in-flight lock lives: the two calls made under it, each as long as POSTHOG_MCP_TIMEOUT
    lets one last (retries and waits included), and a margin for the steps between them. Long enough that
    a copy of a call never finds the lock gone while the first may still write; short, so a replica that
    died mid-write blocks a copy of its call no longer than that (2 minutes at the default 20 s)."""
    return math.ceil(CALLS_UNDER_THE_LOCK * UPSTREAM_CALL_TIMEOUTS * timeout + IN_FLIGHT_MARGIN_SECONDS)


IN_FLIGHT_SECONDS = in_flight_seconds(DEFAULT_TIMEOUT)

Execute = Callable[[], Awaitable[Any]]
PreviewRead = Callable[[], Awaitable[Preview]]


def _no_status() -> int | None:
    return None


@dataclass
class GuardedCall:
    spec: ToolSpec
    project: int
    arguments: dict[str, Any]  # validated, canonical, secrets included (never logged)
    token: str | None
    read_preview: PreviewRead | None
    execute: Execute | None
    secrets: set[str]
    # The HTTP status of the last request sent for this call (the write, once executed).
    upstream_status: Callable[[], int | None] = _no_status
    # A tool that writes in fleets: several writes behind one confirmation (server/guard/plans.py).
    plan: PlanCall | None = None

    @property
    def adds(self) -> bool:
        """A write that adds something (create, backfill, retry): a second copy would add a second one."""
        return not self.spec.read_only and not self.spec.idempotent


@dataclass
class Decision:
    """How a guarded call ended: its audit line and its answer (a body, an error, or a question)."""

    audit: str
    answer: GuardedResult | types.InputRequiredResult | None = None
    error: str | None = None
    details: dict[str, Any] | None = None
    line: dict[str, Any] = field(default_factory=dict)
    quotes: tuple[str, ...] = ()
    """The parts of `error` PostHog wrote (its answer's detail, a reason built from the target's state): the
    error line marks them as data."""


@dataclass
class Progress:
    """Where a call got to: which channel, which step, and the in-flight lock it holds."""

    channel: str
    step: str = "preview"  # preview -> ask -> confirm -> recheck -> write
    held: tuple[str, dict[str, Any]] | None = None
    # True from sending the write until PostHog's answer says what happened: a timeout, a dropped
    # connection, a 5xx or a cancelled call leave the in-flight lock to expire instead of lifting it,
    # since the write may still land and a copy sent now would make it twice.
    unknown: bool = False
    plan: str | None = None  # the id of the plan this call previews or applies, on each of its audit lines


def _counts(applied: Applied) -> dict[str, int]:
    return {
        "started": len(applied.started),
        "skipped": len(applied.skipped),
        "failed": len(applied.failed),
        "not_sent": len(applied.not_sent),
    }


def _shown(call: GuardedCall, preview: Preview) -> dict[str, Any]:
    return {"summary": preview.summary, "project_id": call.project, **preview.details}


def _typed_name(call: GuardedCall, preview: Preview) -> str | None:
    """The name a person types to confirm a destructive call, as they are shown it (cleaned); None when
    the call asks a yes or no instead (not destructive, or a name that cleans to nothing)."""
    if not (call.spec.destructive and preview.confirm_name):
        return None
    return untrusted.clean_line(preview.confirm_name).strip() or None


class Guard:
    def __init__(
        self,
        signer: TokenSigner,
        audit: AuditLog,
        policy: str,
        state: SharedState | None = None,
        in_flight: int = IN_FLIGHT_SECONDS,
    ) -> None:
        self.signer = signer
        self.audit = audit
        self.policy = policy
        self.state: SharedState = state if state is not None else InProcessState()
        self.in_flight = in_flight
        """Seconds the in-flight lock lives: `in_flight_seconds` of the PostHog timeout."""

    def applies(self, spec: ToolSpec) -> bool:
        if not spec.is_guarded or self.policy == "never":
            return False
        return self.policy == "always" or spec.destructive

    async def run(
        self, call: GuardedCall, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        progress = Progress(channel="token" if call.token is not None else "elicitation")
        try:
            decision = await self._decide(call, ctx, params, progress)
        except NotPossible as reason:
            # Known to fail before anyone is asked: no preview to approve, no token, no write.
            decision = Decision(
                "refused",
                error=f"Not done: {reason} Nothing was changed.",
                line={"reason": str(reason)},
                quotes=(str(reason),),
            )
        except Refused as refusal:
            decision = Decision("refused", error=f"Refused: {refusal}", line={"reason": str(refusal)})
        except OverBudget as spent:
            progress.unknown = False  # not sent: the budget had no room for it
            decision = Decision("refused", error=f"Not done: {spent.detail}", line={"reason": "request budget spent"})
        except StateUnavailable as down:
            why = (
                f"the confirmation ledger ({down}) is needed to make sure this write happens once across "
                "replicas. Nothing was sent to PostHog; reads still work. Try again once it is reachable."
            )
            decision = Decision("refused", error=f"Refused: {why}", line={"reason": why})
        except PostHogError as error:
            if error.status is not None and error.status < 500:
                progress.unknown = False  # PostHog answered: it refused the write
            decision = self._upstream_error(call, progress, error)
        except Exception as error:  # noqa: BLE001 - an answer of an unexpected shape must still end in a decision
            decision = self._unexpected(call, progress, error)
        finally:
            if progress.held is not None and not progress.unknown:
                with anyio.CancelScope(shield=True):
                    await self._let_go(progress.held)
        return self._finish(call, progress, decision)

    async def _decide(
        self, call: GuardedCall, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams, progress: Progress
    ) -> Decision:
        if call.plan is not None:
            return await self._decide_plan(call, call.plan, ctx, params, progress)
        assert call.read_preview is not None and call.execute is not None, f"{call.spec.name} has nothing to write"
        digest = canonical_digest(call.arguments)
        modern = ctx.protocol_version in protocol_versions.MODERN_PROTOCOL_VERSIONS
        claim: Claim | None = None  # the sealed confirmation, in the token and 2026-07-28 channels
        current: Preview | None = None  # the target as read after the person's answer, if it was
        if call.token is not None:
            claim = self.signer.verify(call.token, call.spec.name, call.project, digest, TOKEN_KIND)
            version = claim.version
        elif modern and params.request_state and params.input_responses:
            claim = self.signer.verify(params.request_state, call.spec.name, call.project, digest, STATE_KIND)
            version = claim.version
            progress.step = "recheck"  # read just now, after the user answered: it is the re-check
            with budget.confirmed():
                current = await call.read_preview()
            no = self._unless_agreed(call, params.input_responses.get(ELICIT_KEY), current)
            if no is not None:
                return no
        else:
            preview = await call.read_preview()
            no = await self._ask(call, preview, digest, ctx, progress, modern)
            if no is not None:
                return no
            version = preview.version

        progress.step = "confirm"
        if call.adds:
            await self._hold(call, digest, progress)
        if claim is not None:
            await self._spend(claim)
        self._audit(call, progress, "confirmed")

        # From here on the call is confirmed: its re-check and write may use the budget's reserve.
        with budget.confirmed():
            progress.step = "recheck"
            current = current or await call.read_preview()
            if current.version != version:
                raise Refused(
                    f"The target changed since the preview (version {version} is now {current.version}). "
                    f"Call again without {TOKEN_PARAM} to preview its current state."
                )

            progress.step = "write"
            progress.unknown = True
            result = await call.execute()
            progress.unknown = False
        target = result.get("id") if isinstance(result, dict) and current.target_id is None else None
        return Decision(
            "executed",
            GuardedResult(GuardedStatus.EXECUTED, f"Done: {current.summary}", result=result),
            line={"upstream_status": call.upstream_status(), **({"target": target} if target else {})},
        )

    async def _decide_plan(
        self,
        call: GuardedCall,
        plan_call: PlanCall,
        ctx: ServerRequestContext[Any],
        params: types.CallToolRequestParams,
        progress: Progress,
    ) -> Decision:
        """The same decision for a plan: one preview (the plan), one answer, one confirmation spent, then
        each write re-checked and sent once (server/guard/plans.py) and a receipt."""
        digest = canonical_digest(call.arguments)
        modern = ctx.protocol_version in protocol_versions.MODERN_PROTOCOL_VERSIONS
        claim: Claim | None = None
        if call.token is not None:
            claim = self.signer.verify(call.token, call.spec.name, call.project, digest, TOKEN_KIND)
            plan = await self._recall_plan(plan_call, claim.version, progress)
        elif modern and params.request_state and params.input_responses:
            claim = self.signer.verify(params.request_state, call.spec.name, call.project, digest, STATE_KIND)
            plan = await self._recall_plan(plan_call, claim.version, progress)
            no = self._unless_agreed(call, params.input_responses.get(ELICIT_KEY), self._plan_preview(plan, progress))
            if no is not None:
                return no
        else:
            plan = await plan_call.make()
            if not plan.writes:
                raise NotPossible(plan.summary)
            check_size(plan)
            progress.plan = secrets.token_hex(8)
            preview = self._plan_preview(plan, progress)
            caps = ctx.session.client_capabilities
            if caps is None or caps.elicitation is None or modern:
                # The confirmation comes back in another call, perhaps to another replica: it finds the plan here.
                await self.state.keep(self._plan_name(progress.plan), kept(plan, progress.plan), self.signer.ttl)
            no = await self._ask(call, preview, digest, ctx, progress, modern)
            if no is not None:
                return no

        progress.step = "confirm"
        if claim is not None:
            await self._spend(claim)  # once, across replicas: only one of them applies the plan
        self._audit(call, progress, "confirmed")

        progress.step = "write"

        def lock_name(write: PlannedWrite) -> str:
            # Named by what the write does, not by the plan: the same write in another plan waits too.
            return self.signer.store_name(
                "in-flight", call.spec.name, call.project, write.target, canonical_digest(write.action)
            )

        def note(decision: str, index: int, write: PlannedWrite, **fields: Any) -> None:
            if "upstream_status" not in fields and decision == "executed":
                fields["upstream_status"] = call.upstream_status()
            fields.setdefault("upstream_status", None)
            self._audit(call, progress, decision, target=write.target, write=index + 1, action=write.label, **fields)

        # Confirmed: its re-checks and writes may use the request budget's reserve (server/budget/pacing.py).
        with budget.confirmed():
            applied = await PlanApplier(self.state, lock_name, note, self.in_flight).apply(plan, plan_call)
        receipt = {"plan_id": progress.plan, **plan_call.receipt(plan, applied)}
        counts = _counts(applied)
        told = ", ".join(f"{n} {what}" for what, n in counts.items() if n) or "nothing sent"
        message = f"Plan {progress.plan} applied: {told}. {plan.summary}"
        return Decision(
            "applied",
            GuardedResult(GuardedStatus.EXECUTED, message, result=receipt),
            line={"receipt": counts},
        )

    def _plan_name(self, plan_id: str) -> str:
        return self.signer.store_name("plan", plan_id)

    def _plan_preview(self, plan: Plan, progress: Progress) -> Preview:
        bound = {"id": progress.plan, "writes": len(plan.writes), "at_most": MAX_PLAN_WRITES}
        return Preview(
            summary=plan.summary,
            details={"plan": bound, **plan.details},
            version=f"{progress.plan}.{digest_of(plan)}",
        )

    async def _recall_plan(self, plan_call: PlanCall, version: str | None, progress: Progress) -> Plan:
        """The plan a confirmation covers: as kept at its preview or, when not kept here, planned again
        and the same writes."""
        plan_id, _, digest = (version or "").partition(".")
        progress.plan = plan_id or None
        value = await self.state.recall(self._plan_name(plan_id)) if plan_id else None
        if value is not None:
            plan = restored(value)
            if digest_of(plan) == digest:
                return plan
        progress.step = "recheck"
        plan = await plan_call.make()
        if digest_of(plan) != digest:
            raise Refused(
                "The plan this confirmation covers is not held here (it expired, or it was previewed on a server "
                "that restarted or shares no POSTHOG_MCP_REDIS_URL with this one), and planning again gives "
                f"other writes. Call again without {TOKEN_PARAM} to preview the current plan."
            )
        return plan

    # --- the steps ------------------------------------------------------------------------------

    async def _ask(
        self,
        call: GuardedCall,
        preview: Preview,
        digest: str,
        ctx: ServerRequestContext[Any],
        progress: Progress,
        modern: bool,
    ) -> Decision | None:
        """Ask for a confirmation of `preview` (a write's or a plan's): a token where the client cannot be
        asked, an elicitation (in this call, or as an input request in the 2026-07-28 era) where it can.
        None once the person agreed in this call."""
        caps = ctx.session.client_capabilities
        if caps is None or caps.elicitation is None:
            progress.channel = "token"
            return self._offer_token(call, preview, digest)
        message, schema = self._question(call, preview)
        if modern:
            state, _ = self.signer.issue(call.spec.name, call.project, digest, preview.version, STATE_KIND)
            request = types.ElicitRequest(
                params=types.ElicitRequestFormParams(message=message, requested_schema=schema)
            )
            return Decision(
                "previewed", types.InputRequiredResult(input_requests={ELICIT_KEY: request}, request_state=state)
            )
        self._audit(call, progress, "previewed")
        progress.step = "ask"
        answer = await ctx.session.elicit_form(message, schema, related_request_id=ctx.request_id)
        return self._unless_agreed(call, answer, preview)

    def _offer_token(self, call: GuardedCall, preview: Preview, digest: str) -> Decision:
        token, expires = self.signer.issue(call.spec.name, call.project, digest, preview.version, TOKEN_KIND)
        message = (
            f"Nothing changed yet. {preview.summary} Show this preview to the user; only if they agree, "
            f"call the same tool again with the same arguments plus {TOKEN_PARAM}."
        )
        name = _typed_name(call, preview)
        if name:
            message += f" Ask the user to confirm by the export's name ({name})."
        answer = GuardedResult(
            GuardedStatus.CONFIRMATION_REQUIRED,
            message,
            preview=_shown(call, preview),
            token=token,
            expires_at=datetime.fromtimestamp(expires, UTC).isoformat(),
        )
        return Decision("previewed", answer)

    def _question(self, call: GuardedCall, preview: Preview) -> tuple[str, dict[str, Any]]:
        # A person reads this: PostHog's text in it (names, errors) cleaned like any result.
        shown = {k: v for k, v in _shown(call, preview).items() if k != "summary"}
        detail = results.dumps(results.safe(shown, call.secrets))
        summary = untrusted.clean_line(results.safe(preview.summary, call.secrets))
        message = f"{summary}\n\nDetails: {detail}"
        name = _typed_name(call, preview)
        if name:
            message += f"\n\nType the export's name ({results.safe(name, call.secrets)}) to confirm."
            field = {"type": "string", "title": "Export name", "description": "Type the name exactly to confirm."}
            return message, {"type": "object", "properties": {"name": field}, "required": ["name"]}
        field = {"type": "boolean", "title": "Confirm", "description": "Yes, go ahead."}
        return message + "\n\nGo ahead?", {"type": "object", "properties": {"confirm": field}, "required": ["confirm"]}

    def _unless_agreed(self, call: GuardedCall, answer: Any, preview: Preview) -> Decision | None:
        """None when the person agreed; otherwise how they said no."""
        action = getattr(answer, "action", None)
        content = getattr(answer, "content", None) or {}
        if action == "accept":
            expected = _typed_name(call, preview)
            if expected:
                # Compared as shown: the question showed the name cleaned, so the person typed it so.
                if untrusted.same_text(str(content.get("name", "")), expected):
                    return None
                message = "Not done: the typed name did not match the export's name; nothing changed."
                return self._no(call, GuardedStatus.DECLINED, message, preview, "typed name did not match")
            if content.get("confirm") is True:
                return None
            message = "Not done: the user did not confirm; nothing changed."
            return self._no(call, GuardedStatus.DECLINED, message, preview, "confirm was not true")
        status = GuardedStatus.CANCELLED if action == "cancel" else GuardedStatus.DECLINED
        return self._no(call, status, f"Not done: the user {status.value} the confirmation; nothing changed.", preview)

    def _no(
        self, call: GuardedCall, status: GuardedStatus, message: str, preview: Preview, reason: str | None = None
    ) -> Decision:
        line = {"reason": reason} if reason else {}
        return Decision(status.value, GuardedResult(status, message, preview=_shown(call, preview)), line=line)

    async def _spend(self, claim: Claim) -> None:
        remaining = claim.expires - self.signer.now() + 1
        if not await self.state.spend(self.signer.store_name("spent", claim.nonce), remaining):
            raise Refused(
                f"{label_of(claim.kind)} was already used (here or on another replica); if that call timed out, "
                "its write may still have happened, so check the current state. Call again without it to preview anew."
            )

    async def _hold(self, call: GuardedCall, digest: str, progress: Progress) -> None:
        name = self.signer.store_name("in-flight", call.spec.name, call.project, digest)
        holder = {"caller": caller_name(), "since": int(time.time()), "id": secrets.token_hex(8)}
        found = await self.state.hold(name, holder, self.in_flight)
        if found is not None:
            since = found.get("since")
            age = f", started {max(0, int(time.time()) - since)} s ago" if isinstance(since, int) else ""
            who = f" by {found['caller']}" if isinstance(found.get("caller"), str) else ""
            raise Refused(
                f"the same {call.spec.name} call for project {call.project} is already in flight{age}{who}; "
                "it has not answered yet and may still complete. Nothing was sent again. Wait for it, then check "
                "the current state before previewing anew."
            )
        progress.held = (name, holder)

    async def _let_go(self, held: tuple[str, dict[str, Any]]) -> None:
        try:
            await self.state.release(*held)
        except StateUnavailable:
            pass  # it expires on its own within self.in_flight

    # --- errors, by the step they happened in ---------------------------------------------------

    def _upstream_error(self, call: GuardedCall, progress: Progress, error: PostHogError) -> Decision:
        details = {"upstream": error.as_dict()}
        line = {"upstream_status": error.status, "reason": str(error)}
        quotes = (error.detail,)
        if progress.step == "preview":
            message = f"Could not preview {call.spec.name}: {error}"
            return Decision("failed", error=message, details=details, line=line, quotes=quotes)
        if progress.step == "recheck":
            message = f"Refused: the target could not be read again before the write ({error}). Nothing was changed."
            return Decision("refused", error=message, details=details, line=line, quotes=quotes)
        return Decision("failed", error=str(error), details=details, line=line, quotes=quotes)

    def _unexpected(self, call: GuardedCall, progress: Progress, error: Exception) -> Decision:
        kind = type(error).__name__
        line = {"reason": kind}
        if progress.step == "ask":  # a client that declared elicitation but failed to answer
            message = f"Not done: asking the user for confirmation failed ({kind}); nothing changed."
            return Decision("cancelled", error=message, line=line)
        if progress.step == "confirm":
            message = f"Refused: the confirmation could not be recorded ({kind}). Nothing was sent to PostHog."
            return Decision("refused", error=message, line=line)
        if progress.step in ("preview", "recheck"):
            # For example an empty (204) answer where the target's JSON was expected.
            what = "previewed" if progress.step == "preview" else "read again before the write"
            message = (
                f"Refused: the target could not be {what}: PostHog's answer was not the object expected "
                f"(empty or of another shape; {kind}). Nothing was changed."
            )
            return Decision("refused", error=message, line=line)
        message = (
            f"{call.spec.name} failed after its confirmation ({kind}); the write may or may not have been "
            "applied: check the current state before trying again."
        )
        return Decision("failed", error=message, line=line)

    # --- the one exit -------------------------------------------------------------------------

    def _finish(
        self, call: GuardedCall, progress: Progress, decision: Decision
    ) -> types.CallToolResult | types.InputRequiredResult:
        self._audit(call, progress, decision.audit, **decision.line)
        if isinstance(decision.answer, types.InputRequiredResult):
            return decision.answer
        if decision.answer is not None:
            return results.success(decision.answer.body(), call.secrets)
        return results.failure(decision.error or "Not done.", call.secrets, decision.details, quotes=decision.quotes)

    def _audit(self, call: GuardedCall, progress: Progress, decision: str, **fields: Any) -> None:
        arguments = results.redact(results.strip_secrets(call.arguments), call.secrets)
        target = next((arguments[k] for k in ("run_id", "backfill_id", "batch_export_id") if k in arguments), None)
        fields.setdefault("target", target)
        fields.setdefault("upstream_status", None)
        if progress.plan is not None:
            fields["plan"] = progress.plan
        for key in ("reason", "result", "action"):
            if key in fields:
                fields[key] = results.redact(results.strip_secrets(fields[key]), call.secrets)
        self.audit.record(
            tool=call.spec.name,
            project=call.project,
            caller=caller_name(),
            arguments=arguments,
            channel=progress.channel,
            decision=decision,
            **fields,
        )
        metrics.guard_decision(call.spec.name, decision)
