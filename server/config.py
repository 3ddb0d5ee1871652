"""All configuration in one settings object: environment variables, overridden by CLI flags."""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from server.http.addresses import is_loopback
from tools.answers.capacity import DEFAULT_LIMIT as DEFAULT_BACKFILL_LIMIT

ConfirmPolicy = Literal["always", "destructive", "never"]
ApiRoute = Literal["projects", "environments"]

DEFAULT_HOST = "https://us.posthog.com"
DEFAULT_TIMEOUT = 20.0
MAX_TIMEOUT = 300.0
UPSTREAM_CALL_TIMEOUTS = 2
"""One PostHog call, its retries and waits included, ends within this many POSTHOG_MCP_TIMEOUTs
(server/posthog.py); the guard's in-flight lock is derived from it."""
MIN_AUTH_TOKEN_CHARS = 32


class ConfigError(ValueError):
    """A setting is missing or wrong; the message says which and how to fix it."""


def _flag(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _names(value: str | None) -> tuple[str, ...]:
    return tuple(n.strip() for n in (value or "").split(",") if n.strip())


def default_audit_path() -> Path:
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "posthog-batch-exports-mcp" / "audit.jsonl"


@dataclass(frozen=True)
class Settings:
    api_key: str | None = field(default=None, repr=False)
    host: str = DEFAULT_HOST
    project_id: int | None = None
    api_route: ApiRoute = "projects"
    tools: tuple[str, ...] = ()
    toolsets: tuple[str, ...] = ()
    """Toolset names, "default" or "all"; empty: the default ones (tools/catalog.py DEFAULT_TOOLSETS)."""
    exclude_tools: tuple[str, ...] = ()
    include_deprecated: bool = False
    read_only: bool = False
    confirm: ConfirmPolicy = "always"
    confirm_secret: bytes | None = field(default=None, repr=False)
    audit_log: Path | None = None
    timeout: float = DEFAULT_TIMEOUT
    sandbox: bool = False
    auth_token: str | None = field(default=None, repr=False)
    redis_url: str | None = field(default=None, repr=False)
    allow_insecure_host: bool = False
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()
    http_stateful: bool = False
    single_replica: bool = False
    """Over HTTP: the operator says this is the only replica, so a confirm secret needs no shared Redis."""
    auth_tokens_file: Path | None = None
    oauth_issuer: str | None = None
    oauth_jwks_url: str | None = None
    public_url: str | None = None
    oauth_scope: str | None = None
    rate_limit: int | None = None
    """Requests per caller per window; None: the default when callers authenticate, 0: off."""
    rate_window: float = 60.0
    auth_failure_limit: int = 10
    backfill_limit: int = DEFAULT_BACKFILL_LIMIT
    """PostHog's limit of backfills running at once in a project (its deployment setting); plans stay within it."""
    posthog_share: float = 0.9
    """The share of PostHog's rate limits for the key that this server spends (server/budget/)."""
    posthog_limits: str | None = None
    """PostHog's rate limits, when not the published ones (server/budget/limits.py)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read the environment, then apply non-None overrides (the CLI's flags)."""
        env = os.environ if env is None else env
        project = env.get("POSTHOG_PROJECT_ID", "").strip()
        secret = env.get("POSTHOG_MCP_CONFIRM_SECRET")
        audit = env.get("POSTHOG_MCP_AUDIT_LOG")
        values: dict[str, Any] = {
            "api_key": env.get("POSTHOG_PERSONAL_API_KEY") or None,
            "host": env.get("POSTHOG_HOST") or DEFAULT_HOST,
            "project_id": _project(project) if project else None,
            "api_route": env.get("POSTHOG_API_ROUTE") or "projects",
            "tools": _names(env.get("POSTHOG_MCP_TOOLS")),
            "toolsets": _names(env.get("POSTHOG_MCP_TOOLSETS")),
            "exclude_tools": _names(env.get("POSTHOG_MCP_EXCLUDE_TOOLS")),
            "include_deprecated": _flag(env.get("POSTHOG_MCP_INCLUDE_DEPRECATED")),
            "read_only": _flag(env.get("POSTHOG_MCP_READ_ONLY")),
            "confirm": (env.get("POSTHOG_MCP_CONFIRM") or "always").strip().lower(),
            "confirm_secret": secret.encode() if secret else None,
            "audit_log": Path(audit) if audit else None,
            "timeout": _seconds(env.get("POSTHOG_MCP_TIMEOUT")),
            "auth_token": env.get("POSTHOG_MCP_AUTH_TOKEN") or None,
            "redis_url": env.get("POSTHOG_MCP_REDIS_URL") or None,
            "allow_insecure_host": _flag(env.get("POSTHOG_MCP_ALLOW_INSECURE_HOST")),
            "allowed_hosts": _names(env.get("POSTHOG_MCP_ALLOWED_HOSTS")),
            "allowed_origins": _names(env.get("POSTHOG_MCP_ALLOWED_ORIGINS")),
            "http_stateful": _flag(env.get("POSTHOG_MCP_HTTP_STATEFUL")),
            "single_replica": _flag(env.get("POSTHOG_MCP_SINGLE_REPLICA")),
            "auth_tokens_file": Path(tokens) if (tokens := env.get("POSTHOG_MCP_AUTH_TOKENS_FILE")) else None,
            "oauth_issuer": env.get("POSTHOG_MCP_OAUTH_ISSUER") or None,
            "oauth_jwks_url": env.get("POSTHOG_MCP_OAUTH_JWKS_URL") or None,
            "public_url": env.get("POSTHOG_MCP_PUBLIC_URL") or None,
            "oauth_scope": env.get("POSTHOG_MCP_OAUTH_SCOPE") or None,
            "rate_limit": _count("POSTHOG_MCP_RATE_LIMIT", env.get("POSTHOG_MCP_RATE_LIMIT")),
            "rate_window": float(_count("POSTHOG_MCP_RATE_WINDOW", env.get("POSTHOG_MCP_RATE_WINDOW"), 60) or 0),
            "auth_failure_limit": _count(
                "POSTHOG_MCP_AUTH_FAILURE_LIMIT", env.get("POSTHOG_MCP_AUTH_FAILURE_LIMIT"), 10
            ),
            "backfill_limit": _count(
                "POSTHOG_MCP_BACKFILL_LIMIT", env.get("POSTHOG_MCP_BACKFILL_LIMIT"), DEFAULT_BACKFILL_LIMIT
            ),
            "posthog_share": _share(env.get("POSTHOG_MCP_POSTHOG_SHARE")),
            "posthog_limits": env.get("POSTHOG_MCP_POSTHOG_LIMITS") or None,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.check()
        return settings

    def with_(self, **changes: Any) -> Settings:
        return replace(self, **changes)

    def check(self) -> None:
        if self.api_route not in ("projects", "environments"):
            raise ConfigError(f"POSTHOG_API_ROUTE must be 'projects' or 'environments', not {self.api_route!r}.")
        if self.confirm not in ("always", "destructive", "never"):
            raise ConfigError(f"POSTHOG_MCP_CONFIRM must be always, destructive or never, not {self.confirm!r}.")
        if not self.host.startswith(("http://", "https://")):
            raise ConfigError(f"POSTHOG_HOST must start with https:// (or http:// for local hosts), got {self.host!r}.")
        if self.host.startswith("http://") and not self.allow_insecure_host:
            name = urlsplit(self.host).hostname or ""
            if not is_loopback(name):
                raise ConfigError(
                    f"POSTHOG_HOST {self.host!r} is plain http:// to another machine: the API key would travel "
                    "unencrypted. Use https://, or set POSTHOG_MCP_ALLOW_INSECURE_HOST=true if the network between "
                    "them is trusted."
                )
        if self.confirm_secret is not None and len(self.confirm_secret) < 16:
            raise ConfigError(
                "POSTHOG_MCP_CONFIRM_SECRET is too short to sign confirmations: use at least 16 random characters "
                "(for example: openssl rand -hex 32)."
            )
        if not (math.isfinite(self.timeout) and 0 < self.timeout <= MAX_TIMEOUT):
            raise ConfigError(
                f"POSTHOG_MCP_TIMEOUT must be a number of seconds above 0 and at most {MAX_TIMEOUT:g}, "
                f"got {self.timeout!r}."
            )
        if self.auth_token is not None and len(self.auth_token) < MIN_AUTH_TOKEN_CHARS:
            raise ConfigError(
                f"POSTHOG_MCP_AUTH_TOKEN is too short to keep guessers out: use at least {MIN_AUTH_TOKEN_CHARS} random "
                "characters (for example: openssl rand -hex 32)."
            )
        if self.rate_window <= 0:
            raise ConfigError("POSTHOG_MCP_RATE_WINDOW must be a positive whole number of seconds.")
        if self.backfill_limit < 1:
            raise ConfigError(
                "POSTHOG_MCP_BACKFILL_LIMIT must be at least 1: PostHog's limit of backfills running at once in a "
                "project (its BATCH_EXPORT_MAX_CONCURRENT_BACKFILLS_PER_TEAM setting)."
            )
        if not (math.isfinite(self.posthog_share) and 0 < self.posthog_share <= 1):
            raise ConfigError(
                "POSTHOG_MCP_POSTHOG_SHARE must be a fraction above 0 and at most 1 (the share of PostHog's rate "
                f"limits for the key this server may spend, 0.9 by default), got {self.posthog_share!r}."
            )

    @property
    def client_auth(self) -> bool:
        """Whether HTTP clients must authenticate (a token, a tokens file or OAuth)."""
        return bool(self.auth_token or self.auth_tokens_file or self.oauth_issuer)

    def start_warnings(self) -> list[str]:
        """What a person starting a server with these settings must hear (logged once, at start)."""
        return ["POSTHOG_MCP_CONFIRM=never: writes run without any confirmation."] if self.confirm == "never" else []

    def require_key(self) -> str:
        if not self.api_key:
            raise ConfigError(
                "POSTHOG_PERSONAL_API_KEY is not set. Create a personal API key in PostHog (Settings > Personal API keys) "
                "with batch_export:read and query:read (and batch_export:write to make changes), or try the local sandbox "
                "with --sandbox."
            )
        return self.api_key


def _seconds(value: str | None) -> float:
    if value is None or not value.strip():
        return DEFAULT_TIMEOUT
    try:
        return float(value)
    except ValueError:
        raise ConfigError(
            f"POSTHOG_MCP_TIMEOUT must be a number of seconds, like 20 or 7.5, got {value[:40]!r}."
        ) from None


def _share(value: str | None) -> float:
    if value is None or not value.strip():
        return 0.9
    try:
        return float(value)
    except ValueError:
        raise ConfigError(
            f"POSTHOG_MCP_POSTHOG_SHARE must be a fraction like 0.9 or 0.5, got {value[:40]!r}."
        ) from None


def _count(name: str, value: str | None, default: int | None = None) -> int | None:
    value = (value or "").strip()
    if not value:
        return default
    if not value.isdigit():
        raise ConfigError(f"{name} must be a whole number (0 or more), got {value!r}.")
    return int(value)


def _project(value: str) -> int:
    if not value.isdigit() or int(value) < 1:
        raise ConfigError(
            f"POSTHOG_PROJECT_ID must be a positive number (the id in your project's URL), got {value!r}."
        )
    return int(value)
