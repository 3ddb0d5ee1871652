"""`posthog-batch-exports-mcp sandbox [...]`: serve the sandbox on loopback until interrupted."""

from __future__ import annotations

import argparse
import sys
import time

from .config import DEFAULT_SCOPES, SandboxConfig, SandboxKey
from .organization import PROJECTS, USER_ORGANIZATION


def parse_key(text: str) -> SandboxKey:
    """`VALUE=SCOPES[@TEAM,TEAM]`: comma-separated scopes (`*` for all, empty for a legacy key)."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--key expects VALUE=SCOPES[@TEAM,TEAM], got {text!r}")
    value, rest = text.split("=", 1)
    scopes_text, _, teams_text = rest.partition("@")
    try:
        teams = [int(t) for t in teams_text.split(",") if t.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--key teams must be project ids, got {teams_text!r}") from None
    if not value:
        raise argparse.ArgumentTypeError("--key needs a value before '='")
    return SandboxKey(value, [s.strip() for s in scopes_text.split(",") if s.strip()], teams)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="posthog-batch-exports-mcp sandbox",
        description="Serve a local PostHog batch-exports sandbox. Without --key it accepts the key "
        "phx_sandbox_default_key (batch_export:read,batch_export:write). See docs/sandbox.md.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8010, help="port (default 8010)")
    parser.add_argument(
        "--generation",
        type=int,
        choices=(3, 1),
        default=3,
        help="3 = the newest PostHog API (default), 1 = the API of PostHog's public docs page",
    )
    parser.add_argument("--db", metavar="PATH", default=None, help="SQLite file (state survives restarts)")
    parser.add_argument(
        "--key",
        metavar="VALUE=SCOPES[@TEAM,TEAM]",
        action="append",
        type=parse_key,
        help="accept this key (repeatable); without --key the default key is accepted",
    )
    parser.add_argument("--speed", type=float, default=1.0, help="simulated seconds per real second (0 = frozen)")
    parser.add_argument("--empty", action="store_true", help="no demo data")
    parser.add_argument("--no-throttle", action="store_true", help="disable the 480/min, 4800/h per-key limits")
    parser.add_argument(
        "--exports",
        type=int,
        metavar="N",
        default=None,
        help="seed project 1 with N exports (30 days of history, the same project for the same N) "
        "instead of the five demo exports",
    )
    parser.add_argument(
        "--hostile",
        action="store_true",
        help="with --exports: write hostile text (invisible and control characters, escape sequences, "
        "injected instructions) into some export names, errors and log lines; GET /_sandbox/hostile lists them",
    )
    parser.add_argument(
        "--logs-for-keys",
        choices=("allowed", "refused"),
        default="allowed",
        help="refused: the logs route answers 403 to every personal API key, as PostHog's newest code may "
        "(the Query API still serves the lines with query:read); default allowed",
    )
    parser.add_argument(
        "--backfill-row-delay",
        type=float,
        metavar="SECONDS",
        default=5.0,
        help="simulated seconds before a new backfill's row is listed and retrievable (default 5)",
    )
    parser.add_argument(
        "--project-timezone",
        default="UTC",
        metavar="TZ",
        help="the projects' timezone: runs filters without a UTC offset are read in it (default UTC)",
    )
    return parser


def _config(args: argparse.Namespace) -> SandboxConfig:
    return SandboxConfig(
        generation=args.generation,
        db_path=args.db,
        keys=args.key,
        seed=not args.empty,
        speed=args.speed,
        throttle=not args.no_throttle,
        exports=args.exports,
        hostile=args.hostile,
        logs_for_keys=args.logs_for_keys,
        backfill_row_delay=args.backfill_row_delay,
        project_timezone=args.project_timezone,
    )


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from .server import start_sandbox

    try:
        config = _config(args)
    except ValueError as exc:  # a combination the sandbox refuses, e.g. --hostile without --exports
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        running = start_sandbox(config, host=args.host, port=args.port)
    except (OSError, RuntimeError) as exc:
        print(f"error: cannot start the sandbox on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    projects = ", ".join(
        f"{p} ({'your organization' if o == USER_ORGANIZATION else 'another organization'})"
        for p, o in PROJECTS.items()
    )
    print(f"PostHog batch-exports sandbox (generation {args.generation}) at {running.base_url}")
    print(f"  projects: {projects}; @current = 1")
    print("  keys:")
    for key in config.accepted_keys():
        scopes = ",".join(key.scopes) or "(legacy: all)"
        teams = f" @{','.join(map(str, key.scoped_teams))}" if key.scoped_teams else ""
        print(f"    {key.value}  {scopes}{teams}")
    print(f"  clock speed: {args.speed:g}x; controls under {running.base_url}/_sandbox/; Ctrl-C to stop", flush=True)
    try:
        while True:
            time.sleep(1)
    except KeyboardInterrupt:
        pass
    finally:
        running.close()
    return 0


__all__ = ["main", "parse_key", "DEFAULT_SCOPES"]
