"""The command line: `serve` (default), `sandbox`, `demo`, `tools`.

Logs go to stderr; stdout belongs to the stdio protocol (and to `tools`/`demo` output).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from typing import Any

import anyio

from server import __version__
from server.caller import CallerField
from server.config import ConfigError, Settings
from server.http.callers import token_values

PROG = "posthog-batch-exports-mcp"
COMMANDS = ("serve", "sandbox", "demo", "tools")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
log = logging.getLogger("posthog_batch_exports_mcp")


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in value.split(",") if v.strip())


def _version(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")


def _serve_arguments(parser: argparse.ArgumentParser) -> None:
    _version(parser)
    parser.add_argument(
        "--transport", choices=("stdio", "http"), default="stdio", help="MCP transport (default stdio)."
    )
    parser.add_argument(
        "--host",
        default="127.0.0.1",
        help="Address to bind with --transport http (default 127.0.0.1; any other address needs POSTHOG_MCP_AUTH_TOKEN).",
    )
    parser.add_argument("--port", type=int, default=8000, help="Port for --transport http (default 8000).")
    parser.add_argument(
        "--allowed-hosts",
        type=_csv,
        help="With --transport http: Host header values to answer, comma-separated (POSTHOG_MCP_ALLOWED_HOSTS). "
        "Default: the names of the bind address (loopback names for 127.0.0.1). Add the DNS name clients or a "
        "proxy use; '*' turns the check off.",
    )
    parser.add_argument(
        "--allowed-origins",
        type=_csv,
        help="With --transport http: browser Origins to accept, e.g. https://app.example.com or http://localhost:* "
        "(POSTHOG_MCP_ALLOWED_ORIGINS). Default: http(s) pages of the allowed hosts; requests without Origin pass.",
    )
    parser.add_argument(
        "--stateful",
        action="store_true",
        default=None,
        help="With --transport http: keep a session per client (POSTHOG_MCP_HTTP_STATEFUL), so handshake-era clients "
        "get elicitation; needs sticky sessions behind a load balancer.",
    )
    parser.add_argument(
        "--single-replica",
        action="store_true",
        default=None,
        help="With --transport http: this is the only replica (POSTHOG_MCP_SINGLE_REPLICA), so "
        "POSTHOG_MCP_CONFIRM_SECRET may be set without POSTHOG_MCP_REDIS_URL.",
    )
    parser.add_argument("--read-only", action="store_true", default=None, help="List and allow read tools only.")
    parser.add_argument("--sandbox", action="store_true", help="Start the local PostHog sandbox in-process and use it.")
    parser.add_argument(
        "--sandbox-db",
        metavar="PATH",
        help="With --sandbox: keep its state in this SQLite file, so one-shot clients (the Inspector CLI) see the "
        "same exports, ids and clock on every call.",
    )
    parser.add_argument(
        "--sandbox-exports",
        type=int,
        metavar="N",
        help="With --sandbox: seed project 1 with N exports and 30 days of history (the same for the same N).",
    )
    parser.add_argument(
        "--sandbox-logs-for-keys",
        choices=("allowed", "refused"),
        help="With --sandbox: 'refused' makes the logs route answer 403 to personal API keys, as newer PostHog may.",
    )
    parser.add_argument(
        "--toolsets",
        type=_csv,
        help="Toolsets to list, comma-separated: exports, runs, backfills, answers, logs, tests, or default (the first "
        "four) or all (POSTHOG_MCP_TOOLSETS).",
    )
    parser.add_argument(
        "--tools",
        type=_csv,
        help="Allow-list of tool names, comma-separated; overrides --toolsets (POSTHOG_MCP_TOOLS).",
    )
    parser.add_argument(
        "--exclude-tools", type=_csv, help="Tools to hide, comma-separated (POSTHOG_MCP_EXCLUDE_TOOLS)."
    )
    parser.add_argument("--include-deprecated", action="store_true", default=None, help="Also list deprecated tools.")
    parser.add_argument(
        "--api-key", help="PostHog personal API key (prefer POSTHOG_PERSONAL_API_KEY: flags show in ps)."
    )
    parser.add_argument("--posthog-host", help="PostHog base URL (POSTHOG_HOST; default https://us.posthog.com).")
    parser.add_argument("--project-id", type=int, help="Pin every call to this project (POSTHOG_PROJECT_ID).")
    parser.add_argument(
        "--api-route", choices=("projects", "environments"), help="PostHog route family (POSTHOG_API_ROUTE)."
    )
    parser.add_argument("--confirm", choices=("always", "destructive", "never"), help="Which writes need confirmation.")
    parser.add_argument("--audit-log", help="Audit trail file (POSTHOG_MCP_AUDIT_LOG).")
    parser.add_argument(
        "--redis-url",
        help="Redis for state shared by replicas, e.g. redis://127.0.0.1:6379/0 (POSTHOG_MCP_REDIS_URL).",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="MCP server for PostHog batch exports. Without a command it serves MCP (see 'serve --help').",
        epilog=f"Logs go to stderr; set POSTHOG_MCP_LOG_LEVEL to one of {', '.join(LOG_LEVELS)} (default WARNING).",
    )
    _version(parser)
    sub = parser.add_subparsers(dest="command", metavar="{serve,sandbox,demo,tools}")
    _serve_arguments(sub.add_parser("serve", help="Serve MCP over stdio (default) or streamable HTTP."))
    sub.add_parser(
        "sandbox", help="Run the local PostHog batch-exports sandbox (see 'sandbox --help').", add_help=False
    )
    demo = sub.add_parser("demo", help="Run a scripted assistant session against the embedded sandbox.")
    _version(demo)
    demo.add_argument("--generation", type=int, choices=(1, 3), default=3, help="Sandbox API generation (default 3).")
    tools = sub.add_parser("tools", help="Print the tool catalog: name, scope, annotations, guarded.")
    _version(tools)
    form = tools.add_mutually_exclusive_group()
    form.add_argument("--json", action="store_true", help="Machine-readable output.")
    form.add_argument("--markdown", action="store_true", help="The Markdown table the README embeds.")
    form.add_argument(
        "--guard-markdown", action="store_true", help="The Markdown table of guarded tools docs/guard.md embeds."
    )
    return parser


def settings_from(args: argparse.Namespace, env: dict[str, str] | None = None) -> Settings:
    from pathlib import Path

    overrides: dict[str, Any] = {
        "api_key": args.api_key,
        "host": args.posthog_host,
        "project_id": args.project_id,
        "api_route": args.api_route,
        "tools": args.tools,
        "toolsets": args.toolsets,
        "exclude_tools": args.exclude_tools,
        "include_deprecated": args.include_deprecated,
        "read_only": args.read_only,
        "confirm": args.confirm,
        "audit_log": Path(args.audit_log) if args.audit_log else None,
        "sandbox": args.sandbox or None,
        "redis_url": args.redis_url,
        "allowed_hosts": args.allowed_hosts,
        "allowed_origins": args.allowed_origins,
        "http_stateful": args.stateful,
        "single_replica": args.single_replica,
    }
    return Settings.from_env(env, **overrides)


class RedactSecrets(logging.Filter):
    """Last line of defence: no log line shows the API key or the bearer token, whoever logs it."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def hide(self, *values: str | None) -> None:
        self.secrets.update(v for v in values if v and len(v) >= 8)

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            from tools import secrets  # here, not at start-up: the catalog's models load with it

            message = record.getMessage()
            redacted = secrets.redact(message, self.secrets)
            if redacted != message:
                record.msg, record.args = redacted, None
        return True


