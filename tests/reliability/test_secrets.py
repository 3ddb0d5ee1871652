"""No secret leaves the server: every tool is called (reads, previews, elicitation questions,
executed writes, refusals, upstream and argument errors) against exports carrying canary secrets
(the sandbox seeds them with `sandbox-canary`; this test adds its own through the tools), and no
reply, structured result, elicitation message, log line, stderr line or audit line may contain a
canary or the API key."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any
from uuid import uuid4

import mcp.types as types
import pytest

from posthog_sandbox import DEFAULT_API_KEY, SandboxKey
from tests.support import SandboxControl, connect, guarded_arguments, running_app, settings_for, text
from tools.catalog import CATALOG

SEEDED_CANARY = "sandbox-canary"
OWN_CANARY = f"own-canary-{uuid4().hex[:12]}"
BAD_KEY = f"phx_wrong_key_canary_{uuid4().hex[:12]}"
HTTP_URL = "https://us.i.posthog.com/batch/"


class Transcript:
    """Everything the server said, in one searchable list."""

    def __init__(self) -> None:
        self.parts: list[tuple[str, str]] = []
        self.tools_called: set[str] = set()

    def add(self, where: str, value: Any) -> None:
        self.parts.append((where, value if isinstance(value, str) else json.dumps(value, default=str)))

    def result(self, name: str, result: types.CallToolResult) -> Any:
        self.tools_called.add(name)
        self.add(f"{name} text", text(result))
        self.add(f"{name} structuredContent", result.structured_content)
        self.add(f"{name} _meta", result.meta)
        if result.structured_content is not None:
            return result.structured_content
        return {"error": text(result), "_meta": result.meta}  # errors are text only

    def leaks(self, needles: list[str]) -> list[str]:
        return [
            f"{needle!r} in {where}: ...{body[max(0, body.find(needle) - 80) : body.find(needle) + 80]}..."
            for where, body in self.parts
            for needle in needles
            if needle in body
        ]


async def call(client: Any, seen: Transcript, name: str, arguments: dict[str, Any]) -> Any:
    return seen.result(name, await client.call_tool(name, arguments))


async def through_token(client: Any, seen: Transcript, name: str, arguments: dict[str, Any]) -> Any:
    """Preview, then execute with the token (either reply may be an error: both are checked)."""
    preview = await call(client, seen, name, arguments)
    token = preview.get("confirmation_token") if isinstance(preview, dict) else None
    if token:
        return await call(client, seen, name, {**arguments, "confirmation_token": token})
    return preview


def first(control: SandboxControl, path: str, where: Callable[[dict], bool] = lambda _: True) -> dict[str, Any]:
    return next(item for item in control.api("GET", path).json()["results"] if where(item))


async def exercise_every_tool(client: Any, seen: Transcript, control: SandboxControl) -> None:
    ids = {
        name: control.export_id(name)
        for name in (
            "Hourly events to S3",
            "Daily events to Snowflake",
            "Paused events to Postgres",
            "Events to BigQuery (backfilling)",
        )
    }
    s3, snowflake, postgres, bigquery = ids.values()
    failed_run = first(control, f"1/batch_exports/{snowflake}/runs/", lambda r: r["status"] == "Failed")
    backfill = first(control, f"1/batch_exports/{bigquery}/backfills/")
    p = {"project_id": 1}
    # Taken before any write here, while each target is in the state its tool needs.
    guarded = guarded_arguments(control)

    # reads, including errors upstream (another organization's project, an unknown id)
    await call(client, seen, "batch-export-list", p)
    await call(client, seen, "batch-export-list", {"project_id": 2})
    for export_id in ids.values():
        await call(client, seen, "batch-export-get", {**p, "batch_export_id": export_id})
    await call(client, seen, "batch-export-get", {"project_id": 3, "batch_export_id": s3})
    await call(client, seen, "batch-export-get", {**p, "batch_export_id": str(uuid4())})
    await call(client, seen, "batch-export-runs-list", {**p, "batch_export_id": snowflake, "after": "-30d"})
    await call(client, seen, "batch-export-run-get", {**p, "batch_export_id": snowflake, "run_id": failed_run["id"]})
    await call(client, seen, "batch-export-logs", {**p, "batch_export_id": snowflake, "level": ["ERROR"]})
    await call(client, seen, "batch-export-logs", {**p, "batch_export_id": snowflake, "run_id": failed_run["id"]})
    await call(client, seen, "batch-export-backfills-list", {**p, "batch_export_id": bigquery})
    await call(
        client, seen, "batch-export-backfill-get", {**p, "batch_export_id": bigquery, "backfill_id": backfill["id"]}
    )
    for destination in ("AwsS3", "Snowflake", "Postgres", "BigQuery", "HTTP"):
        await call(client, seen, "batch-export-test-steps", {**p, "destination": destination})

    # connection tests carrying secrets (unguarded writes)
    own_http = {"type": "HTTP", "config": {"url": HTTP_URL, "token": OWN_CANARY}}
    await call(
        client, seen, "batch-export-test-step-new", {**p, "name": "t", "interval": "hour", "destination": own_http}
    )
    await call(
        client,
        seen,
        "batch-export-test-step",
        {
            **p,
            "batch_export_id": postgres,
            "destination": {"type": "Postgres", "config": {"password": OWN_CANARY, "user": OWN_CANARY}},
        },
    )

    # guarded writes, previewed and executed; secrets in the arguments
    created = await through_token(
        client,
        seen,
        "batch-export-create",
        {**p, "name": "Own canary export", "interval": "hour", "destination": own_http},
    )
    own_id = (created.get("result") or {}).get("id")
    assert own_id, f"the export with our own canary was not created: {created}"
    await through_token(
        client,
        seen,
        "batch-export-update",
        {
            **p,
            "batch_export_id": own_id,
            "name": "Own canary export, renamed",
            "destination": {"type": "HTTP", "config": {"token": OWN_CANARY + "-rotated"}},
        },
    )
    await through_token(
        client,
        seen,
        "batch-export-update",
        {**p, "batch_export_id": snowflake, "destination": {"type": "Snowflake", "config": {"password": OWN_CANARY}}},
    )
    await call(client, seen, "batch-export-get", {**p, "batch_export_id": own_id})
    await through_token(client, seen, "batch-export-pause", {**p, "batch_export_id": s3})
    await through_token(client, seen, "batch-export-unpause", {**p, "batch_export_id": s3, "backfill": True})
    await through_token(
        client, seen, "batch-export-run-retry", {**p, "batch_export_id": snowflake, "run_id": failed_run["id"]}
    )
    await through_token(
        client, seen, "batch-export-run-cancel", {**p, "batch_export_id": snowflake, "run_id": failed_run["id"]}
    )
    await through_token(
        client,
        seen,
        "batch-export-backfill-create",
        {**p, "batch_export_id": s3, "start_at": "2026-11-01T00:00:00Z", "end_at": "2026-11-01T03:00:00Z"},
    )
    await through_token(
        client,
        seen,
        "batch-export-backfill-legacy",
        {**p, "batch_export_id": s3, "start_at": "2026-11-01T00:00:00Z", "end_at": "2026-11-01T03:00:00Z"},
    )
    await through_token(
        client, seen, "batch-export-backfill-cancel", {**p, "batch_export_id": bigquery, "backfill_id": backfill["id"]}
    )
    await through_token(client, seen, "batch-export-delete", {**p, "batch_export_id": own_id})

    # the answers (issue 11): each reads exports whose configs hold the seeded secrets
    await call(client, seen, "batch-export-health", {**p, "state": "all", "intervals": 3})
    await call(client, seen, "batch-export-errors", {**p, "after": "-7d", "level": ["ERROR", "INFO"]})
    await call(client, seen, "batch-export-destination-check", {**p, "batch_export_id": snowflake})
    await call(client, seen, "batch-export-gaps", {**p, "batch_export_id": snowflake})
    await through_token(client, seen, "batch-export-gaps-backfill", {**p, "batch_export_id": snowflake})
    await call(
        client,
        seen,
        "batch-export-wait",
        {**p, "batch_export_id": snowflake, "run_id": failed_run["id"], "timeout_seconds": 1},
    )
    await call(client, seen, "batch-export-projects", {})

    # refusals and argument errors that carry secrets
    await call(
        client,
        seen,
        "batch-export-create",
        {
            **p,
            "name": "x",
            "interval": "hour",
            "destination": {"type": "HTTP", "config": {"url": HTTP_URL, "token": OWN_CANARY, "password": OWN_CANARY}},
        },
    )
    await call(
        client,
        seen,
        "batch-export-create",
        {
            **p,
            "name": "x",
            "interval": "hour",
            "destination": {
                "type": "Postgres",
                "config": {"database": "d", "password": OWN_CANARY, "user": OWN_CANARY},
            },
        },
    )
    await call(client, seen, "batch-export-create", {**p, "name": "x", "interval": "monthly", "destination": own_http})
    await call(client, seen, "batch-export-pause", {**p, "batch_export_id": s3, "confirmation_token": OWN_CANARY})
    await call(
        client,
        seen,
        "batch-export-create",
        {**p, "name": "x", "interval": "hour", "destination": own_http, "confirmation_token": OWN_CANARY + ".x"},
    )

    # Any read tool not called above (a new endpoint, say) is called with ids from the seed, so adding a
    # plain read needs no edit here; a required argument without a value here fails the sweep.
    seeded = {"project_id": 1, "batch_export_id": snowflake, "run_id": failed_run["id"], "destination": "Snowflake"}
    for tool in (await client.list_tools()).tools:
        if tool.name in seen.tools_called:
            continue
        if tool.name in guarded:
            # A guarded write not called above: preview and confirm it with the arguments the guard's
            # tests use (either reply may be an error; both are checked for secrets).
            await through_token(client, seen, tool.name, guarded[tool.name])
            continue
        if not (tool.annotations and tool.annotations.read_only_hint):
            continue
        values = (
            {**seeded, "batch_export_id": bigquery, "backfill_id": backfill["id"]}
            if "backfill_id" in (tool.input_schema.get("properties", {}))
            else seeded
        )
        missing = [n for n in tool.input_schema.get("required", []) if n not in values]
        assert not missing, f"{tool.name}: the secrets sweep has no seed value for {missing}"
        properties = tool.input_schema.get("properties", {})
        await call(client, seen, tool.name, {n: v for n, v in values.items() if n in properties})


def assert_nothing_leaked(
    seen: Transcript, caplog: pytest.LogCaptureFixture, capfd: pytest.CaptureFixture, audit: Path, key: str
) -> None:
    assert audit.exists() and audit.read_text().strip(), "no audit trail was written"
    for number, line in enumerate(audit.read_text().splitlines(), 1):
        seen.add(f"audit line {number}", line)
    for record in caplog.records:
        seen.add(f"log {record.name}", record.getMessage() + (record.exc_text or ""))
    out, err = capfd.readouterr()
    seen.add("stdout", out)
    seen.add("stderr", err)
    leaks = seen.leaks([SEEDED_CANARY, OWN_CANARY, key])
    assert not leaks, "secrets leaked:\n" + "\n".join(leaks[:10])


async def test_no_reply_log_or_audit_line_carries_a_secret(
    make_sandbox: Callable[..., Any],
    mode: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    from posthog_sandbox import SandboxKey
    from tests.support import EVERY_TOOL_SCOPES

    # A key that may call every tool, who changed what and the integration ones included (their answers must
    # not leak secrets either).
    sandbox = make_sandbox(generation=3, throttle=False, keys=[SandboxKey(DEFAULT_API_KEY, list(EVERY_TOOL_SCOPES))])
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    seen = Transcript()
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, include_deprecated=True)
    async with running_app(settings) as app:
        async with connect(app, mode) as client:
            await exercise_every_tool(client, seen, control)
    control.close()
    assert seen.tools_called == {spec.name for spec in CATALOG}, "every tool must be exercised"
    assert_nothing_leaked(seen, caplog, capfd, tmp_path / "audit.jsonl", DEFAULT_API_KEY)


async def test_elicitation_questions_carry_no_secret(
    make_sandbox: Callable[..., Any],
    mode: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture,
) -> None:
    """The question a person is asked (both eras) is built from live state and the arguments."""
    caplog.set_level(logging.DEBUG)
    from posthog_sandbox import SandboxKey
    from tests.support import EVERY_TOOL_SCOPES

    # A key that may call every tool, the integration ones included (their secrets must not leak either).
    sandbox = make_sandbox(generation=3, throttle=False, keys=[SandboxKey(DEFAULT_API_KEY, list(EVERY_TOOL_SCOPES))])
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    seen = Transcript()

    async def decline(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        seen.add("elicitation", params.model_dump(mode="json"))
        return types.ElicitResult(action="decline")

    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)
    async with running_app(settings) as app, connect(app, mode, elicitation_callback=decline) as client:
        own_http = {"type": "HTTP", "config": {"url": HTTP_URL, "token": OWN_CANARY}}
        await call(
            client,
            seen,
            "batch-export-create",
            {"project_id": 1, "name": "n", "interval": "hour", "destination": own_http},
        )
        for name in ("Daily events to Snowflake", "Paused events to Postgres"):
            export_id = control.export_id(name)
            await call(
                client,
                seen,
                "batch-export-update",
                {
                    "project_id": 1,
                    "batch_export_id": export_id,
                    "destination": {"type": name.split()[-1], "config": {"password": OWN_CANARY}},
                },
            )
            await call(client, seen, "batch-export-delete", {"project_id": 1, "batch_export_id": export_id})
    control.close()
    assert any(where == "elicitation" for where, _ in seen.parts), "the client was never asked"
    assert_nothing_leaked(seen, caplog, capfd, tmp_path / "audit.jsonl", DEFAULT_API_KEY)


async def test_a_rejected_api_key_is_never_echoed(
    make_sandbox: Callable[..., Any],
    mode: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    sandbox = make_sandbox(
        generation=3, keys=[SandboxKey(DEFAULT_API_KEY, ["batch_export:read", "batch_export:write"])]
    )
    seen = Transcript()
    async with running_app(settings_for(sandbox.base_url, BAD_KEY, tmp_path)) as app, connect(app, mode) as client:
        reply = await call(client, seen, "batch-export-list", {"project_id": 1})
        await through_token(client, seen, "batch-export-pause", {"project_id": 1, "batch_export_id": str(uuid4())})
    assert "401" in json.dumps(reply), reply
    (tmp_path / "audit.jsonl").touch()
    seen.add("audit", (tmp_path / "audit.jsonl").read_text())
    for record in caplog.records:
        seen.add(f"log {record.name}", record.getMessage())
    out, err = capfd.readouterr()
    seen.add("stderr", err + out)
    assert not seen.leaks([BAD_KEY, BAD_KEY[-12:]]), seen.leaks([BAD_KEY, BAD_KEY[-12:]])[:5]
