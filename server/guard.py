"""The confirmation guard in front of every write.

Three channels, chosen per call:
- the client can elicit, in the handshake era: ask mid-call (`elicitation/create`);
- the client can elicit, in the 2026-07-28 era: answer `InputRequiredResult` and resume
  when the client retries with the user's answer and our sealed `requestState`;
- the client cannot elicit: answer `confirmation_required` with a preview and a signed,
  single-use token that the same call must carry to execute.

In every channel the target is read again just before the write, and the write is
refused if it changed since the preview. A token proves a preview happened, not that a
person agreed; elicitation puts a person in the loop when the client shows it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import mcp.types as types
from mcp.server import ServerRequestContext
from mcp_types import version as protocol_versions

from server import metrics, results
from server.audit import AuditLog
from server.posthog import PostHogError
from tools.spec import NotPossible, Preview, ToolSpec

TOKEN_TTL_SECONDS = 600
ELICIT_KEY = "confirm"
# What a signed value is for: a confirmation_token a model relays, or the requestState a
# 2026-07-28 client echoes with the user's answer. Bound into the signature so one cannot
# stand in for the other (a requestState replayed as a token would skip the user's answer).
TOKEN_KIND = "token"
STATE_KIND = "state"


class Refused(Exception):
    """A confirmation that cannot be honoured; the message says why and what to do."""


@dataclass(frozen=True)
class Claim:
    kind: str
    tool: str
    project: int
    digest: str
    version: str | None
    expires: int
    nonce: str


def canonical_digest(arguments: dict[str, Any]) -> str:
    text = json.dumps(arguments, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """HMAC-SHA256 tokens binding kind, tool, project, canonical arguments and target version.

    `clock` is injectable so expiry can be tested without waiting ten minutes.
    """

    def __init__(
        self, secret: bytes | None, ttl: int = TOKEN_TTL_SECONDS, clock: Callable[[], float] = time.time
    ) -> None:
        self._key = secret or secrets.token_bytes(32)
        self.ttl = ttl
        self.clock = clock
        self._used: dict[str, int] = {}
        self._lock = threading.Lock()

    def issue(
        self, tool: str, project: int, digest: str, version: str | None, kind: str = TOKEN_KIND
    ) -> tuple[str, int]:
        expires = int(self.clock()) + self.ttl
        body = {"k": kind, "t": tool, "p": project, "a": digest, "v": version, "x": expires, "n": secrets.token_hex(8)}
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}", expires

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._key, payload.encode(), hashlib.sha256).digest())

    def verify(self, token: str, tool: str, project: int, digest: str, kind: str = TOKEN_KIND) -> Claim:
        """Check everything but the target's version, and spend the token; raises Refused with the reason."""
        label = "confirmation_token" if kind == TOKEN_KIND else "requestState"
        payload, _, signature = token.partition(".")
        # A non-ASCII token cannot be ours, and compare_digest raises TypeError on non-ASCII str.
        forged = not payload or not signature or not token.isascii()
        if forged or not hmac.compare_digest(self._sign(payload), signature):
            raise Refused(
                f"{label} is not valid (altered, truncated or issued by another server). "
                "Call again without it to get a fresh preview."
            )
        try:
            body = json.loads(_unb64(payload))
            claim = Claim(body["k"], body["t"], int(body["p"]), body["a"], body["v"], int(body["x"]), body["n"])
        except (ValueError, KeyError, TypeError):
            raise Refused(f"{label} is not valid. Call again without it to get a fresh preview.") from None
        if claim.kind != kind:
            raise Refused(
                "This value was issued for the other confirmation channel and does not confirm this call. "
                "Call again without it to get a fresh preview."
            )
        if claim.tool != tool:
            raise Refused(f"{label} was issued for {claim.tool}, not {tool}. Preview this call first.")
        if claim.project != project:
            raise Refused(f"{label} was issued for project {claim.project}, not {project}. Preview this call first.")
        if claim.digest != digest:
            raise Refused(
                "The arguments differ from the previewed call, so the confirmation does not cover them. "
                "Call again without confirmation_token to preview these arguments."
            )
        now = int(self.clock())
        if claim.expires < now:
            minutes = max(1, self.ttl // 60)
            raise Refused(
                f"{label} has expired (valid {minutes} minute{'s' if minutes != 1 else ''}). "
                "Call again without it to preview anew."
            )
        with self._lock:
            self._used = {n: x for n, x in self._used.items() if x >= now}
            if claim.nonce in self._used:
                raise Refused(f"{label} was already used. Call again without it to preview anew.")
            self._used[claim.nonce] = claim.expires
        return claim


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
    read_preview: PreviewRead
    execute: Execute
    secrets: set[str]
    # The HTTP status of the last request sent for this call (the write, once executed).
    upstream_status: Callable[[], int | None] = _no_status


class Guard:
    def __init__(self, signer: TokenSigner, audit: AuditLog, policy: str) -> None:
        self.signer = signer
        self.audit = audit
        self.policy = policy

    def applies(self, spec: ToolSpec) -> bool:
        if not spec.is_guarded or self.policy == "never":
            return False
        return self.policy == "always" or spec.destructive

    async def run(
        self, call: GuardedCall, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        try:
            return await self._run(call, ctx, params)
        except NotPossible as reason:
            # Known to fail before anyone is asked: no preview to approve, no token, no write.
            self._audit(call, "refused", reason=str(reason))
            return results.failure(f"Not done: {reason} Nothing was changed.", call.secrets)

    async def _run(
        self, call: GuardedCall, ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult | types.InputRequiredResult:
        digest = canonical_digest(call.arguments)
        modern = ctx.protocol_version in protocol_versions.MODERN_PROTOCOL_VERSIONS
        channel = "token" if call.token is not None else "elicitation"
        try:
            if call.token is not None:
                claim = self.signer.verify(call.token, call.spec.name, call.project, digest, TOKEN_KIND)
                self._audit(call, "confirmed", channel="token")
                return await self._execute(call, claim.version, "token")
            if modern and params.request_state and params.input_responses:
                claim = self.signer.verify(params.request_state, call.spec.name, call.project, digest, STATE_KIND)
                answer = params.input_responses.get(ELICIT_KEY)
                # Read just now, after the user answered: it serves as the re-check before the write.
                return await self._answered(call, answer, claim.version, await call.read_preview(), fresh=True)
        except Refused as refusal:
            self._audit(call, "refused", channel=channel, reason=str(refusal))
            return results.failure(f"Refused: {refusal}", call.secrets)
        except PostHogError as error:
            self._audit(call, "failed", channel=channel, upstream_status=error.status, reason=str(error))
            return results.failure(str(error), call.secrets, {"upstream": error.as_dict()})

        try:
            preview = await call.read_preview()
        except PostHogError as error:
            self._audit(call, "failed", channel=channel, upstream_status=error.status, reason=str(error))
            return results.failure(
                f"Could not preview {call.spec.name}: {error}", call.secrets, {"upstream": error.as_dict()}
            )
        caps = ctx.session.client_capabilities
        if caps is None or caps.elicitation is None:
            return self._require_token(call, preview, digest)
        message, schema = self._question(call, preview)
        if modern:
            state, _ = self.signer.issue(call.spec.name, call.project, digest, preview.version, STATE_KIND)
            self._audit(call, "previewed", channel="elicitation")
            return types.InputRequiredResult(
                input_requests={
                    ELICIT_KEY: types.ElicitRequest(
                        params=types.ElicitRequestFormParams(message=message, requested_schema=schema)
                    )
                },
                request_state=state,
            )
        self._audit(call, "previewed", channel="elicitation")
        try:
            answer = await ctx.session.elicit_form(message, schema, related_request_id=ctx.request_id)
        except Exception as exc:  # a client that declared elicitation but failed to answer
            self._audit(call, "cancelled", channel="elicitation", reason=type(exc).__name__)
            return results.failure(
                f"Not done: asking the user for confirmation failed ({type(exc).__name__}); nothing changed."
            )
        try:
            return await self._answered(call, answer, preview.version, preview)
        except Refused as refusal:
            self._audit(call, "refused", channel="elicitation", reason=str(refusal))
            return results.failure(f"Refused: {refusal}", call.secrets)

    def _question(self, call: GuardedCall, preview: Preview) -> tuple[str, dict[str, Any]]:
        detail = results.dumps(results.redact(results.strip_secrets(preview.details), call.secrets))
        message = results.redact(f"{preview.summary}\n\nDetails: {detail}", call.secrets)
        if call.spec.destructive and preview.confirm_name:
            message += f"\n\nType the export's name ({preview.confirm_name}) to confirm."
            field = {"type": "string", "title": "Export name", "description": "Type the name exactly to confirm."}
            return message, {"type": "object", "properties": {"name": field}, "required": ["name"]}
        field = {"type": "boolean", "title": "Confirm", "description": "Yes, go ahead."}
        return message + "\n\nGo ahead?", {"type": "object", "properties": {"confirm": field}, "required": ["confirm"]}

    async def _answered(
        self, call: GuardedCall, answer: Any, version: str | None, preview: Preview, fresh: bool = False
    ) -> types.CallToolResult:
        action = getattr(answer, "action", None)
        content = getattr(answer, "content", None) or {}
        if action == "accept":
            if preview.confirm_name and call.spec.destructive:
                typed = str(content.get("name", "")).strip()
                if typed != preview.confirm_name:
                    self._audit(call, "declined", channel="elicitation", reason="typed name did not match")
                    return self._outcome(
                        call,
                        "declined",
                        "Not done: the typed name did not match the export's name; nothing changed.",
                        preview,
                    )
            elif content.get("confirm") is not True:
                self._audit(call, "declined", channel="elicitation", reason="confirm was not true")
                return self._outcome(call, "declined", "Not done: the user did not confirm; nothing changed.", preview)
            self._audit(call, "confirmed", channel="elicitation")
            return await self._execute(call, version, "elicitation", current=preview if fresh else None)
        status = "cancelled" if action == "cancel" else "declined"
        self._audit(call, status, channel="elicitation")
        return self._outcome(call, status, f"Not done: the user {status} the confirmation; nothing changed.", preview)

    async def _execute(
        self, call: GuardedCall, version: str | None, channel: str, current: Preview | None = None
    ) -> types.CallToolResult:
        """Read the target again (unless `current` was read just now), refuse if it moved since
        the preview, then write once."""
        try:
            current = current or await call.read_preview()
        except PostHogError as error:
            self._audit(call, "refused", channel=channel, upstream_status=error.status, reason=str(error))
            return results.failure(
                f"Refused: the target could not be read again before the write ({error}). Nothing was changed.",
                call.secrets,
                {"upstream": error.as_dict()},
            )
        if current.version != version:
            raise Refused(
                f"The target changed since the preview (version {version} is now {current.version}). "
                "Call again without confirmation_token to preview its current state."
            )
        try:
            result = await call.execute()
        except PostHogError as error:
            self._audit(call, "failed", channel=channel, upstream_status=error.status, reason=str(error))
            return results.failure(str(error), call.secrets, {"upstream": error.as_dict()})
        target = result.get("id") if isinstance(result, dict) and current.target_id is None else None
        extra = {"target": target} if target else {}
        self._audit(call, "executed", channel=channel, upstream_status=call.upstream_status(), **extra)
        return results.success(
            {"status": "executed", "message": f"Done: {current.summary}", "result": result}, call.secrets
        )

    def _require_token(self, call: GuardedCall, preview: Preview, digest: str) -> types.CallToolResult:
        token, expires = self.signer.issue(call.spec.name, call.project, digest, preview.version, TOKEN_KIND)
        self._audit(call, "previewed", channel="token")
        message = (
            f"Nothing changed yet. {preview.summary} Show this preview to the user; only if they agree, "
            "call the same tool again with the same arguments plus confirmation_token."
        )
        if preview.confirm_name and call.spec.destructive:
            message += f" Ask the user to confirm by the export's name ({preview.confirm_name})."
        return results.success(
            {
                "status": "confirmation_required",
                "message": message,
                "preview": {"summary": preview.summary, **preview.details},
                "confirmation_token": token,
                "expires_at": datetime.fromtimestamp(expires, UTC).isoformat(),
            },
            call.secrets,
        )

    def _outcome(self, call: GuardedCall, status: str, message: str, preview: Preview) -> types.CallToolResult:
        body = {"status": status, "message": message, "preview": {"summary": preview.summary, **preview.details}}
        return results.success(body, call.secrets)

    def _audit(self, call: GuardedCall, decision: str, **fields: Any) -> None:
        arguments = results.redact(results.strip_secrets(call.arguments), call.secrets)
        target = next((arguments[k] for k in ("run_id", "backfill_id", "batch_export_id") if k in arguments), None)
        fields.setdefault("target", target)
        fields.setdefault("channel", "token" if call.token else "elicitation")
        fields.setdefault("upstream_status", None)
        if "reason" in fields:
            fields["reason"] = results.redact(fields["reason"], call.secrets)
        self.audit.record(tool=call.spec.name, project=call.project, arguments=arguments, decision=decision, **fields)
        metrics.guard_decision(call.spec.name, decision)
