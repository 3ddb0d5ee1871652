"""The MCP Apps views this server ships (`io.modelcontextprotocol/ui`): `ui://` HTML resources.

A tool names its view in its declaration (`ToolSpec.ui_resource`); a host that speaks the
extension reads the resource and renders the tool's result in it. Each view is one
self-contained HTML file next to this module: no network, no external scripts, styles or
fonts, and the resource's CSP declares no domain at all. Hosts without the extension never
see any of it: the tool's answer is complete as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from mcp.server.apps import APP_MIME_TYPE, EXTENSION_ID

__all__ = ["APP_MIME_TYPE", "EXTENSION_ID", "HEALTH_APP_URI", "VIEWS", "View", "view_for"]

HEALTH_APP_URI = "ui://posthog-batch-exports/health.html"
MAX_VIEW_BYTES = 80 * 1024


@dataclass(frozen=True)
class View:
    uri: str
    file: str
    name: str
    title: str
    description: str

    @property
    def html(self) -> str:
        return _read(self.file)

    @property
    def meta(self) -> dict[str, Any]:
        # Empty domain lists: the host's sandbox allows nothing outside the document itself.
        csp: dict[str, list[str]] = {
            "connectDomains": [],
            "resourceDomains": [],
            "frameDomains": [],
            "baseUriDomains": [],
        }
        return {"ui": {"csp": csp, "prefersBorder": True}}


VIEWS: tuple[View, ...] = (
    View(
        uri=HEALTH_APP_URI,
        file="health.html",
        name="batch-export-health-app",
        title="Batch export health",
        description="Grid of exports (failing first) by recent data interval; retry a failed run or backfill a "
        "missing range through the host's tool call. Renders batch-export-health results.",
    ),
)
_BY_URI = {view.uri: view for view in VIEWS}


def view_for(uri: str) -> View | None:
    return _BY_URI.get(uri)


@cache
def _read(name: str) -> str:
    return files(__package__).joinpath(name).read_text(encoding="utf-8")
