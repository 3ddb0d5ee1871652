"""Shared helpers for tests that drive the MCP server against the sandbox over loopback HTTP."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import mcp.types as types
from mcp import Client

from server.app import App, open_app
from server.config import Settings

MODES = ("auto", "legacy")


def settings_for(base_url: str, api_key: str, tmp_path: Path | None = None, **overrides: Any) -> Settings:
    audit = (tmp_path / "audit.jsonl") if tmp_path is not None else None
    base = Settings(api_key=api_key, host=base_url, audit_log=audit, timeout=5.0)
    return base.with_(**overrides)


@asynccontextmanager
async def running_app(settings: Settings) -> AsyncIterator[App]:
    async with open_app(settings) as app:
        yield app


@asynccontextmanager
async def connect(app: App, mode: str = "auto", **kwargs: Any) -> AsyncIterator[Client]:
    async with Client(app.server, mode=mode, read_timeout_seconds=30, **kwargs) as client:
        yield client


def text(result: types.CallToolResult) -> str:
    return "".join(block.text for block in result.content if isinstance(block, types.TextContent))


def data(result: types.CallToolResult) -> Any:
    """The structured result, checked to equal the JSON text the older clients read."""
    assert not result.is_error, text(result)
    assert json.loads(text(result)) == result.structured_content
    return result.structured_content


async def confirm_with_token(client: Client, name: str, arguments: dict[str, Any]) -> Any:
    """A guarded write through the token channel: preview, then the same call with the token."""
    first = data(await client.call_tool(name, arguments))
    assert first["status"] == "confirmation_required", first
    second = data(await client.call_tool(name, {**arguments, "confirmation_token": first["confirmation_token"]}))
    assert second["status"] == "executed", second
    return second["result"]


class SandboxControl:
    """The sandbox's /_sandbox/ test controls and a plain view of its API, over real HTTP."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=10.0, headers={"Authorization": f"Bearer {api_key}"})

    def close(self) -> None:
        self.http.close()

    def state(self) -> dict[str, Any]:
        return self.http.get("/_sandbox/state").raise_for_status().json()

    def requests(self) -> list[dict[str, Any]]:
        return self.http.get("/_sandbox/requests").raise_for_status().json()["requests"]

    def clear_requests(self) -> None:
        self.http.delete("/_sandbox/requests").raise_for_status()

    def writes(self) -> list[dict[str, Any]]:
        return [r for r in self.requests() if r["method"] not in ("GET", "HEAD", "OPTIONS")]

    def advance(self, seconds: float) -> None:
        self.http.post("/_sandbox/clock/advance", json={"seconds": seconds}).raise_for_status()

    def fault(self, **rule: Any) -> None:
        self.http.post("/_sandbox/faults", json=rule).raise_for_status()

    def clear_faults(self) -> None:
        self.http.delete("/_sandbox/faults").raise_for_status()

    def set_outcome(self, export_id: str, outcome: str, **extra: Any) -> None:
        self.http.post(f"/_sandbox/exports/{export_id}/outcome", json={"outcome": outcome, **extra}).raise_for_status()

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, f"/api/projects/{path.lstrip('/')}", **kwargs)

    def export_id(self, name: str, project: int = 1) -> str:
        for export in self.api("GET", f"{project}/batch_exports/").json()["results"]:
            if export["name"] == name:
                return export["id"]
        raise AssertionError(f"no export named {name!r} in project {project}")