_redactor = RedactSecrets()


def _setup_logging() -> None:
    from server.log_bodies import StreamedBodies

    wanted = os.environ.get("POSTHOG_MCP_LOG_LEVEL", "WARNING").strip().upper() or "WARNING"
    level = wanted if wanted in LOG_LEVELS else "WARNING"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(caller)s]: %(message)s"))
    handler.addFilter(CallerField())
    handler.addFilter(_redactor)
    handler.addFilter(StreamedBodies())  # bodies libraries log at DEBUG: shortened, tokens masked
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    if level != wanted:
        log.warning("POSTHOG_MCP_LOG_LEVEL=%r is not one of %s; using WARNING.", wanted, ", ".join(LOG_LEVELS))


def _config_error(error: BaseException) -> ConfigError | None:
    """A ConfigError, even when it surfaces from inside a task group."""
    if isinstance(error, ConfigError):
        return error
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            found = _config_error(inner)
            if found is not None:
                return found
    return None


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sandbox"]:
        from posthog_sandbox.cli import main as sandbox_main

        return sandbox_main(argv[1:])
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv = ["serve", *argv]
    args = build_parser().parse_args(argv)
    _setup_logging()
    try:
        if args.command == "tools":
            return print_tools(as_json=args.json, as_markdown=args.markdown, as_guard_markdown=args.guard_markdown)
        if args.command == "demo":
            from server.cli.demo import run_demo

            return run_demo(generation=args.generation)
        return serve(args)
    except KeyboardInterrupt:
        return 130
    except BaseException as error:
        config = _config_error(error)
        if config is None:
            raise
        print(f"{PROG}: {config}", file=sys.stderr)
        return 2


