"""Named bearer tokens: the tokens file, start-up refusals, and the caller every log line of a call names."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from posthog_sandbox import DEFAULT_API_KEY
from server.config import ConfigError, Settings
from server.http.callers import DEFAULT_CALLER, MIN_TOKEN_LENGTH, NamedTokens, load_tokens, parse_tokens_file
from tests.edge_support import captured_logs, mcp_client, post_mcp, serving
from tests.support import MODES, SandboxControl, confirm_with_token, data, settings_for

CI_TOKEN = "ci-token-" + "c" * 40
ALICE_TOKEN = "alice-token-" + "a" * 40
SINGLE_TOKEN = "single-token-" + "s" * 40


@pytest.fixture
def generation() -> int:
    return 3


def tokens_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tokens"
    path.write_text(text, encoding="utf-8")
    path.chmod(0o600)
    return path


# --- the file ---------------------------------------------------------------------------


def test_lines_and_json_name_the_same_callers(tmp_path: Path) -> None:
    lines = tokens_file(tmp_path, f"# callers\nci: {CI_TOKEN}\n\n  alice :  {ALICE_TOKEN}  \n")
    tokens = load_tokens(lines, None)
    assert tokens.names == ("ci", "alice")
    assert tokens.caller_for(CI_TOKEN) == "ci"
    assert tokens.caller_for(ALICE_TOKEN) == "alice"
    as_json = tokens_file(tmp_path, json.dumps({"ci": CI_TOKEN, "alice": ALICE_TOKEN}))
    assert load_tokens(as_json, None).names == ("ci", "alice")


def test_the_single_token_keeps_working_as_default(tmp_path: Path) -> None:
    tokens = load_tokens(tokens_file(tmp_path, f"ci: {CI_TOKEN}\n"), SINGLE_TOKEN)
    assert tokens.caller_for(SINGLE_TOKEN) == DEFAULT_CALLER
    assert load_tokens(None, SINGLE_TOKEN).names == (DEFAULT_CALLER,)


@pytest.mark.parametrize(
    "presented",
    [CI_TOKEN + "x", CI_TOKEN[:-1], "", CI_TOKEN.upper(), " " + CI_TOKEN, ALICE_TOKEN[:-1] + "b"],
)
def test_near_misses_name_nobody(tmp_path: Path, presented: str) -> None:
    tokens = load_tokens(tokens_file(tmp_path, f"ci: {CI_TOKEN}\nalice: {ALICE_TOKEN}\n"), None)
    assert tokens.caller_for(presented) is None


def test_only_digests_are_kept() -> None:
    tokens = NamedTokens.build([("ci", CI_TOKEN)], "test")
    assert CI_TOKEN not in repr(tokens)
    assert all(CI_TOKEN.encode() not in digest for _, digest in tokens.entries)


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        (f"ci: {'x' * (MIN_TOKEN_LENGTH - 1)}\n", "at least 32"),
        (f"ci: {CI_TOKEN}\nbot: {CI_TOKEN}\n", "same token"),
        (f"ci: {CI_TOKEN}\nci: {ALICE_TOKEN}\n", "appears twice"),
        (f"c i: {CI_TOKEN}\n", "not allowed"),
        (f"{CI_TOKEN}\n", "expected 'name: token'"),
        ("ci:\n", "expected 'name: token'"),
        ("# nobody\n", "names no caller"),
        ('{"ci": 1}', "JSON object"),
        ('{"ci": ', "not valid JSON"),
        (f"default: {CI_TOKEN}\n", "rename it"),
    ],
)
def test_bad_files_are_refused_at_start_up_without_echoing_tokens(tmp_path: Path, text: str, complaint: str) -> None:
    with pytest.raises(ConfigError, match=complaint) as raised:
        load_tokens(tokens_file(tmp_path, text), SINGLE_TOKEN)
    message = str(raised.value)
    assert "POSTHOG_MCP_AUTH_TOKENS_FILE" in message
    assert CI_TOKEN not in message and ALICE_TOKEN not in message and SINGLE_TOKEN not in message


def test_n15_a_json_file_naming_one_caller_twice_stops_start_up(tmp_path: Path) -> None:
    """JSON keeps the last of two equal keys: without a check one token would be dropped silently."""
    text = json.dumps({"ci": CI_TOKEN, "alice": ALICE_TOKEN})[:-1] + f', "ci": "{SINGLE_TOKEN}"}}'
    path = tokens_file(tmp_path, text)
    with pytest.raises(ConfigError, match="caller name 'ci' appears twice") as raised:
        load_tokens(path, None)
    assert CI_TOKEN not in str(raised.value) and SINGLE_TOKEN not in str(raised.value)


def test_a_missing_file_and_a_short_single_token_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Cannot read POSTHOG_MCP_AUTH_TOKENS_FILE"):
        load_tokens(tmp_path / "absent", None)
    with pytest.raises(ConfigError, match="POSTHOG_MCP_AUTH_TOKEN is 5 characters"):
        load_tokens(None, "short")


def test_settings_read_the_file_from_the_environment(tmp_path: Path) -> None:
    path = tokens_file(tmp_path, f"ci: {CI_TOKEN}\n")
    settings = Settings.from_env({"POSTHOG_MCP_AUTH_TOKENS_FILE": str(path)})
    assert settings.auth_tokens_file == path
    assert settings.client_auth


def test_parse_keeps_colons_inside_tokens() -> None:
    assert parse_tokens_file("ci: abc:def\n", "test") == [("ci", "abc:def")]


# --- over real HTTP -----------------------------------------------------------------------


@pytest.fixture
def named_settings(sandbox: Any, tmp_path: Path) -> Settings:
    path = tokens_file(tmp_path, f"ci: {CI_TOKEN}\nalice: {ALICE_TOKEN}\n")
    return settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, auth_tokens_file=path, auth_token=SINGLE_TOKEN)


async def test_every_named_token_and_the_single_one_get_in_and_others_do_not(named_settings: Settings) -> None:
    async with serving(named_settings) as running:
        for token in (CI_TOKEN, ALICE_TOKEN, SINGLE_TOKEN):
            response = await post_mcp(running.url, token)
            assert response.status_code == 200, response.text
        refused = await post_mcp(running.url, CI_TOKEN[:-1] + "z")
        assert refused.status_code == 401
        assert refused.headers["WWW-Authenticate"].startswith("Bearer")
        assert "POSTHOG_MCP_AUTH_TOKENS_FILE" in refused.text
        assert CI_TOKEN not in refused.text


@pytest.mark.parametrize("mode", MODES)
async def test_log_lines_of_a_call_name_its_caller_never_its_token(
    named_settings: Settings, control: SandboxControl, mode: str
) -> None:
    async with serving(named_settings) as running:
        for token, name in ((CI_TOKEN, "ci"), (ALICE_TOKEN, "alice")):
            # One 503 makes the PostHog client log its retry, from inside the call.
            control.fault(status=503, count=1, method="GET", path_contains="batch_exports")
            with captured_logs("server") as logs:
                async with mcp_client(running.url, token, mode) as client:
                    assert data(await client.call_tool("batch-export-list", {"project_id": 1}))["count"] == 4
            assert logs.callers_of("server.posthog", "retrying") == [name]
            assert all(token not in record.getMessage() for record in logs.records)


@pytest.mark.parametrize("mode", MODES)
async def test_every_audit_line_of_a_write_names_its_caller(
    named_settings: Settings, control: SandboxControl, mode: str
) -> None:
    export_id = control.export_id("Hourly events to S3")
    async with serving(named_settings) as running:
        async with mcp_client(running.url, ALICE_TOKEN, mode) as client:
            await confirm_with_token(client, "batch-export-pause", {"project_id": 1, "batch_export_id": export_id})
    assert named_settings.audit_log is not None
    text = named_settings.audit_log.read_text()
    lines = [json.loads(line) for line in text.splitlines()]
    assert [line["decision"] for line in lines] == ["previewed", "confirmed", "executed"]
    assert {line["caller"] for line in lines} == {"alice"}
    assert ALICE_TOKEN not in text and CI_TOKEN not in text


def test_the_log_redactor_hides_every_token_of_the_file(tmp_path: Path) -> None:
    import logging

    from server.cli.commands import RedactSecrets
    from server.http.callers import token_values

    redactor = RedactSecrets()
    redactor.hide(*token_values(tokens_file(tmp_path, f"ci: {CI_TOKEN}\nalice: {ALICE_TOKEN}\n")))
    record = logging.LogRecord("server", logging.WARNING, __file__, 1, "got %s and %s", (CI_TOKEN, ALICE_TOKEN), None)
    redactor.filter(record)
    assert record.getMessage() == "got [redacted] and [redacted]"
    assert token_values(tmp_path / "absent") == []


async def test_a_stateful_session_answers_only_the_caller_that_opened_it(named_settings: Settings) -> None:
    import httpx

    from tests.edge_support import MCP_HEADERS

    initialize = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
    }
    async with serving(named_settings.with_(http_stateful=True)) as running, httpx.AsyncClient(timeout=30) as http:
        opened = await http.post(
            running.url, json=initialize, headers={**MCP_HEADERS, "Authorization": f"Bearer {CI_TOKEN}"}
        )
        assert opened.status_code == 200, opened.text
        session = opened.headers["mcp-session-id"]

        async def list_tools(token: str) -> int:
            headers = {**MCP_HEADERS, "Authorization": f"Bearer {token}", "Mcp-Session-Id": session}
            body = {"jsonrpc": "2.0", "id": 2, "method": "tools/list"}
            return (await http.post(running.url, json=body, headers=headers)).status_code

        # Another caller holding the session id is answered as if the session did not exist.
        assert await list_tools(ALICE_TOKEN) == 404
        assert await list_tools(CI_TOKEN) == 200


def test_the_command_line_stops_at_start_up_on_a_bad_tokens_file(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    path = tokens_file(tmp_path, f"ci: {CI_TOKEN}\nbot: {CI_TOKEN}\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTHOG_")}
    env.update(POSTHOG_MCP_AUTH_TOKENS_FILE=str(path), POSTHOG_MCP_AUDIT_LOG=str(tmp_path / "audit.jsonl"))
    done = subprocess.run(
        [sys.executable, "-m", "server", "serve", "--transport", "http", "--port", "0", "--sandbox"],
        capture_output=True,
        text=True,
        timeout=90,
        env=env,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "callers 'ci' and 'bot' have the same token" in done.stderr
    assert CI_TOKEN not in done.stderr + done.stdout
    assert "Serving MCP" not in done.stderr
