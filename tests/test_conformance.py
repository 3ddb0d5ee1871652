"""The official MCP conformance suite against `serve --sandbox --transport http`, in both protocol eras.

The suites are pinned in `.ci/npm-tools` and run through npx on the Node 22 pinned there. Every
check the suite reports as FAILURE must be listed, with its reason, in
`tests/conformance/expected-failures.toml`; a listed check that passes (or no longer runs) fails
the test too, so the list stays true.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.npm_tools import NPM_TOOLS_FILE, ROOT, require

EXPECTED_FILE = ROOT / "tests" / "conformance" / "expected-failures.toml"
ERAS = {"2025-11-25": "0.1.16", "2026-07-28": "0.2.0-alpha.12"}
ERA_ARGUMENTS = {"2025-11-25": [], "2026-07-28": ["--requirements", "2026-07-28"]}
SUITE_TIMEOUT_SECONDS = 300
STARTUP_TIMEOUT_SECONDS = 30
_SCENARIO_DIR = re.compile(r"^server-(?P<scenario>.+)-\d{4}-\d{2}-\d{2}T[\d-]+Z$")


def pinned_suites() -> tuple[str, list[str]]:
    text = NPM_TOOLS_FILE.read_text()
    node = re.search(r'^CONFORMANCE_NODE="(node@[\d.]+)"', text, re.M)
    assert node, f"CONFORMANCE_NODE is not pinned in {NPM_TOOLS_FILE}"
    suites = re.findall(r'"(@modelcontextprotocol/conformance@[^"\s]+)"', text)
    return node.group(1), suites


def expected_failures() -> dict[str, dict[str, str]]:
    """era -> {"scenario/check": reason}."""
    listed: dict[str, dict[str, str]] = {era: {} for era in ERAS}
    for group in tomllib.loads(EXPECTED_FILE.read_text())["expected"]:
        assert group["reason"].strip(), f"an entry of {EXPECTED_FILE.name} has no reason"
        for era in group["suites"]:
            assert era in ERAS, f"{EXPECTED_FILE.name}: unknown suite {era!r} (known: {', '.join(ERAS)})"
            for check in group["checks"]:
                assert check not in listed[era], f"{EXPECTED_FILE.name}: {check} listed twice for {era}"
                listed[era][check] = group["reason"]
    return listed


def test_expected_failures_are_well_formed() -> None:
    node, suites = pinned_suites()
    assert node.startswith("node@22.")
    assert sorted(s.rpartition("@")[2] for s in suites) == sorted(ERAS.values())
    listed = expected_failures()
    assert all(all("/" in check for check in checks) for checks in listed.values())


@pytest.fixture(scope="module")
def http_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The real command line: `serve --sandbox --transport http` on a free loopback port."""
    folder = tmp_path_factory.mktemp("conformance-server")
    env = {**os.environ, "POSTHOG_MCP_AUDIT_LOG": str(folder / "audit.jsonl"), "POSTHOG_MCP_LOG_LEVEL": "WARNING"}
    env.pop("POSTHOG_PERSONAL_API_KEY", None)
    command = [sys.executable, "-m", "server", "serve", "--sandbox", "--transport", "http", "--port", "0"]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    found = threading.Event()
    url: list[str] = []

    def drain() -> None:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line)
            match = re.search(r"Serving MCP at (http://\S+/mcp)", line)
            if match and not url:
                url.append(match.group(1))
                found.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        if not found.wait(STARTUP_TIMEOUT_SECONDS):
            pytest.fail(f"serve --transport http did not start within {STARTUP_TIMEOUT_SECONDS}s:\n{''.join(lines)}")
        yield url[0]
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
        reader.join(timeout=5)


def run_suite(era: str, url: str, output: Path) -> subprocess.CompletedProcess[str]:
    npx = require("npx")
    node, suites = pinned_suites()
    suite = next(s for s in suites if s.endswith("@" + ERAS[era]))
    command = [npx, "-y", "-p", node, "-p", suite, "conformance", "server", "--url", url, "-o", str(output)]
    return subprocess.run(
        [*command, *ERA_ARGUMENTS[era]],
        capture_output=True,
        text=True,
        timeout=SUITE_TIMEOUT_SECONDS,
        cwd=output,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def outcomes(output: Path) -> dict[str, str]:
    """ "scenario/check" -> status, from every scenario's checks.json."""
    found: dict[str, str] = {}
    for folder in sorted(output.iterdir()):
        match = _SCENARIO_DIR.match(folder.name)
        if not match or not (folder / "checks.json").is_file():
            continue
        for check in json.loads((folder / "checks.json").read_text()):
            found[f"{match['scenario']}/{check['id']}"] = check["status"]
    return found


def compare(results: dict[str, str], listed: dict[str, str]) -> list[str]:
    """What is wrong with a run against the list: new failures, listed checks that pass or did not run."""
    failures = {check for check, status in results.items() if status == "FAILURE"}
    new = sorted(failures - set(listed))
    fixed = sorted(check for check in listed if check in results and check not in failures)
    gone = sorted(check for check in listed if check not in results)
    problems = []
    if new:
        problems.append("new failures (fix them, or list them with a reason):\n  " + "\n  ".join(new))
    if fixed:
        problems.append(
            "listed as expected failures but passing now (remove them from the list):\n  " + "\n  ".join(fixed)
        )
    if gone:
        problems.append("listed as expected failures but not run by the suite:\n  " + "\n  ".join(gone))
    return problems


def test_compare_catches_new_fixed_and_missing_checks() -> None:
    listed = {"a/x": "fixture", "b/y": "fixture", "c/z": "fixture"}
    assert compare({"a/x": "FAILURE", "b/y": "FAILURE", "c/z": "FAILURE", "d/w": "WARNING"}, listed) == []
    problems = compare({"a/x": "SUCCESS", "b/y": "FAILURE", "e/v": "FAILURE"}, listed)
    assert len(problems) == 3
    assert "e/v" in problems[0] and "a/x" in problems[1] and "c/z" in problems[2]


@pytest.mark.parametrize("era", list(ERAS))
def test_conformance_suite(http_server: str, era: str, tmp_path: Path) -> None:
    completed = run_suite(era, http_server, tmp_path)
    results = outcomes(tmp_path)
    summary = completed.stdout[completed.stdout.find("=== SUMMARY") :][-3000:]
    assert results, f"the {era} suite produced no results (exit {completed.returncode}):\n{completed.stderr[-3000:]}"
    problems = compare(results, expected_failures()[era])
    assert not problems, f"conformance {era} ({EXPECTED_FILE.name}):\n" + "\n".join(problems) + f"\n{summary}"
    passed = sum(1 for status in results.values() if status == "SUCCESS")
    # The checks that work without the suite's fixtures: the handshake, ping, listings, errors, DNS rebinding.
    for check in ("tools-list/tools-list", "prompts-list/prompts-list", "resources-list/resources-list"):
        assert results.get(check) == "SUCCESS", (check, results.get(check))
    assert passed >= (5 if era == "2025-11-25" else 40), summary
