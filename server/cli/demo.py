"""The Quickstart's scripted session: a real MCP client drives the server against the embedded sandbox.

It does what an assistant would do for "my Snowflake export is failing, fix it": list the
exports, find the failing one, read its ERROR logs, pick a failed run, retry it through the
confirmation guard (token channel: the preview is shown and the user agrees), then let
sandbox time pass and watch the new run complete. Every step checks its own outcome; the
demo returns 0 only when all of them did what they should.

The transcript goes to stdout: this command is not the stdio server, so stdout is free.
"""

from __future__ import annotations

import json
import tempfile
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import anyio
import mcp.types as types
from mcp import Client

from posthog_sandbox.control import SandboxControl
from server import untrusted
from server.app import open_app
from server.config import Settings

PROJECT = 1
CLOCK_STEP_SECONDS = 60
MAX_CLOCK_STEPS = 10  # a retried run starts within seconds and takes two simulated minutes
WIDTH = 100


class DemoFailed(Exception):
    """A step did not do what it should; the message says which and what happened."""


class Transcript:
    def __init__(self, write: Callable[[str], None]) -> None:
        self.write = write
        self.step = 0

    def line(self, text: str = "", indent: int = 0) -> None:
        prefix = " " * indent
        for part in text.splitlines() or [""]:
            # Ids and tokens stay whole (copyable, and the layout does not depend on which hex digits a
            # UUID happens to have next to its hyphens): break only at spaces.
            wrapped = textwrap.wrap(
                part, WIDTH - indent, subsequent_indent="  ", break_on_hyphens=False, break_long_words=False
            ) or [""]
            for piece in wrapped:
                self.write(prefix + piece)

    def heading(self, text: str) -> None:
        self.step += 1
        self.write("")
        self.line(f"[{self.step}] {text}")

    def call(self, name: str, arguments: dict[str, Any]) -> None:
        shown = {k: (_short_token(v) if k == "confirmation_token" else v) for k, v in arguments.items()}
        self.line(f"-> {name} {json.dumps(shown)}", indent=4)


def _short_token(token: str) -> str:
    return f"{token[:12]}...(signed, single use)"


def _text(result: types.CallToolResult) -> str:
    # A person reads this: PostHog's text as the server cleaned it, without the markers meant for a model.
    return "".join(untrusted.unmark(block.text) for block in result.content if isinstance(block, types.TextContent))


