"""The Quickstart's first command: the scripted demo must pass, say what happened, and fail loudly when a step fails."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from posthog_sandbox import DEFAULT_API_KEY
from server.cli.demo import run_demo, run_demo_on
from tests.support import SandboxControl

CONSOLE_SCRIPT = Path(sys.executable).parent / "posthog-batch-exports-mcp"
STEPS_IN_ORDER = (
    "batch-export-list",
    '"Daily events to Snowflake" is failing',
    "batch-export-errors",
    "Incorrect username or password",
    "batch-export-runs-list",
    "confirmation_required: Nothing changed yet.",
    "The user agrees",
    '"confirmation_token": "',
    "<- executed: Done: Retry the Failed run",
    "the sandbox clock moves 60 s",
    "is Completed.",
    "previewed -> confirmed -> executed",
    "Demo passed: all 7 steps did what they should.",
)


def assert_in_order(transcript: str, needles: tuple[str, ...]) -> None:
    """Each needle after the previous one. The transcript is wrapped at 100 columns, so a needle with a
    space in it may span a line break: the search runs on the text with every run of whitespace as one space."""
    flowing = " ".join(transcript.split())
    position = 0
    for needle in needles:
        found = flowing.find(needle, position)
        assert found >= 0, f"{needle!r} missing (or out of order) after offset {position}:\n{transcript}"
        position = found + len(needle)


@pytest.mark.parametrize("generation", [3, 1])
def test_demo_runs_the_whole_session_and_passes(generation: int) -> None:
    lines: list[str] = []
    assert run_demo(generation=generation, write=lines.append) == 0, "\n".join(lines)
    transcript = "\n".join(lines)
    assert_in_order(transcript, STEPS_IN_ORDER)
    assert "DEMO FAILED" not in transcript
    # The token is shown shortened, never in full: a transcript is for people, not for replay.
    assert "(signed, single use)" in transcript


def test_demo_fails_with_the_step_that_broke(make_sandbox: Callable[..., Any]) -> None:
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    try:
        # PostHog refuses every retry: the demo must stop at the retry step and say so, with nothing retried.
        control.fault(status=403, method="POST", path_contains="/retry", count=10)
        backfills_before = len(control.state()["backfills"])
        lines: list[str] = []
        assert run_demo_on(sandbox.base_url, DEFAULT_API_KEY, write=lines.append) == 1
        transcript = "\n".join(lines)
        assert "DEMO FAILED at step 5: batch-export-run-retry failed: PostHog HTTP 403" in transcript, transcript
        assert "Demo passed" not in transcript
        assert len(control.state()["backfills"]) == backfills_before
        retries = [r for r in control.requests() if r["method"] == "POST" and r["path"].endswith("/retry/")]
        assert [r["status"] for r in retries] == [403]
    finally:
        control.close()


def test_demo_through_the_console_script() -> None:
    assert CONSOLE_SCRIPT.exists(), f"console script not installed at {CONSOLE_SCRIPT}; run 'uv sync'"
    env = {k: v for k, v in os.environ.items() if not k.startswith("POSTHOG_")}
    done = subprocess.run(
        [str(CONSOLE_SCRIPT), "demo"], capture_output=True, text=True, timeout=120, env=env, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert_in_order(done.stdout, STEPS_IN_ORDER)
    assert "Traceback" not in done.stderr
