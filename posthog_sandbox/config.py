"""The sandbox's configuration: which generation it speaks, where it stores state, which keys it accepts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

DEFAULT_API_KEY = "phx_sandbox_default_key"
DEFAULT_SCOPES = ["batch_export:read", "batch_export:write"]


@dataclass
class SandboxKey:
    """A personal API key the sandbox accepts.

    `scopes == []` is a legacy unscoped key (allowed everything); `scoped_teams == []` means all projects.
    """

    value: str
    scopes: list[str]
    scoped_teams: list[int] = field(default_factory=list)


@dataclass
class SandboxConfig:
    generation: int = 3
    db_path: str | None = None
    keys: list[SandboxKey] | None = None
    seed: bool = True
    speed: float = 0.0
    throttle: bool = True
    now: datetime | None = None
    current_key_requires_scope: bool = False
    max_concurrent_backfills: int = 5
    # Simulated seconds between POST backfills/ (or a run retry) answering and the workflow writing the
    # backfill row (docs/posthog-api.md, "Backfills"); until then the row is neither listed nor retrievable.
    backfill_row_delay: float = 5.0
    # "allowed": personal API keys read the logs route with batch_export:read; "refused": no scope is
    # mapped to it, so every personal key gets 403 there (docs/posthog-api.md, "Logs and the Query API").
    logs_for_keys: str = "allowed"
    # The projects' timezone: runs filters without a UTC offset are read in it (docs/posthog-api.md, "Times").
    project_timezone: str = "UTC"
    # Project 1 seeded with this many exports instead of the demo set (None: the demo set).
    exports: int | None = None
    # The large seed writes hostile text into some names, errors and log lines (docs/sandbox.md, "Hostile text").
    hostile: bool = False

    def __post_init__(self) -> None:
        if self.logs_for_keys not in ("allowed", "refused"):
            raise ValueError("logs_for_keys must be 'allowed' or 'refused'")
        if self.backfill_row_delay < 0:
            raise ValueError("backfill_row_delay must be >= 0 seconds")
        if self.exports is not None and not 0 <= self.exports <= 5000:
            raise ValueError("exports must be between 0 and 5000")
        if self.hostile and self.exports is None:
            raise ValueError("hostile seeds hostile text into the large seed: set exports (--exports N) as well")

    def accepted_keys(self) -> list[SandboxKey]:
        if self.keys is None:
            return [SandboxKey(DEFAULT_API_KEY, list(DEFAULT_SCOPES))]
        return list(self.keys)
