"""Sealed confirmations: the token a model relays, and the requestState a 2026-07-28 client echoes.

A sealed value says which tool, project, arguments and target version a preview covered, until
when, and carries a nonce the single-use ledger spends (server/guard/shared_state.py). It is HMAC-signed
with POSTHOG_MCP_CONFIRM_SECRET, so every replica with the same secret can check it.

The arguments travel only as a keyed MAC: a plain hash of the canonical arguments would let anyone
holding a token test guesses of a secret argument (a destination password) offline. The same key
derives the names this server gives its entries in the shared store, so no key there holds a
token, a nonce or an argument.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from server.guard.result import TOKEN_PARAM

TOKEN_TTL_SECONDS = 600
# What a sealed value is for: a confirmation_token a model relays, or the requestState a
# 2026-07-28 client echoes with the user's answer. Sealed in, so one cannot stand in for the
# other (a requestState replayed as a token would skip the user's answer).
TOKEN_KIND = "token"
STATE_KIND = "state"


class Refused(Exception):
    """A confirmation that cannot be honoured; the message says why and what to do."""


@dataclass(frozen=True)
class Claim:
    kind: str
    tool: str
    project: int
    arguments_mac: str
    version: str | None
    expires: int
    nonce: str


def canonical_digest(arguments: dict[str, Any]) -> str:
    """The arguments in one canonical form (hashed, so its size is fixed); never sent anywhere as is."""
    text = json.dumps(arguments, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def label_of(kind: str) -> str:
    return TOKEN_PARAM if kind == TOKEN_KIND else "requestState"


class TokenSigner:
    """Seals and opens confirmations; holds no state of its own (spending is the ledger's job).

    `clock` is injectable so expiry can be tested without waiting ten minutes.
    """

    def __init__(
        self, secret: bytes | None, ttl: int = TOKEN_TTL_SECONDS, clock: Callable[[], float] = time.time
    ) -> None:
        key = secret or secrets.token_bytes(32)
        # One key per purpose, so a value made for one use can never be checked as another.
        self._seal_key = hmac.new(key, b"posthog-mcp seal", hashlib.sha256).digest()
        self._arguments_key = hmac.new(key, b"posthog-mcp arguments", hashlib.sha256).digest()
        self._names_key = hmac.new(key, b"posthog-mcp store names", hashlib.sha256).digest()
        self.ttl = ttl
        self.clock = clock

    def now(self) -> int:
        return int(self.clock())

    def issue(
        self, tool: str, project: int, digest: str, version: str | None, kind: str = TOKEN_KIND
    ) -> tuple[str, int]:
        expires = self.now() + self.ttl
        body = {
            "k": kind,
            "t": tool,
            "p": project,
            "a": self._arguments_mac(digest),
            "v": version,
            "x": expires,
            "n": secrets.token_hex(16),
        }
        payload = _b64(json.dumps(body, separators=(",", ":")).encode())
        return f"{payload}.{self._sign(payload)}", expires

    def verify(self, token: str, tool: str, project: int, digest: str, kind: str = TOKEN_KIND) -> Claim:
        """Check everything but the target's version and single use; raises Refused with the reason."""
        label = label_of(kind)
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
        if not hmac.compare_digest(str(claim.arguments_mac), self._arguments_mac(digest)):
            raise Refused(
                "The arguments differ from the previewed call, so the confirmation does not cover them. "
                f"Call again without {TOKEN_PARAM} to preview these arguments."
            )
        if claim.expires < self.now():
            minutes = max(1, self.ttl // 60)
            raise Refused(
                f"{label} has expired (valid {minutes} minute{'s' if minutes != 1 else ''}). "
                "Call again without it to preview anew."
            )
        return claim

    def store_name(self, purpose: str, *parts: object) -> str:
        """A name for a shared-store entry: keyed, so it reveals nothing of what it names."""
        text = json.dumps([purpose, *parts], separators=(",", ":"), default=str)
        return f"{purpose}:{hmac.new(self._names_key, text.encode(), hashlib.sha256).hexdigest()}"

    def _sign(self, payload: str) -> str:
        return _b64(hmac.new(self._seal_key, payload.encode(), hashlib.sha256).digest())

    def _arguments_mac(self, digest: str) -> str:
        return _b64(hmac.new(self._arguments_key, digest.encode(), hashlib.sha256).digest())
