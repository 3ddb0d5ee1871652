"""What installers read about the server, generated from the catalog and the package metadata: the MCP
Bundle manifest (`manifest.json`) and the MCP Registry entry (`server.json`).

Generated, not hand-kept, so neither the bundle's tool list nor either file's version or settings can
drift from the server; `tests/test_manifest.py` and `tests/test_registry_entry.py` fail when a checked-in
file differs. Regenerate both with `uv run python -m server.cli.bundle --write`.

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

ROOT = Path(__file__).resolve().parents[2]
MANIFEST_PATH = ROOT / "manifest.json"
SERVER_JSON_PATH = ROOT / "server.json"
NAME = "posthog-batch-exports-mcp"
DESCRIPTION = "Inspect and operate PostHog batch exports: runs, logs, retries, backfills, pause and more."
# The MCP Registry names a server by the namespace its publisher proves: io.github.<owner> for a GitHub
# account. The owner here is a placeholder organisation until the project is published; README.md carries
# the same name in its `mcp-name:` line, which PyPI shows and the registry checks.
REPOSITORY_OWNER = "posthog-batch-exports-mcp"
REPOSITORY_URL = f"https://github.com/{REPOSITORY_OWNER}/{NAME}"
REGISTRY_NAME = f"io.github.{REPOSITORY_OWNER}/{NAME}"
REGISTRY_SCHEMA = "https://static.modelcontextprotocol.io/schemas/2025-12-11/server.schema.json"

# The host substitutes `${user_config.<key>}` in the server's environment.
USER_CONFIG: dict[str, dict[str, Any]] = {
    "api_key": {
        "type": "string",
        "title": "PostHog personal API key",
        "description": (
            "Create one in PostHog under Settings > Personal API keys with the scopes batch_export:read and "
            "query:read (batch-export-errors then reads a project's logs in one request); add batch_export:write "
            "to pause, retry, backfill, change or delete. A read-only key is the safest choice."
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
        "description": DESCRIPTION,
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


def registry_environment() -> list[dict[str, Any]]:
    """The bundle's settings as the registry's environment variables, so both ask for the same things."""
    variables = []
    for variable, reference in ENV.items():
        option = USER_CONFIG[reference.removeprefix("${user_config.").removesuffix("}")]
        entry: dict[str, Any] = {
            "name": variable,
            "description": f"{option['title']}: {option['description']}",
            "isRequired": option["required"],
            "isSecret": option.get("sensitive", False),
            "format": "boolean" if option["type"] == "boolean" else "string",
        }
        default = option.get("default")
        if default not in (None, ""):
            entry["default"] = str(default).lower() if isinstance(default, bool) else str(default)
        variables.append(entry)
    return variables


def build_server_json() -> dict[str, Any]:
    """The MCP Registry entry: the PyPI package, run with uvx over stdio (its default command is `serve`)."""
    return {
        "$schema": REGISTRY_SCHEMA,
        "name": REGISTRY_NAME,
        "title": "PostHog Batch Exports",
        "description": DESCRIPTION,
        "version": __version__,
        "repository": {"url": REPOSITORY_URL, "source": "github"},
        "packages": [
            {
                "registryType": "pypi",
                "identifier": NAME,
                "version": __version__,
                "runtimeHint": "uvx",
                "transport": {"type": "stdio"},
                "environmentVariables": registry_environment(),
            }
        ],
    }


def render() -> str:
    return json.dumps(build_manifest(), indent=2, ensure_ascii=False) + "\n"


def render_server_json() -> str:
    return json.dumps(build_server_json(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m server.cli.bundle", description="Print or write manifest.json and server.json."
    )
    action = parser.add_mutually_exclusive_group()
    action.add_argument(
        "--write", action="store_true", help=f"Write {MANIFEST_PATH.name} and {SERVER_JSON_PATH.name} at the root."
    )
    action.add_argument("--check", action="store_true", help="Exit 1 if either checked-in file is stale.")
    args = parser.parse_args(argv)
    files = {MANIFEST_PATH: render(), SERVER_JSON_PATH: render_server_json()}
    if args.write:
        for path, text in files.items():
            path.write_text(text)
        return 0
    if args.check:
        stale = [path.name for path, text in files.items() if not path.exists() or path.read_text() != text]
        if stale:
            print(f"{', '.join(stale)} stale: run 'uv run python -m server.cli.bundle --write'.", file=sys.stderr)
            return 1
        return 0
    sys.stdout.write(files[MANIFEST_PATH])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
