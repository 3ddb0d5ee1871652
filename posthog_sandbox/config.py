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

    def accepted_keys(self) -> list[SandboxKey]:
        if self.keys is None:
            return [SandboxKey(DEFAULT_API_KEY, list(DEFAULT_SCOPES))]
        return list(self.keys)
