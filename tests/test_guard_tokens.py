"""The guard's token channel (clients without elicitation), and every way a token can be misused.

The first call changes nothing and answers `confirmation_required` with a preview and a signed,
single-use token; the same call plus the token executes. Each attack must be refused with a
message that says why, and send no write upstream (checked in the sandbox's request log).
"""

from __future__ import annotations

import base64
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from posthog_sandbox import DEFAULT_API_KEY
from server.config import Settings
from server.guard.decision import STATE_KIND, TOKEN_KIND, Refused, TokenSigner, canonical_digest
from server.guard.shared_state import InProcessState
from tests.support import (
    GUARDED_TOOLS,
    MODES,
    SandboxControl,
    assert_output_valid,
    connect,
    guarded_arguments,
    running_app,
    settings_for,
    text,
    tools_by_name,
)


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def preview(client: Any, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(name, arguments)
    assert not result.is_error, text(result)
    body = result.structured_content
    assert body["status"] == "confirmation_required", body
    return body


@pytest.mark.parametrize("mode", MODES)
async def test_token_path_previews_then_executes_every_guarded_tool(
    sandbox: Any, control: SandboxControl, generation: int, mode: str, tmp_path: Any
) -> None:
    arguments = guarded_arguments(control)
    tools = list(GUARDED_TOOLS)
    if generation == 1:
        tools.insert(tools.index("batch-export-run-retry"), "batch-export-backfill-legacy")
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, include_deprecated=True)
    async with running_app(settings) as app, connect(app, mode) as client:
        listed = await tools_by_name(client)
        for name in tools:
            token_param = listed[name].input_schema["properties"]["confirmation_token"]
            assert token_param["type"] == "string" and "user agreed" in token_param["description"]
            control.clear_requests()
            first = await client.call_tool(name, arguments[name])
            assert_output_valid(listed[name], first)
            body = first.structured_content
            assert body["status"] == "confirmation_required", (name, body)
            assert body["preview"]["summary"] and "Nothing changed yet" in body["message"]
            expires = parse_time(body["expires_at"]) - datetime.now(UTC)
            assert timedelta(minutes=9, seconds=50) < expires <= timedelta(minutes=10), (name, body["expires_at"])
            assert control.writes() == [], f"{name} wrote before confirmation"

            second = await client.call_tool(name, {**arguments[name], "confirmation_token": body["confirmation_token"]})
            assert_output_valid(listed[name], second)
            assert second.structured_content["status"] == "executed", (name, text(second))
            writes = control.writes()
            assert len(writes) == 1 and writes[0]["status"] < 300, (name, writes)


# --- attacks -------------------------------------------------------------------------------


def tamper(token: str, **changes: Any) -> str:
    """Rewrite a token's claims but keep its signature, as a forger without the key would."""
    payload, _, signature = token.partition(".")
    body = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    body.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(body, separators=(",", ":")).encode()).rstrip(b"=").decode()
    return f"{forged}.{signature}"


class Attack:
    """Context for one attack: a fresh preview of pausing the hourly S3 export."""

    def __init__(self, app: Any, client: Any, control: SandboxControl) -> None:
        self.app = app
        self.client = client
        self.control = control
        self.arguments = guarded_arguments(control)
        self.pause = self.arguments["batch-export-pause"]

    async def token(self, name: str = "batch-export-pause", arguments: dict[str, Any] | None = None) -> str:
        return (await preview(self.client, name, arguments or self.arguments[name]))["confirmation_token"]


