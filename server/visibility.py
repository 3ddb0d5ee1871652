"""The one place that decides which tools are listed and callable.

Order matters: read-only mode wins over every allow-list, the exclude list wins over
the allow-list, a tool allow-list replaces the toolsets, and tools the key cannot use are
hidden (write implies read; `*` and legacy unscoped keys may do everything).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from server.config import ConfigError, Settings
from tools.catalog import CATALOG, DEFAULT_TOOLSETS, DONE_BY, TOOLSET_OF, TOOLSETS
from tools.declaration import ToolSpec

ALL_TOOLSETS = "all"


@dataclass(frozen=True)
class KeyAccess:
    """What the personal API key may do; `scopes is None` means unknown (discovery failed)."""

    scopes: tuple[str, ...] | None = None
    scoped_teams: tuple[int, ...] = ()

    def allows(self, scope: str) -> bool:
        if self.scopes is None or not self.scopes or "*" in self.scopes:
            return True
        if scope in self.scopes:
            return True
        obj, _, action = scope.partition(":")
        return action == "read" and f"{obj}:write" in self.scopes


def check_names(settings: Settings, catalog: Sequence[ToolSpec]) -> None:
    known = {spec.name for spec in catalog}
    unknown = sorted((set(settings.tools) | set(settings.exclude_tools)) - known)
    if unknown:
        raise ConfigError(
            f"Unknown tool name(s) in POSTHOG_MCP_TOOLS/POSTHOG_MCP_EXCLUDE_TOOLS: {', '.join(unknown)}. "
            "Run 'posthog-batch-exports-mcp tools' for the list."
        )
    words = {"default", ALL_TOOLSETS}
    unknown_sets = sorted(set(settings.toolsets) - set(TOOLSETS) - words)
    if unknown_sets:
        raise ConfigError(
            f"Unknown toolset(s) in POSTHOG_MCP_TOOLSETS: {', '.join(unknown_sets)}. "
            f"Use {', '.join(TOOLSETS)}, default or all."
        )


def enabled_toolsets(settings: Settings) -> set[str]:
    chosen = settings.toolsets or ("default",)
    if ALL_TOOLSETS in chosen:
        return set(TOOLSETS)
    return {name for name in chosen if name != "default"} | (set(DEFAULT_TOOLSETS) if "default" in chosen else set())


def why_hidden(spec: ToolSpec, settings: Settings, access: KeyAccess) -> str | None:
    """None when the tool is listed; otherwise the reason, phrased for a refused call."""
    if settings.read_only and not spec.read_only:
        return "the server runs in read-only mode (POSTHOG_MCP_READ_ONLY / --read-only), which allows read tools only"
    if spec.name in settings.exclude_tools:
        return "it is excluded by POSTHOG_MCP_EXCLUDE_TOOLS"
    if settings.tools and spec.name not in settings.tools:
        return "it is not in the POSTHOG_MCP_TOOLS allow-list"
    if spec.deprecated and not settings.include_deprecated and spec.name not in settings.tools:
        return "it is deprecated; set POSTHOG_MCP_INCLUDE_DEPRECATED=1 to enable it"
    toolset = TOOLSET_OF.get(spec.name)
    if not settings.tools and toolset is not None and toolset not in enabled_toolsets(settings):
        instead = f"{DONE_BY[toolset]} does its job in one call, or list it" if toolset in DONE_BY else "list it"
        return (
            f"it is in the {toolset} toolset, which this server does not list; {instead} with "
            f"POSTHOG_MCP_TOOLSETS=default,{toolset} (or all)"
        )
    if not access.allows(spec.scope):
        return f"the personal API key lacks the scope {spec.scope}"
    return None


def why_resource_hidden(reader: str, settings: Settings, access: KeyAccess) -> str | None:
    """None when a resource serving what the tool `reader` reads is offered; otherwise why not.

    A resource is another way to read the same thing, so it follows that tool: an operator who hides
    the tool (read-only mode aside, every rule above) hides what it would have shown too."""
    spec = next(spec for spec in CATALOG if spec.name == reader)
    return why_hidden(spec, settings, access)


def listed_by_default(spec: ToolSpec) -> bool:
    """Whether a server with no listing settings lists `spec` to a key that may do everything."""
    return why_hidden(spec, Settings(), KeyAccess()) is None


def visible(catalog: Sequence[ToolSpec], settings: Settings, access: KeyAccess) -> list[ToolSpec]:
    return [spec for spec in catalog if why_hidden(spec, settings, access) is None]
