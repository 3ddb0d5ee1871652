"""The audit trail: one JSON line per guarded decision, secrets removed, real upstream status,
and a broken audit file never breaks a call."""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from posthog_sandbox import DEFAULT_API_KEY
from server.config import default_audit_path
from server.guard.audit import AuditLog
from tests.support import (
    MODES,
    SECRET_CANARY,
    SandboxControl,
    answering,
    confirm_with_token,
    connect,
    guarded_arguments,
    running_app,
    settings_for,
    text,
)

FIELDS = {"time", "tool", "project", "target", "arguments", "channel", "decision", "upstream_status"}


def audit_lines(path: Path) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    for line in lines:
        assert FIELDS <= set(line), line
        assert datetime.fromisoformat(line["time"]).tzinfo is not None
    return lines


def decisions(lines: list[dict[str, Any]]) -> list[tuple[str, str, str, Any]]:
    return [(line["tool"], line["channel"], line["decision"], line["upstream_status"]) for line in lines]


@pytest.mark.parametrize("mode", MODES)
async def test_token_channel_lines_carry_the_real_upstream_status(
    sandbox: Any, control: SandboxControl, generation: int, mode: str, tmp_path: Path
) -> None:
    arguments = guarded_arguments(control)
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)
    async with running_app(settings) as app, connect(app, mode) as client:
        for name in ("batch-export-pause", "batch-export-backfill-create", "batch-export-delete"):
            await confirm_with_token(client, name, arguments[name])
    created = 201 if generation == 3 else 200  # Gen-1 answers backfill create with 200 (reference 13)
    assert decisions(audit_lines(settings.audit_log)) == [
        ("batch-export-pause", "token", "previewed", None),
        ("batch-export-pause", "token", "confirmed", None),
        ("batch-export-pause", "token", "executed", 200),
        ("batch-export-backfill-create", "token", "previewed", None),
        ("batch-export-backfill-create", "token", "confirmed", None),
        ("batch-export-backfill-create", "token", "executed", created),
        ("batch-export-delete", "token", "previewed", None),
        ("batch-export-delete", "token", "confirmed", None),
        ("batch-export-delete", "token", "executed", 204),
    ]
    first = audit_lines(settings.audit_log)[0]
    assert first["project"] == 1
    assert first["target"] == arguments["batch-export-pause"]["batch_export_id"]
    assert first["arguments"] == arguments["batch-export-pause"]


@pytest.mark.parametrize("mode", MODES)
async def test_elicitation_decisions_each_get_a_line(make_sandbox: Any, mode: str, tmp_path: Path) -> None:
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    arguments = guarded_arguments(control)
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)
    pause, delete = arguments["batch-export-pause"], arguments["batch-export-delete"]
    async with running_app(settings) as app:
        for answer in (answering("decline"), answering("cancel"), answering("accept", {"confirm": True})):
            async with connect(app, mode, elicitation_callback=answer) as client:
                await client.call_tool("batch-export-pause", pause)
        async with connect(app, mode, elicitation_callback=answering("accept", {"name": "not its name"})) as client:
            await client.call_tool("batch-export-delete", delete)
    lines = audit_lines(settings.audit_log)
    assert decisions(lines) == [
        ("batch-export-pause", "elicitation", "previewed", None),
        ("batch-export-pause", "elicitation", "declined", None),
        ("batch-export-pause", "elicitation", "previewed", None),
        ("batch-export-pause", "elicitation", "cancelled", None),
        ("batch-export-pause", "elicitation", "previewed", None),
        ("batch-export-pause", "elicitation", "confirmed", None),
        ("batch-export-pause", "elicitation", "executed", 200),
        ("batch-export-delete", "elicitation", "previewed", None),
        ("batch-export-delete", "elicitation", "declined", None),
    ]
    assert lines[-1]["reason"] == "typed name did not match"
    assert lines[-1]["target"] == delete["batch_export_id"]
    control.close()


