"""The Vercel AI SDK's MCP client (`@ai-sdk/mcp`, pinned in .ci/npm-tools) connects over stdio on its
defaults: it sends `server/discover` and, when no answer comes within 1 s, `initialize` on the same pipe.
Either way it must connect: 10 attempts, 10 connections, each listing the tools and calling one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from tests.npm_tools import ROOT, library_dir
from tests.support import BATCH_EXPORT_SCOPES, listed_by_a_default_server

ATTEMPTS = 10
SCRIPT = ROOT / "tests" / "ai_sdk" / "connect.mjs"


def test_ai_sdk_connects_every_time_on_its_defaults(tmp_path: Path) -> None:
    import os
    import subprocess

    libraries = library_dir("AI_SDK_LIBRARIES")
    node = libraries / "node_modules" / ".bin" / "node"
    done = subprocess.run(
        [
            str(node),
            str(SCRIPT),
            str(libraries),
            str(ATTEMPTS),
            str(ROOT),
            sys.executable,
            "-m",
            "server",
            "serve",
            "--sandbox",
        ],
        capture_output=True,
        text=True,
        timeout=ATTEMPTS * 60 + 60,
        env={**os.environ, "TEST_HOME": str(tmp_path)},
        check=False,
    )
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    print("\n".join(done.stdout.splitlines()))  # the eras and times, for the record (pytest -s)
    assert len(results) == ATTEMPTS, done.stdout + done.stderr
    failed = [r for r in results if not r["ok"]]
    assert not failed, failed
    assert {r["tools"] for r in results} == {listed_by_a_default_server(BATCH_EXPORT_SCOPES)}
    assert {r["count"] for r in results} == {4}  # the sandbox's four exports in project 1
    assert {r["protocol"] for r in results} <= {"2026-07-28", "2025-11-25"}
