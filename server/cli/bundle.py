"""The MCP Bundle manifest (`manifest.json`), generated from the catalog and the package metadata.

Generated, not hand-kept, so the bundle's tool list and version cannot drift from the server;
`tests/test_manifest.py` fails when the checked-in file differs. Regenerate with
`uv run python -m server.cli.bundle --write`.

Why manifest_version 0.4 with `server.type = "uv"`: a `python` bundle must vendor its
dependencies, and pydantic-core is compiled per platform, so one vendored bundle cannot run
on macOS, Windows and Linux alike. With `uv` the host builds the environment from
`pyproject.toml` and `uv.lock` (shipped in the bundle) on the user's machine.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from server import __version__

MANIFEST_PATH = Path(__file__).resolve().parents[2] / "manifest.json"
NAME = "posthog-batch-exports-mcp"

# The host substitutes `${user_config.<key>}` in the server's environment.
USER_CONFIG: dict[str, dict[str, Any]] = {
    "api_key": {
        "type": "string",
        "title": "PostHog personal API key",
        "description": (
            "Create one in PostHog under Settings > Personal API keys with the batch_export:read scope "
            "(add batch_export:write to pause, retry, backfill, change or delete). A read-only key is the safest choice."
        ),
        "sensitive": True,
        "required": True,
    },
    "host": {
        "type": "string",
        "title": "PostHog host",
        "description": "https://us.posthog.com (US Cloud), https://eu.posthog.com (EU Cloud), or your self-hosted URL.",
        "default": "https://us.posthog.com",
        "required": False,
    },
    "project_id": {
        "type": "string",
        "title": "Project id (optional)",
        "description": "Pin every call to this project (the number in your project's URL). Empty: each call names its project.",
        "default": "",
        "required": False,
    },
    "api_route": {
        "type": "string",
        "title": "API route family",
        "description": "projects (default) or environments, for PostHog instances that serve /api/environments/.",
        "default": "projects",
        "required": False,
    },
    "read_only": {
        "type": "boolean",
        "title": "Read-only mode",
        "description": "List and allow read tools only; no write tool is offered or run.",
        "default": False,
        "required": False,
    },
    "toolsets": {
        "type": "string",
        "title": "Toolsets",
        "description": (
            "Which tools to offer, comma-separated: default (exports, runs, backfills, answers), or add logs and "
            "tests (their jobs are done by batch-export-errors and batch-export-destination-check), or all."
        ),
        "default": "default",
        "required": False,
    },
    "confirm": {
        "type": "string",
        "title": "Confirmation policy",
        "description": "Which writes need the user's confirmation: always (default), destructive, or never.",
        "default": "always",
        "required": False,
    },
}

ENV = {
    "POSTHOG_PERSONAL_API_KEY": "${user_config.api_key}",
    "POSTHOG_HOST": "${user_config.host}",
    "POSTHOG_PROJECT_ID": "${user_config.project_id}",
    "POSTHOG_API_ROUTE": "${user_config.api_route}",
    "POSTHOG_MCP_READ_ONLY": "${user_config.read_only}",
    "POSTHOG_MCP_CONFIRM": "${user_config.confirm}",
    "POSTHOG_MCP_TOOLSETS": "${user_config.toolsets}",
}

# `--frozen` installs exactly uv.lock; `--no-dev` leaves the test tools out; uv's own messages go to stderr.
COMMAND_ARGS = ["run", "--directory", "${__dirname}", "--frozen", "--no-dev", "--quiet", NAME, "serve"]


def manifest_tools() -> list[dict[str, str]]:
    """Every tool the server offers when its toolsets are listed (deprecated ones only on request)."""
    from tools.catalog import CATALOG

    return [{"name": spec.name, "description": spec.description} for spec in CATALOG if not spec.deprecated]


def build_manifest() -> dict[str, Any]:
    return {
        "manifest_version": "0.4",
        "name": NAME,
        "display_name": "PostHog Batch Exports",
        "version": __version__,
        "description": "Inspect and operate PostHog batch exports: runs, logs, retries, backfills, pause and more.",
        "long_description": (
            "Every PostHog batch-exports endpoint as a typed, scope-annotated MCP tool. Every write shows a preview "
            "built from live state and needs confirmation (elicitation, or a signed single-use token); an audit trail "
            "records each decision. Read-only mode, or a key with only batch_export:read, guarantees nothing changes."
        ),
        "author": {"name": "posthog-batch-exports-mcp contributors"},
        "license": "MIT",
        "keywords": ["posthog", "batch exports", "data pipelines", "mcp"],
        "server": {
            "type": "uv",
            "entry_point": "server/__main__.py",
            "mcp_config": {"command": "uv", "args": list(COMMAND_ARGS), "env": dict(ENV)},
        },
        "tools": manifest_tools(),
        "tools_generated": False,
        "user_config": USER_CONFIG,
        "compatibility": {"platforms": ["darwin", "win32", "linux"], "runtimes": {"python": ">=3.11"}},
    }


def render() -> str:
    return json.dumps(build_manifest(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.cli.bundle", description="Print or write manifest.json.")
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--write", action="store_true", help=f"Write {MANIFEST_PATH.name} at the repository root.")
    action.add_argument("--check", action="store_true", help="Exit 1 if the checked-in manifest.json is stale.")
    args = parser.parse_args(argv)
    text = render()
    if args.write:
        MANIFEST_PATH.write_text(text)
        return 0
    if args.check:
        current = MANIFEST_PATH.read_text() if MANIFEST_PATH.exists() else ""
        if current != text:
            print("manifest.json is stale: run 'uv run python -m server.cli.bundle --write'.", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
