"""OAuth 2.1 resource-server mode: JWT access tokens from the team's identity provider.

The MCP authorization specification makes an HTTP MCP server a resource server: it verifies
access tokens an authorization server issued for it, and says where that server is through
its protected-resource metadata (RFC 9728). Here a token is accepted when its signature
verifies against a key of the provider's JWKS (matched by key id), it was issued by the
configured issuer, for this server (audience = POSTHOG_MCP_PUBLIC_URL), and has not expired.
The caller it names is the token's subject. This server never passes the token on: PostHog
sees only the server's own personal API key.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import anyio
import jwt
from mcp.server.auth.routes import build_resource_metadata_url
from pydantic import AnyHttpUrl
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from server.config import ConfigError, Settings
from server.http.addresses import is_loopback

WELL_KNOWN = "/.well-known/oauth-protected-resource"
# Asymmetric algorithms only: with HS256 the public JWKS would be the shared secret, and "none" signs nothing.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
LEEWAY_SECONDS = 30
JWKS_TIMEOUT_SECONDS = 5
# A key the provider withdraws stops verifying within a minute: the copy of the JWKS is at most this old when
# a token is checked, and the check is remembered at most VERIFIED_CACHE_SECONDS more (30 + 30).
JWKS_LIFESPAN_SECONDS = 30
# An unknown key id triggers one JWKS refetch (the provider may have rotated keys), at most this often,
# so a flood of made-up key ids cannot turn into a flood of requests to the provider.
MIN_REFETCH_SECONDS = 30
MAX_TOKEN_LENGTH = 8192
# A client sends the same access token with every request: its verification is remembered this long
# (never past the token's expiry), so a request costs a dictionary lookup, not a signature check and
# a thread hop.
VERIFIED_CACHE_SECONDS = 30.0
VERIFIED_CACHE_SIZE = 1024


class InvalidToken(Exception):
    """The token is not acceptable; the message says why, without echoing the token."""


class VerifierUnavailable(Exception):
    """The provider's keys cannot be read right now, so no token can be checked."""


@dataclass(frozen=True)
class Verified:
    subject: str
    scopes: frozenset[str]


def _is_loopback_url(url: str) -> bool:
    # The parsed address, not its spelling: `127.evil.example` is a name that resolves anywhere.
    return is_loopback(urlparse(url).hostname or "")


def _check_url(name: str, url: str) -> None:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise ConfigError(f"{name} must be an absolute https:// URL, got {url!r}.")
    if parsed.scheme == "http" and not _is_loopback_url(url):
        raise ConfigError(f"{name} must use https:// (http:// is allowed for loopback addresses only), got {url!r}.")


SUBJECT_NAME_LENGTH = 128
SUBJECT_MARK = "~"


