"""The README cannot drift: its tools table, Quickstart, settings and snippets are checked against the code."""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

from server.cli.commands import build_parser, catalog_rows, guard_table, markdown_table

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
TABLE = re.compile(r"<!-- tools-table:start[^>]*-->\n(.*?)<!-- tools-table:end -->", re.S)
# Pages other engineers produce; the README links them before they land.
PRODUCED_ELSEWHERE = {"benchmarks/", "benchmarks/results.md"}


def section(title: str) -> str:
    found = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.S | re.M)
    assert found, f"README has no '## {title}' section"
    return found.group(1)


def test_tools_table_is_the_generated_one() -> None:
    found = TABLE.search(README)
    assert found, "README lost its tools-table markers"
    assert found.group(1) == markdown_table(catalog_rows()), (
        "README's tools table differs from the catalog: paste the output of "
        "'uv run posthog-batch-exports-mcp tools --markdown' between the markers"
    )


def test_guard_docs_table_is_the_generated_one() -> None:
    guard_doc = (ROOT / "docs" / "guard.md").read_text()
    found = re.search(r"<!-- guard-table:start[^>]*-->\n(.*?)<!-- guard-table:end -->", guard_doc, re.S)
    assert found, "docs/guard.md lost its guard-table markers"
    assert found.group(1) == guard_table(catalog_rows()), (
        "docs/guard.md's table differs from the catalog: paste the output of "
        "'uv run posthog-batch-exports-mcp tools --guard-markdown' between the markers"
    )
    assert "batch-export-delete" in found.group(1) and "batch-export-test-step`" not in found.group(1)


def test_quickstart_is_exactly_two_commands_and_ci_runs_the_second() -> None:
    block = re.search(r"```sh\n(.*?)```", section("Quickstart"), re.S)
    assert block
    commands = [line for line in block.group(1).splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert commands == ["pip install uv && uv run posthog-batch-exports-mcp demo", "uv run pytest"]
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^uv run pytest\s*$", ci, re.M), ".ci/run must run the README's test command"


def test_every_setting_the_server_reads_is_documented() -> None:
    sources = (ROOT / "server" / "config.py").read_text() + (ROOT / "server" / "cli" / "commands.py").read_text()
    read = set(re.findall(r'environ\.get\("(POSTHOG_[A-Z_]+)"|env\.get\("(POSTHOG_[A-Z_]+)"', sources))
    read = {name for pair in read for name in pair if name}
    assert "POSTHOG_PERSONAL_API_KEY" in read and "POSTHOG_MCP_LOG_LEVEL" in read
    documented = set(re.findall(r"^\| `(POSTHOG_[A-Z_]+)`", README, re.M))
    assert read == documented


def test_documented_flags_exist() -> None:
    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    serve_help = commands.choices["serve"].format_help()
    flags = set(re.findall(r"^\| `POSTHOG_[A-Z_]+` \| `(--[a-z-]+)`", README, re.M))
    flags |= {"--transport", "--host", "--port", "--read-only", "--sandbox", "--tools", "--exclude-tools"}
    for flag in flags:
        assert flag in serve_help, f"README documents {flag}, which 'serve' does not accept"


def test_client_snippets_are_valid_json() -> None:
    blocks = re.findall(r"```json\n(.*?)```", section("Client configuration"), re.S)
    assert len(blocks) == 3  # Claude Desktop, Cursor, VS Code (Claude Code is a command)
    for block in blocks:
        config = json.loads(block)
        servers = config.get("mcpServers") or config.get("servers")
        assert servers and "posthog-batch-exports" in servers
        entry = servers["posthog-batch-exports"]
        assert entry["command"] == "uv" and "posthog-batch-exports-mcp" in entry["args"]
        assert "POSTHOG_PERSONAL_API_KEY" in entry["env"]
    for client in ("Claude Desktop", "Claude Code", "Cursor", "VS Code"):
        assert f"**{client}**" in section("Client configuration")


def test_the_honesty_notes_are_there() -> None:
    guard = section("The confirmation guard")
    for phrase in (
        "proves that a preview happened, **not that a\nperson agreed**",
        "Elicitation puts a person in the loop **when the client\nshows it**",
        "**PostHog's key scopes remain the security boundary.**",
        "a key with only `batch_export:read`",
    ):
        assert phrase in guard, phrase


def test_local_links_point_at_files() -> None:
    links = re.findall(r"\]\(((?!https?://|#)[^)\s]+)\)", README)
    assert "docs/guard.md" in links and "docs/sandbox.md" in links and "benchmarks/results.md" in links
    for link in links:
        if link not in PRODUCED_ELSEWHERE:
            assert (ROOT / link).exists(), f"README links to {link}, which does not exist"