@pytest.mark.parametrize("mode", MODES)
async def test_refused_and_failed_are_recorded_with_the_reason(make_sandbox: Any, mode: str, tmp_path: Path) -> None:
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)
    pause = guarded_arguments(control)["batch-export-pause"]
    completed = next(r for r in control.state()["runs"] if r["status"] == "Completed")
    cancel = {"project_id": 1, "batch_export_id": completed["batch_export"], "run_id": completed["id"]}
    async with running_app(settings) as app, connect(app, mode) as client:
        preview = await client.call_tool("batch-export-pause", pause)
        token = preview.structured_content["confirmation_token"]
        await client.call_tool("batch-export-pause", {**pause, "confirmation_token": token})
        reused = await client.call_tool("batch-export-pause", {**pause, "confirmation_token": token})
        assert reused.is_error
        # Known to fail from live state: refused before any token is offered.
        hopeless = await client.call_tool("batch-export-run-cancel", cancel)
        assert hopeless.is_error and "The run is Completed" in text(hopeless)
        # Fails upstream after confirmation: recorded as failed with PostHog's status.
        preview = await client.call_tool("batch-export-pause", pause)
        token = preview.structured_content["confirmation_token"]
        control.fault(status=400, method="POST", path_contains="/pause", count=1)
        failed = await client.call_tool("batch-export-pause", {**pause, "confirmation_token": token})
        assert failed.is_error and "HTTP 400" in text(failed)
    lines = audit_lines(settings.audit_log)
    refused = [line for line in lines if line["decision"] == "refused"]
    assert refused[0]["tool"] == "batch-export-pause" and refused[0]["channel"] == "token"
    assert "already used" in refused[0]["reason"]
    assert refused[1]["tool"] == "batch-export-run-cancel" and "The run is Completed" in refused[1]["reason"]
    assert refused[1]["target"] == completed["id"]
    assert decisions(lines)[-1] == ("batch-export-pause", "token", "failed", 400)
    control.close()


@pytest.mark.parametrize("mode", MODES)
async def test_no_secret_reaches_the_audit_trail(make_sandbox: Any, mode: str, tmp_path: Path) -> None:
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    arguments = guarded_arguments(control)
    http_export = control.export_id("Project 2 events to HTTP", project=2)
    update = {
        "project_id": 2,
        "batch_export_id": http_export,
        "destination": {"type": "HTTP", "config": {"token": f"{SECRET_CANARY}-rotated"}},
    }
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)
    async with running_app(settings) as app, connect(app, mode) as client:
        created = await confirm_with_token(client, "batch-export-create", arguments["batch-export-create"])
        await confirm_with_token(client, "batch-export-update", update)
    raw = settings.audit_log.read_text()
    assert SECRET_CANARY not in raw and DEFAULT_API_KEY not in raw
    lines = audit_lines(settings.audit_log)
    create_executed = next(
        line for line in lines if line["tool"] == "batch-export-create" and line["decision"] == "executed"
    )
    assert create_executed["target"] == created["id"]  # the new export, once it exists
    assert create_executed["arguments"]["destination"]["config"] == {"url": "https://us.i.posthog.com/batch/"}
    assert create_executed["upstream_status"] == 201
    control.close()


@pytest.mark.parametrize("broken", ["under_a_file", "a_directory"])
@pytest.mark.parametrize("mode", MODES)
async def test_an_unwritable_audit_path_never_breaks_a_call(
    make_sandbox: Any, mode: str, broken: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    pause = guarded_arguments(control)["batch-export-pause"]
    blocker = tmp_path / "blocker"
    if broken == "under_a_file":
        blocker.write_text("a file, not a directory")
        path = blocker / "audit.jsonl"
    else:
        blocker.mkdir()
        path = blocker
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, audit_log=path)
    with caplog.at_level(logging.WARNING, logger="server.guard.audit"):
        async with running_app(settings) as app, connect(app, mode) as client:
            result = await confirm_with_token(client, "batch-export-pause", pause)
            app.audit.flush()
    assert result == {"paused": True}
    warnings = [r.getMessage() for r in caplog.records if r.name == "server.guard.audit"]
    assert len(warnings) == 1 and "cannot write audit log" in warnings[0]
    control.close()


def test_default_path_is_in_the_state_directory(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    assert default_audit_path() == tmp_path / "posthog-batch-exports-mcp" / "audit.jsonl"
    monkeypatch.delenv("XDG_STATE_HOME")
    assert default_audit_path() == Path.home() / ".local" / "state" / "posthog-batch-exports-mcp" / "audit.jsonl"


def test_recording_never_waits_for_a_writer_that_cannot_keep_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stuck = threading.Event()

    class StuckDisk(AuditLog):
        def _drain(self) -> None:
            stuck.wait(10)
            super()._drain()

    audit = StuckDisk(tmp_path / "audit.jsonl")
    audit._queue.maxsize = 3
    with caplog.at_level(logging.WARNING, logger="server.guard.audit"):
        for n in range(10):
            audit.record(decision="previewed", n=n)
    assert [r.getMessage() for r in caplog.records] == ["audit queue full; dropping lines"]
    stuck.set()
    audit.close()
    written = [json.loads(line)["n"] for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    # Had `record` waited for room, the writer (stuck until after the loop) would have taken all ten.
    assert written == [0, 1, 2]