async def changed_argument(a: Attack) -> tuple[str, dict[str, Any]]:
    backfill = a.arguments["batch-export-backfill-create"]
    token = await a.token("batch-export-backfill-create")
    later = (parse_time(backfill["start_at"]) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return "batch-export-backfill-create", {**backfill, "start_at": later, "confirmation_token": token}


async def expired(a: Attack) -> tuple[str, dict[str, Any]]:
    token = await a.token()
    a.app.guard.signer.clock = lambda: time.time() + 601
    return "batch-export-pause", {**a.pause, "confirmation_token": token}


async def target_changed(a: Attack) -> tuple[str, dict[str, Any]]:
    token = await a.token()
    path = f"1/batch_exports/{a.pause['batch_export_id']}/"
    a.control.api("PATCH", path, json={"name": "Renamed between preview and confirmation"}).raise_for_status()
    return "batch-export-pause", {**a.pause, "confirmation_token": token}


async def another_tool(a: Attack) -> tuple[str, dict[str, Any]]:
    token = await a.token()
    return "batch-export-unpause", {**a.pause, "confirmation_token": token}


async def another_project(a: Attack) -> tuple[str, dict[str, Any]]:
    token = await a.token()
    other = a.control.export_id("Project 2 events to HTTP", project=2)
    return "batch-export-pause", {"project_id": 2, "batch_export_id": other, "confirmation_token": token}


async def reused(a: Attack) -> tuple[str, dict[str, Any]]:
    token = await a.token()
    first = await a.client.call_tool("batch-export-pause", {**a.pause, "confirmation_token": token})
    assert first.structured_content["status"] == "executed", text(first)
    unpaused = await a.client.call_tool("batch-export-unpause", a.pause)  # put it back, through the guard too
    done = await a.client.call_tool(
        "batch-export-unpause", {**a.pause, "confirmation_token": unpaused.structured_content["confirmation_token"]}
    )
    assert done.structured_content["status"] == "executed", text(done)
    return "batch-export-pause", {**a.pause, "confirmation_token": token}


async def forged(a: Attack) -> tuple[str, dict[str, Any]]:
    return "batch-export-pause", {**a.pause, "confirmation_token": "eyJ0IjoiYmF0Y2gtZXhwb3J0LXBhdXNlIn0.c2lnbmF0dXJl"}


async def tampered(a: Attack) -> tuple[str, dict[str, Any]]:
    token = await a.token()
    other = a.arguments["batch-export-delete"]
    digest = canonical_digest(other)
    return "batch-export-delete", {**other, "confirmation_token": tamper(token, t="batch-export-delete", a=digest)}


async def truncated(a: Attack) -> tuple[str, dict[str, Any]]:
    token = await a.token()
    return "batch-export-pause", {**a.pause, "confirmation_token": token[:-6]}


async def other_servers_key(a: Attack) -> tuple[str, dict[str, Any]]:
    stranger = TokenSigner(b"some other server's secret")
    token, _ = stranger.issue("batch-export-pause", 1, canonical_digest(a.pause), None)
    return "batch-export-pause", {**a.pause, "confirmation_token": token}


async def request_state_as_token(a: Attack) -> tuple[str, dict[str, Any]]:
    # What a 2026-07-28 client echoes with the user's answer: signed by this server, but for the
    # elicitation round-trip; relaying it as a token would skip the person.
    export = a.control.api("GET", f"1/batch_exports/{a.pause['batch_export_id']}/").json()
    state, _ = a.app.guard.signer.issue(
        "batch-export-pause", 1, canonical_digest(a.pause), export["last_updated_at"], STATE_KIND
    )
    return "batch-export-pause", {**a.pause, "confirmation_token": state}


async def not_a_string(a: Attack) -> tuple[str, dict[str, Any]]:
    return "batch-export-pause", {**a.pause, "confirmation_token": 12345}


ATTACKS = {
    changed_argument: "arguments differ from the previewed call",
    expired: "has expired",
    target_changed: "changed since the preview",
    another_tool: "issued for batch-export-pause, not batch-export-unpause",
    another_project: "issued for project 1, not 2",
    reused: "already used",
    forged: "not valid",
    tampered: "not valid",
    truncated: "not valid",
    other_servers_key: "not valid",
    request_state_as_token: "other confirmation channel",
    not_a_string: "must be the string a preview returned",
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("attack", list(ATTACKS), ids=[f.__name__ for f in ATTACKS])
async def test_token_attack_is_refused_and_sends_no_write(
    make_sandbox: Any, attack: Any, mode: str, tmp_path: Any
) -> None:
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)
    async with running_app(settings) as app, connect(app, mode) as client:
        name, arguments = await attack(Attack(app, client, control))
        before = control.state()
        control.clear_requests()
        result = await client.call_tool(name, arguments)
    assert result.is_error, text(result)
    message = text(result)
    assert ATTACKS[attack] in message, message
    assert "Call again" in message or "Preview this call" in message or "preview" in message
    assert control.writes() == []
    assert control.state() == before
    control.close()


# --- a shared secret across replicas -----------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_shared_secret_lets_another_instance_accept_the_token(
    make_sandbox: Any, mode: str, tmp_path: Any
) -> None:
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    pause = guarded_arguments(control)["batch-export-pause"]
    shared = Settings.from_env(
        {
            "POSTHOG_PERSONAL_API_KEY": DEFAULT_API_KEY,
            "POSTHOG_HOST": sandbox.base_url,
            "POSTHOG_MCP_CONFIRM_SECRET": "replicas share this secret",
            "POSTHOG_MCP_AUDIT_LOG": str(tmp_path / "audit.jsonl"),
        }
    )
    assert shared.confirm_secret == b"replicas share this secret"
    async with running_app(shared) as one, running_app(shared) as two:
        async with connect(one, mode) as first, connect(two, mode) as second:
            token = (await preview(first, "batch-export-pause", pause))["confirmation_token"]
            result = await second.call_tool("batch-export-pause", {**pause, "confirmation_token": token})
    assert result.structured_content["status"] == "executed", text(result)
    assert control.api("GET", f"1/batch_exports/{pause['batch_export_id']}/").json()["paused"] is True
    control.close()