def _subject_name(subject: str) -> str:
    """The caller's name for a subject, in every log and audit line and as the owner of its sessions.

    Printable and bounded; and one subject, one name: where cleaning changed the subject (a character
    outside printable ASCII, or past the length) the name ends in `~` and a hash of the exact subject,
    so two subjects that differ only there stay two callers. `~` is itself cleaned away, so only that
    ending can carry it and no subject is named like another's cleaned form."""
    cleaned = re.sub(r"[^\x21-\x7d]", "?", subject)  # printable ASCII but the mark (\x7e)
    if cleaned == subject and len(subject) <= SUBJECT_NAME_LENGTH:
        return subject
    digest = hashlib.sha256(subject.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    return f"{cleaned[:SUBJECT_NAME_LENGTH]}{SUBJECT_MARK}{digest}"


def _scopes_of(claims: dict[str, Any]) -> frozenset[str]:
    """RFC 9068's space-separated `scope`, or the `scp` list some providers send."""
    scopes: set[str] = set()
    for claim in ("scope", "scp"):
        value = claims.get(claim)
        if isinstance(value, str):
            scopes.update(value.split())
        elif isinstance(value, list):
            scopes.update(str(item) for item in value)
    return frozenset(scopes)


class ResourceServer:
    """Verifies access tokens and describes this server to OAuth clients (RFC 9728)."""

    def __init__(self, issuer: str, jwks_url: str, resource: str, scope: str | None = None) -> None:
        self.issuer = issuer
        self.resource = resource
        self.scope = scope
        self.metadata_url = str(build_resource_metadata_url(AnyHttpUrl(resource)))
        self._jwks = jwt.PyJWKClient(
            jwks_url, cache_keys=False, cache_jwk_set=True, lifespan=JWKS_LIFESPAN_SECONDS, timeout=JWKS_TIMEOUT_SECONDS
        )
        self._refetch_lock = threading.Lock()
        self._refetched_at = float("-inf")
        # A token may name the resource with or without a trailing slash.
        bare = resource.rstrip("/")
        self._audiences = [bare, bare + "/"]
        self._verified: OrderedDict[bytes, tuple[float, Verified]] = OrderedDict()

    @classmethod
    def from_settings(cls, settings: Settings) -> ResourceServer | None:
        if not settings.oauth_issuer:
            return None
        missing = [
            name
            for name, value in (
                ("POSTHOG_MCP_OAUTH_JWKS_URL", settings.oauth_jwks_url),
                ("POSTHOG_MCP_PUBLIC_URL", settings.public_url),
            )
            if not value
        ]
        if missing:
            raise ConfigError(
                f"POSTHOG_MCP_OAUTH_ISSUER is set, so OAuth needs {' and '.join(missing)}: the provider's JWKS "
                "address, and this server's public MCP URL (e.g. https://mcp.example.com/mcp), which tokens must "
                "name as their audience."
            )
        assert settings.oauth_jwks_url is not None and settings.public_url is not None
        _check_url("POSTHOG_MCP_OAUTH_ISSUER", settings.oauth_issuer)
        _check_url("POSTHOG_MCP_OAUTH_JWKS_URL", settings.oauth_jwks_url)
        _check_url("POSTHOG_MCP_PUBLIC_URL", settings.public_url)
        scope = (settings.oauth_scope or "").strip() or None
        if scope is not None and (" " in scope or '"' in scope):
            raise ConfigError(f"POSTHOG_MCP_OAUTH_SCOPE must be one scope name, got {scope!r}.")
        return cls(settings.oauth_issuer, settings.oauth_jwks_url, settings.public_url, scope)

    # --- verification -------------------------------------------------------------------

    async def verify(self, token: str) -> Verified:
        """Check one access token (the key lookup may read the JWKS, so it runs off the event loop)."""
        digest = hashlib.sha256(token.encode()).digest()
        remembered = self._verified.get(digest)
        if remembered is not None and time.time() < remembered[0]:
            return remembered[1]
        verified, expires = await anyio.to_thread.run_sync(self._verify, token)
        self._verified[digest] = (min(expires, time.time() + VERIFIED_CACHE_SECONDS), verified)
        while len(self._verified) > VERIFIED_CACHE_SIZE:
            self._verified.popitem(last=False)
        return verified

    def _verify(self, token: str) -> tuple[Verified, float]:
        if len(token) > MAX_TOKEN_LENGTH or token.count(".") != 2:
            raise InvalidToken("the bearer token is not a JWT access token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.DecodeError:
            raise InvalidToken("the bearer token is not a JWT access token") from None
        except jwt.InvalidTokenError:
            # pyjwt checks the header as it reads it: a key id that is not a string is refused here.
            raise InvalidToken("the token's key id (kid) is not a string") from None
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise InvalidToken("the token names no key id (kid)")
        if header.get("alg") not in ALGORITHMS:
            raise InvalidToken(f"the token's algorithm is not one of {', '.join(ALGORITHMS)}")
        key = self._signing_key(kid)
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[header["alg"]],
                audience=self._audiences,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.ExpiredSignatureError:
            raise InvalidToken("the token has expired") from None
        except jwt.InvalidAudienceError:
            raise InvalidToken(f"the token was not issued for this server (audience must be {self.resource})") from None
        except jwt.InvalidIssuerError:
            raise InvalidToken(f"the token was not issued by {self.issuer}") from None
        except jwt.InvalidSignatureError:
            raise InvalidToken("the token's signature does not verify") from None
        except jwt.MissingRequiredClaimError as error:
            raise InvalidToken(f"the token has no {error.claim!r} claim") from None
        except jwt.ImmatureSignatureError:
            raise InvalidToken("the token is not valid yet") from None
        except jwt.InvalidTokenError:
            raise InvalidToken("the token cannot be verified") from None
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject.strip():
            raise InvalidToken("the token has no subject (sub)")
        expires = claims.get("exp")
        return Verified(_subject_name(subject), _scopes_of(claims)), float(expires) if isinstance(
            expires, int | float
        ) else 0.0

    def _signing_key(self, kid: str) -> jwt.PyJWK:
        try:
            found = self._find(self._jwks.get_signing_keys(), kid)
            if found is None and self._may_refetch():
                found = self._find(self._jwks.get_signing_keys(refresh=True), kid)
        except jwt.PyJWKClientConnectionError:
            raise VerifierUnavailable(
                "the identity provider's keys (POSTHOG_MCP_OAUTH_JWKS_URL) cannot be read"
            ) from None
        except jwt.PyJWKClientError:
            raise VerifierUnavailable("the identity provider's JWKS holds no usable signing key") from None
        if found is None:
            raise InvalidToken(f"the token's key id {kid[:40]!r} is not in the identity provider's JWKS")
        return found

    @staticmethod
    def _find(keys: list[jwt.PyJWK], kid: str) -> jwt.PyJWK | None:
        return next((key for key in keys if key.key_id == kid), None)

    def _may_refetch(self) -> bool:
        with self._refetch_lock:
            now = time.monotonic()
            if now - self._refetched_at < MIN_REFETCH_SECONDS:
                return False
            self._refetched_at = now
            return True

    # --- what clients are told ----------------------------------------------------------

    def challenge(self, error: str | None = None, description: str | None = None) -> str:
        """The WWW-Authenticate value of a 401 (RFC 6750 section 3, RFC 9728 section 5.1)."""
        parts = []
        if error:
            parts.append(f'error="{error}"')
        if description:
            # A quoted-string may not hold quotes, backslashes or control characters (RFC 9110 section 5.6.4).
            plain = re.sub(r'[^\x20-\x7e]|["\\]', "'", description)
            parts.append(f'error_description="{plain}"')
        if self.scope:
            parts.append(f'scope="{self.scope}"')
        parts.append(f'resource_metadata="{self.metadata_url}"')
        return "Bearer " + ", ".join(parts)

    def metadata(self) -> dict[str, Any]:
        document: dict[str, Any] = {
            "resource": self.resource,
            "authorization_servers": [self.issuer],
            "bearer_methods_supported": ["header"],
            "resource_name": "PostHog batch exports MCP",
        }
        if self.scope:
            document["scopes_supported"] = [self.scope]
        return document

    def routes(self, local_mcp_path: str) -> list[Route]:
        """The metadata at the root well-known path and at the path-suffixed one clients try first."""

        async def metadata(request: Request) -> Response:
            return JSONResponse(self.metadata(), headers={"Cache-Control": "public, max-age=300"})

        public_path = urlparse(self.resource).path.rstrip("/")
        paths = dict.fromkeys([WELL_KNOWN, WELL_KNOWN + local_mcp_path, WELL_KNOWN + public_path])
        return [Route(path, metadata, methods=["GET"]) for path in paths]
