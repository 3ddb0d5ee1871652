"""What an attack run found in the guard (issue 13, items 5, 6 and 7), each reproduced here.

- An empty 204 answer to the re-check read must end in a refusal, not an exception, and the
  audit trail must not stop at `confirmed`.
- A retry confirmed before the export's destination changed must be refused.
- The token's claim about the arguments must not let a guess be checked offline.
"""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

from posthog_sandbox import DEFAULT_API_KEY
from server.app import open_app
from server.guard.sealing import TokenSigner, canonical_digest
from tests.support import MODES, SandboxControl, connect, guarded_arguments, running_app, settings_for, text


class EmptyAnswers(httpx.AsyncBaseTransport):
    """Loopback to the sandbox, except that GETs answer an empty 204 while `empty` is set."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.empty = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.empty and request.method == "GET":
            return httpx.Response(204, request=request)
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


def audit_decisions(path: Path) -> list[str]:
    return [json.loads(line)["decision"] for line in path.read_text().splitlines()]


@pytest.mark.parametrize("mode", MODES)
async def test_an_empty_answer_to_the_recheck_read_is_refused_and_audited(
    make_sandbox: Any, mode: str, tmp_path: Path
) -> None:
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    pause = guarded_arguments(control)["batch-export-pause"]
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)
    upstream = EmptyAnswers()
    async with open_app(settings, transport=upstream) as app, connect(app, mode) as client:
        first = await client.call_tool("batch-export-pause", pause)
        token = first.structured_content["confirmation_token"]
        control.clear_requests()
        upstream.empty = True
        result = await client.call_tool("batch-export-pause", {**pause, "confirmation_token": token})
        app.audit.flush()
    message = text(result)
    assert result.is_error and "could not be read again before the write" in message, message
    assert "Nothing was changed" in message and "inside the MCP server" not in message
    assert control.writes() == []
    assert audit_decisions(settings.audit_log)[-2:] == ["confirmed", "refused"]
    control.close()


@pytest.mark.parametrize("mode", MODES)
async def test_a_retry_confirmed_before_the_destination_changed_is_refused(
    make_sandbox: Any, mode: str, tmp_path: Path
) -> None:
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    retry = guarded_arguments(control)["batch-export-run-retry"]
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)
    async with running_app(settings) as app, connect(app, mode) as client:
        first = await client.call_tool("batch-export-run-retry", retry)
        token = first.structured_content["confirmation_token"]
        path = f"1/batch_exports/{retry['batch_export_id']}/"
        moved = {"destination": {"type": "Snowflake", "config": {"table_name": "somewhere_else"}}}
        control.api("PATCH", path, json=moved).raise_for_status()
        control.clear_requests()
        result = await client.call_tool("batch-export-run-retry", {**retry, "confirmation_token": token})
    assert result.is_error and "changed since the preview" in text(result), text(result)
    assert control.writes() == []
    control.close()


def _claims(token: str) -> dict[str, Any]:
    payload = token.partition(".")[0]
    decoded: dict[str, Any] = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return decoded


def test_a_guessed_secret_argument_cannot_be_checked_against_a_token_offline() -> None:
    arguments = {
        "project_id": 1,
        "name": "Weak secret",
        "interval": "hour",
        "destination": {"type": "HTTP", "config": {"url": "https://us.i.posthog.com/batch/", "token": "hunter22"}},
    }
    token, _ = TokenSigner(b"this server's confirm secret").issue(
        "batch-export-create", 1, canonical_digest(arguments), None
    )
    claim = _claims(token)["a"]
    words = ["password", "letmein", "hunter2", "hunter22", "correcthorse"]
    for guess in words:
        guessed = {**arguments, "destination": {**arguments["destination"], "config": {"token": guess}}}
        guessed["destination"]["config"]["url"] = "https://us.i.posthog.com/batch/"
        text_form = json.dumps(guessed, sort_keys=True, separators=(",", ":"), default=str)
        plain = hashlib.sha256(text_form.encode()).hexdigest()
        # What an attacker holding the token can compute: none of it matches the claim.
        assert claim not in (plain, canonical_digest(guessed), hashlib.sha256(plain.encode()).hexdigest())
    # The claim depends on the server's key: another key makes another claim for the same arguments.
    other, _ = TokenSigner(b"another server's confirm secret").issue(
        "batch-export-create", 1, canonical_digest(arguments), None
    )
    assert _claims(other)["a"] != claim