@pytest.mark.parametrize("mode", MODES)
async def test_without_a_shared_secret_another_instance_refuses(make_sandbox: Any, mode: str, tmp_path: Any) -> None:
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    pause = guarded_arguments(control)["batch-export-pause"]
    own = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)
    async with running_app(own) as one, running_app(own) as two:
        async with connect(one, mode) as first, connect(two, mode) as second:
            token = (await preview(first, "batch-export-pause", pause))["confirmation_token"]
            control.clear_requests()
            result = await second.call_tool("batch-export-pause", {**pause, "confirmation_token": token})
    assert result.is_error and "issued by another server" in text(result)
    assert control.writes() == []
    control.close()


# --- the signer on its own -----------------------------------------------------------------------


def test_signer_expiry_is_exact_to_the_second() -> None:
    now = [1_000_000.0]
    signer = TokenSigner(b"k", ttl=600, clock=lambda: now[0])
    token, expires = signer.issue("t", 1, "d", "v1")
    assert expires == 1_000_600
    now[0] = 1_000_600.0
    assert signer.verify(token, "t", 1, "d").version == "v1"  # the last valid second
    token, _ = signer.issue("t", 1, "d", "v1")
    now[0] = 1_001_201.0
    with pytest.raises(Refused, match="expired"):
        signer.verify(token, "t", 1, "d")


async def test_ledger_forgets_spent_tokens_once_they_expire() -> None:
    # Spending moved from the signer to the ledger (server/guard/shared_state.py); its memory stays bounded.
    now = [0.0]
    signer = TokenSigner(b"k", ttl=10, clock=lambda: now[0])
    ledger = InProcessState(clock=lambda: now[0])
    for _ in range(100):
        token, _ = signer.issue("t", 1, "d", None)
        claim = signer.verify(token, "t", 1, "d")
        assert await ledger.spend(signer.store_name("spent", claim.nonce), claim.expires - signer.now() + 1)
    now[0] = 11.0
    token, _ = signer.issue("t", 1, "d", None)
    claim = signer.verify(token, "t", 1, "d")
    assert await ledger.spend(signer.store_name("spent", claim.nonce), claim.expires - signer.now() + 1)
    assert len(ledger._spent) == 1


def test_kinds_do_not_stand_in_for_each_other() -> None:
    signer = TokenSigner(b"k")
    state, _ = signer.issue("t", 1, "d", None, STATE_KIND)
    token, _ = signer.issue("t", 1, "d", None, TOKEN_KIND)
    with pytest.raises(Refused, match="other confirmation channel"):
        signer.verify(state, "t", 1, "d", TOKEN_KIND)
    with pytest.raises(Refused, match="other confirmation channel"):
        signer.verify(token, "t", 1, "d", STATE_KIND)
