"""OAuth resource-server mode against a JWKS this test serves on loopback, with keys it generates.

Every refusal must be a 401 carrying `WWW-Authenticate: Bearer ... resource_metadata="..."`
(the MCP authorization specification), a missing scope a 403 naming the scope, and the
RFC 9728 metadata must be served without a token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anyio
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from posthog_sandbox import DEFAULT_API_KEY
from server.config import ConfigError, Settings
from server.http.oauth import InvalidToken, ResourceServer
from tests.edge_support import captured_logs, mcp_client, post_mcp, serving
from tests.support import MODES, SandboxControl, data, settings_for

PUBLIC_URL = "https://mcp.example.test/mcp"
METADATA_URL = "https://mcp.example.test/.well-known/oauth-protected-resource/mcp"
SCOPE = "batch-exports"
STATIC_TOKEN = "static-token-" + "t" * 40


@pytest.fixture
def generation() -> int:
    return 3


@dataclass
class IdentityProvider:
    """A JWKS endpoint on loopback and the keys behind it; counts how often its keys are read."""

    url: str
    key: rsa.RSAPrivateKey
    kid: str = "key-1"
    fetches: int = 0
    down: bool = False
    extra_keys: list[dict[str, Any]] = field(default_factory=list)

    @property
    def issuer(self) -> str:
        return self.url

    @property
    def jwks_url(self) -> str:
        return self.url + "/jwks.json"

    def jwks(self) -> dict[str, Any]:
        public = RSAAlgorithm.to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": self.kid, "alg": "RS256", "use": "sig"}, *self.extra_keys]}

    def token(self, key: Any = None, kid: str | None = None, alg: str = "RS256", **claims: Any) -> str:
        now = int(time.time())
        body = {"iss": self.issuer, "aud": PUBLIC_URL, "sub": "alice@example.test", "iat": now, "exp": now + 600}
        body.update({"scope": f"openid {SCOPE}"} if "scope" not in claims else {})
        body.update(claims)
        body = {k: v for k, v in body.items() if v is not None}
        return jwt.encode(body, key if key is not None else self.key, algorithm=alg, headers={"kid": kid or self.kid})


@pytest.fixture
def idp() -> Iterator[IdentityProvider]:
    provider: IdentityProvider | None = None

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            assert provider is not None
            if self.path != "/jwks.json" or provider.down:
                self.send_response(503 if provider.down else 404)
                self.end_headers()
                return
            provider.fetches += 1
            body = json.dumps(provider.jwks()).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    provider = IdentityProvider(f"http://127.0.0.1:{server.server_address[1]}", key)
    try:
        yield provider
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def oauth_settings(sandbox: Any, tmp_path: Path, idp: IdentityProvider) -> Settings:
    return settings_for(
        sandbox.base_url,
        DEFAULT_API_KEY,
        tmp_path,
        oauth_issuer=idp.issuer,
        oauth_jwks_url=idp.jwks_url,
        public_url=PUBLIC_URL,
        oauth_scope=SCOPE,
    )


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def hs256_with_public_key(idp: IdentityProvider, now: int) -> str:
    """The algorithm-confusion forgery: HMAC keyed with the (public) PEM key, which pyjwt will not make itself."""
    pem = idp.key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": idp.kid}).encode())
    body = _b64(json.dumps({"sub": "x", "aud": PUBLIC_URL, "iss": idp.issuer, "exp": now + 600}).encode())
    signature = _b64(hmac.new(pem, f"{header}.{body}".encode(), hashlib.sha256).digest())
    return f"{header}.{body}.{signature}"


def assert_challenge(response: httpx.Response, error: str | None = "invalid_token") -> str:
    assert response.status_code == 401, response.text
    header = response.headers["WWW-Authenticate"]
    assert header.startswith("Bearer ")
    assert f'resource_metadata="{METADATA_URL}"' in header
    assert f'scope="{SCOPE}"' in header
    if error:
        assert f'error="{error}"' in header
    else:
        assert "error=" not in header  # no credentials, no error code (RFC 6750 section 3.1)
    return header


async def test_a_valid_token_is_accepted(oauth_settings: Settings, idp: IdentityProvider) -> None:
    async with serving(oauth_settings) as running:
        response = await post_mcp(running.url, idp.token())
        assert response.status_code == 200, response.text
        assert "batch-export-list" in response.text


async def test_an_ec_key_works_too(oauth_settings: Settings, idp: IdentityProvider) -> None:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    public = ECAlgorithm.to_jwk(ec_key.public_key(), as_dict=True)
    idp.extra_keys.append({**public, "kid": "ec-1", "alg": "ES256", "use": "sig"})
    async with serving(oauth_settings) as running:
        response = await post_mcp(running.url, idp.token(key=ec_key, kid="ec-1", alg="ES256"))
        assert response.status_code == 200, response.text


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("wrong audience", "not issued for this server"),
        ("wrong issuer", "not issued by"),
        ("expired", "expired"),
        ("bad signature", "signature does not verify"),
        ("unknown key id", "not in the identity provider"),
        ("no subject", "'sub'"),
        ("no key id", "key id"),
        ("HS256 with the public key", "algorithm"),
        ("alg none", "algorithm"),
        ("not a JWT", "not a JWT"),
    ],
)
async def test_each_bad_token_gets_401_with_the_challenge(
    oauth_settings: Settings, idp: IdentityProvider, control: SandboxControl, case: str, says: str
) -> None:
    now = int(time.time())
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tokens = {
        "wrong audience": lambda: idp.token(aud="https://other.example.test/mcp"),
        "wrong issuer": lambda: idp.token(iss="https://evil.example.test"),
        "expired": lambda: idp.token(iat=now - 7200, exp=now - 3600),
        "bad signature": lambda: idp.token(key=other_key),
        "unknown key id": lambda: idp.token(kid="key-unknown"),
        "no subject": lambda: idp.token(sub=None),
        "no key id": lambda: jwt.encode({"sub": "x", "aud": PUBLIC_URL, "iss": idp.issuer}, idp.key, "RS256"),
        "HS256 with the public key": lambda: hs256_with_public_key(idp, now),
        "alg none": lambda: jwt.encode(
            {"sub": "x", "aud": PUBLIC_URL, "iss": idp.issuer, "exp": now + 600},
            None,
            algorithm="none",
            headers={"kid": idp.kid},
        ),
        "not a JWT": lambda: "definitely-not-a-jwt-but-long-enough-0123456789",
    }
    token = tokens[case]()
    async with serving(oauth_settings) as running:
        control.clear_requests()
        response = await post_mcp(running.url, token)
        header = assert_challenge(response)
        assert says in header and says in response.json()["message"]
        assert token not in response.text and token not in header
        assert control.requests() == []


async def test_no_token_gets_the_challenge_without_an_error_code(oauth_settings: Settings) -> None:
    async with serving(oauth_settings) as running:
        assert_challenge(await post_mcp(running.url, None), error=None)


async def test_a_missing_scope_gets_403_naming_it(oauth_settings: Settings, idp: IdentityProvider) -> None:
    async with serving(oauth_settings) as running:
        response = await post_mcp(running.url, idp.token(scope="openid profile"))
        assert response.status_code == 403, response.text
        header = response.headers["WWW-Authenticate"]
        assert 'error="insufficient_scope"' in header and f'scope="{SCOPE}"' in header
        assert f'resource_metadata="{METADATA_URL}"' in header
        assert SCOPE in response.json()["message"]
        # The `scp` list some providers send counts as well.
        assert (await post_mcp(running.url, idp.token(scope=None, scp=[SCOPE]))).status_code == 200


async def test_the_metadata_is_served_without_a_token(oauth_settings: Settings, idp: IdentityProvider) -> None:
    async with serving(oauth_settings) as running:
        base = running.url.removesuffix("/mcp")
        async with httpx.AsyncClient() as http:
            for path in ("/.well-known/oauth-protected-resource/mcp", "/.well-known/oauth-protected-resource"):
                response = await http.get(base + path)
                assert response.status_code == 200, path
                document = response.json()
                assert document["resource"] == PUBLIC_URL
                assert document["authorization_servers"] == [idp.issuer]
                assert document["scopes_supported"] == [SCOPE]
                assert document["bearer_methods_supported"] == ["header"]


async def test_made_up_key_ids_do_not_flood_the_provider(oauth_settings: Settings, idp: IdentityProvider) -> None:
    async with serving(oauth_settings.with_(auth_failure_limit=0)) as running:
        assert (await post_mcp(running.url, idp.token())).status_code == 200
        for number in range(8):
            assert_challenge(await post_mcp(running.url, idp.token(kid=f"made-up-{number}")))
        # The first read, then one refetch for the first unknown key id; the rest wait out the refetch interval.
        assert idp.fetches == 2


async def test_an_unreachable_provider_is_503_not_401(oauth_settings: Settings, idp: IdentityProvider) -> None:
    idp.down = True
    async with serving(oauth_settings) as running:
        response = await post_mcp(running.url, idp.token())
        assert response.status_code == 503, response.text
        assert "POSTHOG_MCP_OAUTH_JWKS_URL" in response.json()["message"]
        assert int(response.headers["Retry-After"]) > 0


@pytest.mark.parametrize("mode", MODES)
async def test_the_sdk_client_calls_tools_and_logs_name_the_subject(
    oauth_settings: Settings, idp: IdentityProvider, control: SandboxControl, mode: str
) -> None:
    async with serving(oauth_settings) as running:
        control.fault(status=503, count=1, method="GET", path_contains="batch_exports")
        with captured_logs("server") as logs:
            async with mcp_client(running.url, idp.token(sub="bob@example.test"), mode) as client:
                assert data(await client.call_tool("batch-export-list", {"project_id": 1}))["count"] == 4
        assert logs.callers_of("server.posthog", "retrying") == ["bob@example.test"]


async def test_static_tokens_work_beside_oauth(oauth_settings: Settings, idp: IdentityProvider) -> None:
    async with serving(oauth_settings.with_(auth_token=STATIC_TOKEN)) as running:
        assert (await post_mcp(running.url, STATIC_TOKEN)).status_code == 200
        assert (await post_mcp(running.url, idp.token())).status_code == 200
        assert_challenge(await post_mcp(running.url, STATIC_TOKEN[:-1] + "x"))


@pytest.mark.parametrize(
    ("changes", "complaint"),
    [
        ({"oauth_jwks_url": None}, "POSTHOG_MCP_OAUTH_JWKS_URL"),
        ({"public_url": None}, "POSTHOG_MCP_PUBLIC_URL"),
        ({"public_url": "http://mcp.example.test/mcp"}, "https://"),
        ({"oauth_issuer": "ftp://idp.example.test"}, "POSTHOG_MCP_OAUTH_ISSUER"),
        ({"oauth_scope": "two scopes"}, "one scope"),
    ],
)
def test_incomplete_oauth_settings_are_refused(
    oauth_settings: Settings, changes: dict[str, Any], complaint: str
) -> None:
    with pytest.raises(ConfigError, match=complaint):
        ResourceServer.from_settings(oauth_settings.with_(**changes))


def test_settings_read_oauth_from_the_environment() -> None:
    settings = Settings.from_env(
        {
            "POSTHOG_MCP_OAUTH_ISSUER": "https://idp.example.test",
            "POSTHOG_MCP_OAUTH_JWKS_URL": "https://idp.example.test/jwks",
            "POSTHOG_MCP_PUBLIC_URL": PUBLIC_URL,
            "POSTHOG_MCP_OAUTH_SCOPE": SCOPE,
        }
    )
    server = ResourceServer.from_settings(settings)
    assert server is not None and server.metadata_url == METADATA_URL and settings.client_auth


async def test_a_verified_token_is_remembered_not_rechecked(
    oauth_settings: Settings, idp: IdentityProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    server = ResourceServer.from_settings(oauth_settings)
    assert server is not None
    checked: list[str] = []
    inner = server._verify

    def counting(token: str) -> Any:
        checked.append(token)
        return inner(token)

    monkeypatch.setattr(server, "_verify", counting)
    first, second = idp.token(), idp.token(sub="carol@example.test")
    assert (await server.verify(first)).subject == "alice@example.test"
    assert (await server.verify(first)).subject == "alice@example.test"
    assert (await server.verify(second)).subject == "carol@example.test"
    assert checked == [first, second]
    # Never past the token's own expiry: a token about to expire is checked again once it has.
    now = int(time.time())
    brief = idp.token(iat=now - 100, exp=now - 29)  # inside the 30 s leeway for about a second
    await server.verify(brief)
    await anyio.sleep(1.2)
    with pytest.raises(InvalidToken, match="expired"):
        await server.verify(brief)


@pytest.mark.parametrize(
    "issuer", ["http://127.evil.example/", "http://127.0.0.1.evil.example/", "http://localhost.evil.example/"]
)
def test_n14_plain_http_is_for_addresses_that_are_this_machine_not_names_that_start_like_them(
    oauth_settings: Settings, issuer: str
) -> None:
    with pytest.raises(ConfigError, match="loopback addresses only"):
        ResourceServer.from_settings(oauth_settings.with_(oauth_issuer=issuer))


@pytest.mark.parametrize("issuer", ["http://127.0.0.2:9000/", "http://[::1]:9000/", "http://LOCALHOST:9000/"])
def test_n14_plain_http_to_this_machine_in_any_spelling_is_allowed(oauth_settings: Settings, issuer: str) -> None:
    assert ResourceServer.from_settings(oauth_settings.with_(oauth_issuer=issuer)) is not None


def unsigned_token(header: dict[str, Any], claims: dict[str, Any]) -> str:
    """A JWT pyjwt will not make: its header is whatever the test says (the signature is never reached)."""
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}.{_b64(b'not-a-signature')}"


@pytest.mark.parametrize("kid", [123, ["key-1"], {"k": "key-1"}, None, True])
async def test_n5_a_key_id_that_is_not_a_string_is_a_401_counted_toward_lock_out(
    oauth_settings: Settings, idp: IdentityProvider, kid: Any
) -> None:
    now = int(time.time())
    token = unsigned_token(
        {"alg": "RS256", "typ": "JWT", "kid": kid},
        {"sub": "mallory", "aud": PUBLIC_URL, "iss": idp.issuer, "exp": now + 600},
    )
    async with serving(oauth_settings.with_(auth_failure_limit=2)) as running:
        for _ in range(2):
            response = await post_mcp(running.url, token)
            assert_challenge(response)
            assert "key id" in response.json()["message"]
            assert "Traceback" not in response.text
        locked = await post_mcp(running.url, token)
        assert locked.status_code == 429 and locked.json()["error"] == "locked_out"


N6_SUBJECTS = (
    "alice\u00e9@example.test",
    "alice\u00e8@example.test",
    "alice@example.test ",
    "alice@example.test\t",
    "a b",
    "a\tb",
    "x" * 128 + "-one",
    "x" * 128 + "-two",
    "plain~tilde",
)


async def test_n6_subjects_that_differ_only_where_names_are_cleaned_stay_distinct_callers(
    oauth_settings: Settings, idp: IdentityProvider
) -> None:
    server = ResourceServer.from_settings(oauth_settings)
    assert server is not None
    names = [(await server.verify(idp.token(sub=subject))).subject for subject in N6_SUBJECTS]
    assert len(set(names)) == len(N6_SUBJECTS), names
    for subject, name in zip(N6_SUBJECTS, names, strict=True):
        assert name.isascii() and name.isprintable() and " " not in name and len(name) <= 160, name
        assert name.startswith(re.sub(r"[^\x21-\x7d]", "?", subject)[:100]), name  # still readable
        assert (await server.verify(idp.token(sub=subject, iat=int(time.time()) - 1))).subject == name  # stable
    # A subject that needs no cleaning is the caller's name as it is; no plain subject can take a cleaned one's name.
    assert (await server.verify(idp.token(sub="alice@example.test"))).subject == "alice@example.test"
    assert (await server.verify(idp.token(sub=names[0]))).subject != names[0]

    # Over HTTP: a stateful session opened by one of two look-alike subjects is not the other's.
    import httpx

    from tests.edge_support import MCP_HEADERS

    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    first, second = idp.token(sub=N6_SUBJECTS[0]), idp.token(sub=N6_SUBJECTS[1])
    async with serving(oauth_settings.with_(http_stateful=True)) as running, httpx.AsyncClient(timeout=30) as http:
        opened = await http.post(
            running.url, json=initialize, headers={**MCP_HEADERS, "Authorization": f"Bearer {first}"}
        )
        assert opened.status_code == 200, opened.text
        session = opened.headers["mcp-session-id"]

        async def list_tools(token: str) -> int:
            headers = {**MCP_HEADERS, "Authorization": f"Bearer {token}", "Mcp-Session-Id": session}
            body = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
            return (await http.post(running.url, json=body, headers=headers)).status_code

        assert await list_tools(second) == 404
        assert await list_tools(first) == 200


async def test_n4_a_key_withdrawn_from_the_jwks_stops_verifying_within_a_minute(
    oauth_settings: Settings, idp: IdentityProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    import jwt.api_jwk
    import jwt.jwk_set_cache

    import server.http.oauth

    offset = [0.0]
    real_time, real_monotonic = time.time, time.monotonic

    class Later:
        """The clocks the verifier and pyjwt's JWKS cache read, moved forward by the test."""

        @staticmethod
        def time() -> float:
            return real_time() + offset[0]

        @staticmethod
        def monotonic() -> float:
            return real_monotonic() + offset[0]

    for module in (server.http.oauth, jwt.jwk_set_cache, jwt.api_jwk):
        monkeypatch.setattr(module, "time", Later)
    verifier = ResourceServer.from_settings(oauth_settings)
    assert verifier is not None
    withdrawn, kid = idp.key, idp.kid
    remembered = idp.token(sub="early@example.test")
    assert (await verifier.verify(remembered)).subject == "early@example.test"
    # The provider withdraws the key and signs with a new one from now on.
    idp.key, idp.kid = rsa.generate_private_key(public_exponent=65537, key_size=2048), "key-2"
    # Half a minute on, the copy of the keys read at the start may still hold it; a token it verifies is remembered.
    offset[0] = 29.0
    signed_late = idp.token(key=withdrawn, kid=kid, sub="late@example.test")
    assert (await verifier.verify(signed_late)).subject == "late@example.test"
    offset[0] = 61.0
    for token in (remembered, signed_late, idp.token(key=withdrawn, kid=kid, sub="later@example.test")):
        with pytest.raises(InvalidToken, match="not in the identity provider's JWKS"):
            await verifier.verify(token)