def serve(args: argparse.Namespace) -> int:
    settings = settings_from(args)
    _redactor.hide(settings.api_key, settings.auth_token, *token_values(settings.auth_tokens_file))
    if args.transport == "http":
        from server.http.rebinding import allowed_peers
        from server.http.transport import check_bind, check_replicas

        check_bind(args.host, settings.client_auth)
        check_replicas(settings)
        allowed_peers(args.host, settings.allowed_hosts, settings.allowed_origins)  # a bad entry fails here, clearly
    if not settings.sandbox:
        settings.require_key()  # fail before anything starts, with the message that says how to fix it
    if settings.tools or settings.exclude_tools or settings.toolsets:
        from server.visibility import check_names
        from tools.catalog import CATALOG

        check_names(settings, CATALOG)  # a misspelt name fails here too, not after the client connected
    if args.transport == "http":
        from server.http.transport import serve_http

        settings, close = start_sandbox(args, settings) if settings.sandbox else (settings, None)
        try:
            anyio.run(serve_http, settings, args.host, args.port)
        finally:
            if close is not None:
                close()
        return 0
    from server.stdio import serve_stdio

    # Over stdio the client's first answer does not wait for the sandbox: it starts behind it.
    anyio.run(serve_stdio, settings, partial(start_sandbox, args, settings) if settings.sandbox else None)
    return 0


def start_sandbox(args: argparse.Namespace, settings: Settings) -> tuple[Settings, Callable[[], None]]:
    """The local sandbox, started in-process: the settings that point at it, and what stops it."""
    from posthog_sandbox import DEFAULT_API_KEY, SandboxConfig
    from posthog_sandbox import start_sandbox as start

    # Simulated minutes pass in real seconds, so a retried run visibly completes.
    sandbox = start(
        SandboxConfig(
            speed=60.0,
            db_path=args.sandbox_db,
            exports=args.sandbox_exports,
            logs_for_keys=args.sandbox_logs_for_keys or "allowed",
        )
    )
    log.warning("Using the local sandbox at %s (project 1 and 2).", sandbox.base_url)
    return settings.with_(host=sandbox.base_url, api_key=DEFAULT_API_KEY), sandbox.close


def catalog_rows() -> list[dict[str, Any]]:
    from server.visibility import listed_by_default
    from tools.catalog import CATALOG, TOOLSET_OF

    return [
        {
            "name": spec.name,
            "title": spec.title,
            "scope": spec.scope,
            "method": spec.method,
            "path": spec.path,
            "readOnlyHint": spec.read_only,
            "destructiveHint": spec.destructive,
            "idempotentHint": spec.idempotent,
            "openWorldHint": spec.open_world,
            "guarded": spec.is_guarded,
            "deprecated": spec.deprecated,
            "toolset": TOOLSET_OF[spec.name],
            "listed_by_default": listed_by_default(spec),
        }
        for spec in CATALOG
    ]


def markdown_table(rows: Iterable[dict[str, Any]]) -> str:
    """The README's tools table; `tests/test_readme.py` keeps the README equal to it."""

    def mark(value: bool) -> str:
        return "✓" if value else "·"

    lines = [
        "| Tool | What it does | Toolset | Scope | RO | D | I | OW | Guarded |",
        "|---|---|---|---|:-:|:-:|:-:|:-:|:-:|",
    ]
    for r in rows:
        title = r["title"] + (" (deprecated, not listed by default)" if r["deprecated"] else "")
        toolset = r["toolset"] if r["listed_by_default"] or r["deprecated"] else f"{r['toolset']} (not by default)"
        flags = " | ".join(mark(r[k]) for k in ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"))
        guarded = "yes" if r["guarded"] else "no"
        lines.append(f"| `{r['name']}` | {title} | {toolset} | `{r['scope']}` | {flags} | {guarded} |")
    return "\n".join(lines) + "\n"


def guard_table(rows: Iterable[dict[str, Any]]) -> str:
    """docs/guard.md's table of guarded tools and the policies that guard them; `tests/test_readme.py` checks it."""

    def word(value: bool) -> str:
        return "yes" if value else "no"

    lines = [
        "| Tool | destructiveHint | Guarded under `always` | under `destructive` |",
        "|---|---|---|---|",
    ]
    for r in rows:
        if r["guarded"]:
            destructive = r["destructiveHint"]
            lines.append(f"| `{r['name']}` | {word(destructive)} | yes | {word(destructive)} |")
    return "\n".join(lines) + "\n"


def print_tools(*, as_json: bool = False, as_markdown: bool = False, as_guard_markdown: bool = False) -> int:
    rows = catalog_rows()
    if as_json:
        print(json.dumps(rows, indent=2))
        return 0
    if as_markdown:
        sys.stdout.write(markdown_table(rows))
        return 0
    if as_guard_markdown:
        sys.stdout.write(guard_table(rows))
        return 0
    print(f"{'tool':32} {'toolset':10} {'scope':20} RO    D     I     OW    guarded")
    for r in rows:
        flags = " ".join(
            f"{str(r[k]).lower():5}" for k in ("readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint")
        )
        note = " (deprecated)" if r["deprecated"] else "" if r["listed_by_default"] else " (not listed by default)"
        print(f"{r['name']:32} {r['toolset']:10} {r['scope']:20} {flags} {'yes' if r['guarded'] else 'no'}{note}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
