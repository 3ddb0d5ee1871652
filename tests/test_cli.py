"""The command line as users run it: real subprocesses, stdio over real pipes, the sandbox over loopback."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, StdioServerParameters

from posthog_sandbox import SandboxKey
from server import __version__
from tests.support import BATCH_EXPORT_SCOPES, MODES, data, listed_by_a_default_server
from tools.catalog import CATALOG

ROOT = Path(__file__).resolve().parent.parent
CANARY_KEY = "phx_cli_canary_key_0123456789abcdef"
TIMEOUT = 60


def clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any POSTHOG_* setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTHOG_")}
    env.update(extra)
    return env


def cli(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "server", *args],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=clean_env() if env is None else env,
        cwd=ROOT,
        input=stdin,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ((), ("serve", "sandbox", "demo", "tools", "POSTHOG_MCP_LOG_LEVEL")),
        (
            ("serve",),
            ("--transport", "--host", "--port", "--read-only", "--sandbox", "--toolsets", "--tools", "--exclude-tools"),
        ),
        (("demo",), ("--generation",)),
        (("tools",), ("--json", "--markdown")),
    ],
)
def test_help_everywhere(args: tuple[str, ...], expected: tuple[str, ...]) -> None:
    done = cli(*args, "--help")
    assert done.returncode == 0, done.stderr
    for word in expected:
        assert word in done.stdout


@pytest.mark.parametrize("args", [(), ("serve",), ("demo",), ("tools",)])
def test_version_everywhere_matches_the_package(args: tuple[str, ...]) -> None:
    done = cli(*args, "--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"posthog-batch-exports-mcp {__version__}"
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"] == __version__


def test_tools_json_is_the_catalog() -> None:
    done = cli("tools", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [r["name"] for r in rows] == [s.name for s in CATALOG]
    by_name = {r["name"]: r for r in rows}
    for spec in CATALOG:
        row = by_name[spec.name]
        assert (row["scope"], row["readOnlyHint"], row["destructiveHint"], row["guarded"]) == (
            spec.scope,
            spec.read_only,
            spec.destructive,
            spec.is_guarded,
        )


def test_tools_table_lists_every_tool() -> None:
    done = cli("tools")
    assert done.returncode == 0, done.stderr
    for spec in CATALOG:
        assert spec.name in done.stdout


def test_serve_without_a_key_fails_clearly_and_starts_nothing() -> None:
    done = cli("serve")
    assert done.returncode == 2
    assert done.stdout == ""  # stdout belongs to the protocol, even when failing
    assert "POSTHOG_PERSONAL_API_KEY is not set" in done.stderr
    assert "--sandbox" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (
            ("--transport", "http", "--host", "0.0.0.0"),
            {"POSTHOG_PERSONAL_API_KEY": CANARY_KEY},
            "POSTHOG_MCP_AUTH_TOKEN",
        ),
        ((), {"POSTHOG_PERSONAL_API_KEY": CANARY_KEY, "POSTHOG_PROJECT_ID": "abc"}, "POSTHOG_PROJECT_ID must be"),
        ((), {"POSTHOG_PERSONAL_API_KEY": CANARY_KEY, "POSTHOG_HOST": "us.posthog.com"}, "POSTHOG_HOST must start"),
        ((), {"POSTHOG_PERSONAL_API_KEY": CANARY_KEY, "POSTHOG_MCP_TIMEOUT": "nan"}, "POSTHOG_MCP_TIMEOUT must be"),
        ((), {"POSTHOG_PERSONAL_API_KEY": CANARY_KEY, "POSTHOG_MCP_TIMEOUT": "inf"}, "POSTHOG_MCP_TIMEOUT must be"),
        (
            (),
            {"POSTHOG_PERSONAL_API_KEY": CANARY_KEY, "POSTHOG_HOST": "http://posthog.internal"},
            "POSTHOG_MCP_ALLOW_INSECURE_HOST",
        ),
        (
            ("--transport", "http"),
            {"POSTHOG_PERSONAL_API_KEY": CANARY_KEY, "POSTHOG_MCP_AUTH_TOKEN": "tooshort"},
            "at least 32",
        ),
        (
            ("--transport", "http", "--allowed-origins", "localhost:3000"),
            {"POSTHOG_PERSONAL_API_KEY": CANARY_KEY, "POSTHOG_HOST": "http://127.0.0.1:9"},
            "is not an origin",
        ),
        (
            ("--tools", "batch-export-nope"),
            {"POSTHOG_PERSONAL_API_KEY": CANARY_KEY, "POSTHOG_HOST": "http://127.0.0.1:9"},
            "batch-export-nope",
        ),
    ],
)
def test_bad_configuration_exits_2_with_the_fix(args: tuple[str, ...], env: dict[str, str], message: str) -> None:
    done = cli(*args, env=clean_env(**env))
    assert done.returncode == 2, done.stderr
    assert message in done.stderr
    assert done.stdout == ""
    assert CANARY_KEY not in done.stderr
    assert "Traceback" not in done.stderr


def test_unknown_command_or_flag_is_a_usage_error() -> None:
    done = cli("serve", "--no-such-flag")
    assert done.returncode == 2
    assert "unrecognized arguments: --no-such-flag" in done.stderr


def _rpc(id_: int | None, method: str, params: dict[str, Any] | None = None) -> str:
    message: dict[str, Any] = {"jsonrpc": "2.0", "method": method}
    if id_ is not None:
        message["id"] = id_
    if params is not None:
        message["params"] = params
    return json.dumps(message) + "\n"


def test_stdio_stdout_carries_only_protocol_and_logs_never_show_the_key(
    make_sandbox: Callable[..., Any], tmp_path: Path
) -> None:
    sandbox = make_sandbox(keys=[SandboxKey(CANARY_KEY, ["batch_export:read", "batch_export:write"])])
    env = clean_env(
        POSTHOG_PERSONAL_API_KEY=CANARY_KEY,
        POSTHOG_HOST=sandbox.base_url,
        POSTHOG_MCP_LOG_LEVEL="DEBUG",  # the chattiest level must still keep the key out
        POSTHOG_MCP_AUDIT_LOG=str(tmp_path / "audit.jsonl"),
    )
    requests = [
        _rpc(
            1,
            "initialize",
            {"protocolVersion": "2025-11-25", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}},
        ),
        _rpc(None, "notifications/initialized"),
        _rpc(2, "tools/list"),
        _rpc(3, "tools/call", {"name": "batch-export-list", "arguments": {"project_id": 1}}),
        _rpc(4, "tools/call", {"name": "batch-export-get", "arguments": {"project_id": 1, "batch_export_id": "nope"}}),
    ]
    # No command: `serve` over stdio is the default. Stdin stays open until every answer is in; EOF then ends it.
    process = subprocess.Popen(
        [sys.executable, "-m", "server"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    lines = queue.Queue[str]()
    reader = threading.Thread(target=lambda: [lines.put(line) for line in process.stdout], daemon=True)  # type: ignore[union-attr]
    reader.start()
    # stderr is drained while the server runs: a full pipe (DEBUG logs) would block it mid-answer.
    stderr_lines: list[str] = []
    stderr_reader = threading.Thread(target=lambda: stderr_lines.extend(process.stderr), daemon=True)  # type: ignore[arg-type]
    stderr_reader.start()
    assert process.stdin is not None
    process.stdin.write("".join(requests))
    process.stdin.flush()
    stdout: list[str] = []
    try:
        while {1, 2, 3, 4} - {json.loads(line).get("id") for line in stdout}:
            try:
                stdout.append(lines.get(timeout=TIMEOUT))
            except queue.Empty:
                raise AssertionError(f"no answer within {TIMEOUT} s; stdout so far: {stdout}") from None
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
        reader.join(timeout=TIMEOUT)
        stderr_reader.join(timeout=TIMEOUT)
    while not lines.empty():
        stdout.append(lines.get_nowait())
    stderr = "".join(stderr_lines)
    assert process.returncode == 0, stderr
    messages = [json.loads(line) for line in stdout]  # every stdout line is a JSON-RPC message
    assert all(m.get("jsonrpc") == "2.0" for m in messages)
    by_id = {m["id"]: m for m in messages if "id" in m}
    assert set(by_id) == {1, 2, 3, 4}
    assert by_id[1]["result"]["serverInfo"]["name"] == "posthog-batch-exports-mcp"
    # the default toolsets, less the deprecated tool
    assert len(by_id[2]["result"]["tools"]) == listed_by_a_default_server(BATCH_EXPORT_SCOPES)
    assert by_id[3]["result"]["structuredContent"]["count"] == 4
    assert by_id[4]["result"]["isError"] is True
    assert "DEBUG" in stderr  # the level came from the environment
    assert CANARY_KEY not in stderr
    assert CANARY_KEY not in "".join(stdout)


@pytest.mark.parametrize("mode", MODES)
async def test_stdio_server_subprocess_with_a_real_client(
    mode: str, make_sandbox: Callable[..., Any], tmp_path: Path
) -> None:
    sandbox = make_sandbox(keys=[SandboxKey(CANARY_KEY, ["batch_export:read"])])
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "server", "serve", "--read-only"],
        cwd=str(ROOT),
        env=clean_env(
            POSTHOG_PERSONAL_API_KEY=CANARY_KEY,
            POSTHOG_HOST=sandbox.base_url,
            POSTHOG_MCP_AUDIT_LOG=str(tmp_path / "audit.jsonl"),
        ),
    )
    async with Client(params, mode=mode, read_timeout_seconds=30) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        assert "batch-export-list" in tools
        assert not any(spec.name in tools for spec in CATALOG if not spec.read_only)
        exports = data(await client.call_tool("batch-export-list", {"project_id": 1}))
        assert {e["name"] for e in exports["results"]} >= {"Hourly events to S3", "Daily events to Snowflake"}


async def test_serve_sandbox_flag_starts_its_own_sandbox(tmp_path: Path) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "server", "serve", "--sandbox"],
        cwd=str(ROOT),
        env=clean_env(POSTHOG_MCP_AUDIT_LOG=str(tmp_path / "audit.jsonl")),
    )
    async with Client(params, read_timeout_seconds=30) as client:
        exports = data(await client.call_tool("batch-export-list", {"project_id": 1}))
        assert exports["count"] == 4


def test_log_redaction_hides_secrets_whoever_logs_them() -> None:
    import io
    import logging

    from server.cli.commands import RedactSecrets

    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    redactor = RedactSecrets()
    redactor.hide(CANARY_KEY, None, "short")  # too-short values are not secrets worth masking
    handler.addFilter(redactor)
    logger = logging.getLogger("tests.redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("request failed with headers %s", {"Authorization": f"Bearer {CANARY_KEY}"})
        logger.warning("a short word stays")
    finally:
        logger.removeHandler(handler)
    assert CANARY_KEY not in stream.getvalue()
    assert "Bearer [redacted]" in stream.getvalue()
    assert "a short word stays" in stream.getvalue()


async def test_sandbox_db_lets_one_shot_processes_confirm_a_write(tmp_path: Path) -> None:
    """One process previews, a second one (same --sandbox-db and confirm secret) executes, as the Inspector CLI does."""

    def params() -> StdioServerParameters:
        return StdioServerParameters(
            command=sys.executable,
            args=["-m", "server", "serve", "--sandbox", "--sandbox-db", str(tmp_path / "sandbox.db")],
            cwd=str(ROOT),
            env=clean_env(
                POSTHOG_MCP_AUDIT_LOG=str(tmp_path / "audit.jsonl"),
                POSTHOG_MCP_CONFIRM_SECRET="one-shot-processes-share-this",
            ),
        )

    async with Client(params(), read_timeout_seconds=30) as client:
        exports = data(await client.call_tool("batch-export-list", {"project_id": 1}))["results"]
        hourly = next(e for e in exports if e["name"] == "Hourly events to S3")
        arguments = {"project_id": 1, "batch_export_id": hourly["id"]}
        preview = data(await client.call_tool("batch-export-pause", arguments))
    async with Client(params(), read_timeout_seconds=30) as client:
        done = data(
            await client.call_tool(
                "batch-export-pause", {**arguments, "confirmation_token": preview["confirmation_token"]}
            )
        )
        assert done["status"] == "executed"
        assert data(await client.call_tool("batch-export-get", arguments))["paused"] is True


def test_item4_a_shared_secret_without_redis_over_http_stops_unless_one_replica_is_declared() -> None:
    """Without Redis each replica keeps its own ledger, so one confirmation could write once on each:
    over HTTP a confirm secret (what replicas share) needs Redis, or --single-replica to say there is one."""
    secret = "a-confirm-secret-shared-by-replicas-0123456789"
    env = clean_env(
        POSTHOG_PERSONAL_API_KEY=CANARY_KEY, POSTHOG_HOST="http://127.0.0.1:9", POSTHOG_MCP_CONFIRM_SECRET=secret
    )
    done = cli("serve", "--transport", "http", "--port", "0", env=env)
    assert done.returncode == 2, done.stderr
    for needed in ("POSTHOG_MCP_CONFIRM_SECRET", "POSTHOG_MCP_REDIS_URL", "--single-replica", "twice"):
        assert needed in done.stderr, done.stderr
    assert done.stdout == "" and secret not in done.stderr and "Traceback" not in done.stderr
    assert "Serving MCP" not in done.stderr

    from server.cli.commands import build_parser, settings_from

    assert settings_from(build_parser().parse_args(["serve", "--single-replica"]), {}).single_replica is True
    assert settings_from(build_parser().parse_args(["serve"]), {"POSTHOG_MCP_SINGLE_REPLICA": "true"}).single_replica
    assert settings_from(build_parser().parse_args(["serve"]), {}).single_replica is False