class Session:
    """The client side of the demo: calls tools, echoes them, insists on success."""

    def __init__(self, client: Client, out: Transcript) -> None:
        self.client = client
        self.out = out

    async def call(self, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        self.out.call(name, arguments)
        result = await self.client.call_tool(name, arguments)
        if not isinstance(result, types.CallToolResult):
            raise DemoFailed(f"{name} returned {type(result).__name__}, not a tool result.")
        if result.is_error:
            raise DemoFailed(f"{name} failed: {_text(result)}")
        if not isinstance(result.structured_content, dict):
            raise DemoFailed(f"{name} returned no structured content.")
        return result.structured_content


def _latest_status(export: dict[str, Any]) -> str | None:
    runs = export.get("latest_runs") or []
    return runs[0].get("status") if runs else None


async def _find_failing(session: Session, out: Transcript) -> dict[str, Any]:
    out.heading('The user asks: "Are my batch exports healthy?" The assistant lists them.')
    page = await session.call("batch-export-list", {"project_id": PROJECT})
    exports = page.get("results") or []
    if not exports:
        raise DemoFailed("batch-export-list returned no exports for project 1.")
    for export in exports:
        statuses = ", ".join(r.get("status", "?") for r in export.get("latest_runs") or []) or "no runs yet"
        state = "paused" if export.get("paused") else "active"
        out.line(
            f"- {export['name']} ({export['destination']['type']}, every {export['interval']}, {state}): "
            f"latest runs {statuses}",
            indent=4,
        )
    failing = [e for e in exports if _latest_status(e) in ("Failed", "FailedRetryable")]
    if not failing:
        raise DemoFailed("no export's latest run failed; the sandbox should seed a failing Snowflake export.")
    export = failing[0]
    out.line(f'The assistant: "{export["name"]}" is failing; its latest run is {_latest_status(export)}.', indent=4)
    return cast(dict[str, Any], export)


async def _read_errors(session: Session, out: Transcript, export: dict[str, Any]) -> None:
    out.heading("The assistant reads the failing export's ERROR logs.")
    found = await session.call(
        "batch-export-errors", {"project_id": PROJECT, "batch_export_id": export["id"], "after": "-7d"}
    )
    groups = found.get("exports") or []
    rows = groups[0].get("lines") or [] if groups else []
    if not rows or any(row.get("level") != "ERROR" for row in rows):
        raise DemoFailed(f"expected ERROR log lines for {export['name']}, got {len(rows)} lines.")
    for row in rows:
        out.line(f"{row['timestamp']}  {row['message']}", indent=4)
    out.line("The assistant: the destination refuses the credentials, so every daily run fails.", indent=4)


async def _pick_failed_run(session: Session, out: Transcript, export: dict[str, Any]) -> dict[str, Any]:
    out.heading("The assistant picks the newest failed run.")
    page = await session.call(
        "batch-export-runs-list", {"project_id": PROJECT, "batch_export_id": export["id"], "status": ["Failed"]}
    )
    runs = page.get("results") or []
    if not runs:
        raise DemoFailed(f"batch-export-runs-list found no Failed runs of {export['name']}.")
    run = runs[0]
    out.line(
        f"Run {run['id']}: {run['status']} for {run['data_interval_start']} -> {run['data_interval_end']}, "
        f"error: {run.get('latest_error')}",
        indent=4,
    )
    return cast(dict[str, Any], run)


async def _retry_with_confirmation(
    session: Session, out: Transcript, export: dict[str, Any], run: dict[str, Any]
) -> dict[str, Any]:
    out.heading("The assistant retries the run. Writes go through the confirmation guard.")
    arguments = {"project_id": PROJECT, "batch_export_id": export["id"], "run_id": run["id"]}
    first = await session.call("batch-export-run-retry", arguments)
    if first.get("status") != "confirmation_required" or not first.get("confirmation_token"):
        raise DemoFailed(f"the first retry call should only preview, but answered {first.get('status')!r}.")
    out.line(f"<- confirmation_required: {first['message']}", indent=4)
    out.line(f"Preview: {json.dumps(first['preview'])}", indent=6)
    out.line('The assistant shows this preview to the user. The user agrees: "Yes, retry it."', indent=4)
    second = await session.call(
        "batch-export-run-retry", {**arguments, "confirmation_token": first["confirmation_token"]}
    )
    if second.get("status") != "executed":
        raise DemoFailed(f"the confirmed retry should execute, but answered {second.get('status')!r}: {second}")
    out.line(f"<- executed: {second['message']} Result: {json.dumps(second.get('result'))}", indent=4)
    return second


async def _watch_new_run(
    session: Session, out: Transcript, control: SandboxControl, export: dict[str, Any], failed: dict[str, Any]
) -> dict[str, Any]:
    out.heading(f"Time passes (the sandbox clock moves {CLOCK_STEP_SECONDS} s at a time); the assistant watches.")
    interval = (failed["data_interval_start"], failed["data_interval_end"])
    for step in range(1, MAX_CLOCK_STEPS + 1):
        await anyio.to_thread.run_sync(control.advance, CLOCK_STEP_SECONDS)
        page = await session.call(
            "batch-export-runs-list", {"project_id": PROJECT, "batch_export_id": export["id"], "after": "-30d"}
        )
        retried = [
            r
            for r in page.get("results") or []
            if r["id"] != failed["id"] and (r["data_interval_start"], r["data_interval_end"]) == interval
        ]
        if not retried:
            out.line(f"+{step * CLOCK_STEP_SECONDS} s: the backfill has not created the new run yet.", indent=6)
            continue
        run = retried[0]
        out.line(f"+{step * CLOCK_STEP_SECONDS} s: new run {run['id']} is {run['status']}.", indent=6)
        if run["status"] == "Completed":
            out.line(
                f"The assistant: the retried run exported {run.get('records_completed')} records for "
                f"{interval[0]} -> {interval[1]}. The export is healthy again.",
                indent=4,
            )
            return cast(dict[str, Any], run)
        if run["status"] not in ("Starting", "Running"):
            raise DemoFailed(f"the retried run ended {run['status']}: {run.get('latest_error')}")
    raise DemoFailed(f"the retried run did not complete within {MAX_CLOCK_STEPS * CLOCK_STEP_SECONDS} sandbox seconds.")


async def demo_session(base_url: str, api_key: str, out: Transcript, audit_dir: Path) -> None:
    """The scripted conversation against a running sandbox at `base_url`."""
    settings = Settings(api_key=api_key, host=base_url, audit_log=audit_dir / "audit.jsonl")
    with SandboxControl(base_url, api_key) as control:
        await _demo_conversation(settings, out, control, audit_dir)


async def _demo_conversation(settings: Settings, out: Transcript, control: SandboxControl, audit_dir: Path) -> None:
    async with (
        open_app(settings) as app,
        Client(app.server, read_timeout_seconds=30) as client,
    ):
        out.line(
            f"A real MCP client (protocol {client.protocol_version}) drives the server, as an assistant would. "
            f"The client shows no confirmation dialogs, so the guard uses its token channel."
        )
        tools = await client.list_tools()
        out.line(f"The server lists {len(tools.tools)} tools.")
        session = Session(client, out)
        export = await _find_failing(session, out)
        await _read_errors(session, out, export)
        failed = await _pick_failed_run(session, out, export)

        out.heading("Meanwhile the user fixes the Snowflake password in PostHog.")
        await anyio.to_thread.run_sync(control.set_outcome, export["id"], "succeed")
        out.line("(Sandbox control: runs of this export succeed from now on.)", indent=4)

        await _retry_with_confirmation(session, out, export, failed)
        await _watch_new_run(session, out, control, export, failed)
        app.audit.flush()
        lines = [json.loads(line) for line in (audit_dir / "audit.jsonl").read_text().splitlines()]
        decisions = [line["decision"] for line in lines if line.get("tool") == "batch-export-run-retry"]
        if decisions[:1] != ["previewed"] or decisions[-1:] != ["executed"]:
            raise DemoFailed(f"the audit trail should show the retry previewed, then executed; it has {decisions}.")
        out.heading("The audit trail recorded the write.")
        out.line(f"batch-export-run-retry: {' -> '.join(decisions)} (one JSON line each).", indent=4)


def _demo_failure(error: BaseException) -> DemoFailed | None:
    """The DemoFailed behind an error; raised inside the client's task group, it arrives grouped."""
    if isinstance(error, DemoFailed):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = _demo_failure(inner)
            if found is not None:
                return found
    return None


def run_demo_on(base_url: str, api_key: str, write: Callable[[str], None] = print) -> int:
    """Run the scripted session against a running sandbox; 0 when every step did what it should."""
    out = Transcript(write)
    out.line(f"posthog-batch-exports-mcp demo: local PostHog sandbox at {base_url}")
    out.line("Nothing here touches a real PostHog. The sandbox clock is frozen and moved on purpose.")
    with tempfile.TemporaryDirectory(prefix="phbe-demo-") as audit_dir:
        try:
            anyio.run(demo_session, base_url, api_key, out, Path(audit_dir))
        except BaseException as error:
            failure = _demo_failure(error)
            if failure is None:
                raise
            out.line("")
            out.line(f"DEMO FAILED at step {out.step}: {failure}")
            return 1
    out.line("")
    out.line(f"Demo passed: all {out.step} steps did what they should.")
    return 0


def run_demo(generation: int = 3, write: Callable[[str], None] = print) -> int:
    """Start a fresh in-process sandbox (frozen clock) and run the scripted session on it."""
    from posthog_sandbox import DEFAULT_API_KEY, SandboxConfig, SandboxKey, start_sandbox

    # Older PostHog (generation 1) serves logs only to legacy unscoped keys, so the demo uses one there.
    scopes = ["batch_export:read", "batch_export:write"] if generation >= 3 else []
    config = SandboxConfig(generation=generation, keys=[SandboxKey(DEFAULT_API_KEY, scopes)], speed=0.0)
    with start_sandbox(config) as sandbox:
        write(f"(PostHog API generation {generation}{'' if scopes else ', legacy unscoped key'})")
        return run_demo_on(sandbox.base_url, DEFAULT_API_KEY, write)
