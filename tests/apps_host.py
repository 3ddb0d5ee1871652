"""A small MCP Apps host for tests: the host side of the view protocol in a real headless Chromium.

The page puts the view in a sandboxed iframe (scripts only, opaque origin: it cannot reach the
host page or the network), answers `ui/initialize`, sends the tool input and result once the
view says it is initialized, and forwards the view's `tools/call` to Python, where the test
sends it through a real MCP client to the server, so the guard applies as for any call.
Every message the view sends is kept in `window.fromView`, every tools/call in `calls`.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"

HOST_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>test host</title>
<style>body{margin:0;background:#888} iframe{border:0;width:100%;height:420px;display:block}</style></head>
<body><iframe id="view" sandbox="allow-scripts" title="health app"></iframe>
<script>
const frame = document.getElementById("view");
window.fromView = [];
window.hostState = { initialized: false };
function send(message) { frame.contentWindow.postMessage({ jsonrpc: "2.0", ...message }, "*"); }
window.sendToView = send;
window.addEventListener("message", async (event) => {
  if (event.source !== frame.contentWindow) return;
  const m = event.data;
  window.fromView.push(m);
  if (m.method === "ui/initialize") {
    send({ id: m.id, result: { protocolVersion: "2026-01-26", hostInfo: { name: "test-host", version: "1" },
      hostCapabilities: { serverTools: {}, logging: {} },
      hostContext: { theme: window.hostSetup.theme, displayMode: "inline", platform: "web" } } });
  } else if (m.method === "ui/notifications/initialized") {
    window.hostState.initialized = true;
    send({ method: "ui/notifications/tool-input", params: { arguments: window.hostSetup.arguments } });
    send({ method: "ui/notifications/tool-result", params: window.hostSetup.result });
  } else if (m.method === "ui/notifications/size-changed") {
    frame.style.height = Math.min(Math.max(m.params.height, 200), 2000) + "px";
  } else if (m.method === "tools/call") {
    try { send({ id: m.id, result: await window.hostCallTool(m.params.name, m.params.arguments || {}) }); }
    catch (error) { send({ id: m.id, error: { code: -32603, message: String(error) } }); }
  } else if (m.id !== undefined && m.method) {
    send({ id: m.id, error: { code: -32601, message: "not in the test host: " + m.method } });
  }
});
window.loadView = (html, setup) => { window.hostSetup = setup; frame.srcdoc = html; };
</script></body></html>
"""


def chromium_path() -> str:
    """Debian's Chromium (.ci/run installs it); a missing browser fails in CI and skips elsewhere."""
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    found = shutil.which("chromium")
    if found:
        return found
    message = "chromium is not installed (apt-get install chromium; .ci/run does it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


ToolCaller = Callable[[str, dict[str, Any]], Awaitable[dict[str, Any]]]


@dataclass
class Host:
    page: Any
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    async def load(self, html: str, arguments: dict[str, Any], result: dict[str, Any], theme: str = "light") -> Any:
        await self.page.evaluate(
            "([html, setup]) => window.loadView(html, setup)",
            [html, {"arguments": arguments, "result": result, "theme": theme}],
        )
        await self.page.wait_for_function("window.hostState.initialized", timeout=10_000)
        return self.page.frame_locator("#view")

    async def from_view(self) -> list[dict[str, Any]]:
        messages: list[dict[str, Any]] = await self.page.evaluate("window.fromView")
        return messages

    async def send(self, message: dict[str, Any]) -> None:
        await self.page.evaluate("m => window.sendToView(m)", message)


@asynccontextmanager
async def apps_host(call_tool: ToolCaller, *, width: int = 1100, color_scheme: str = "light") -> AsyncIterator[Host]:
    from playwright.async_api import async_playwright

    executable = chromium_path()
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        try:
            context = await browser.new_context(viewport={"width": width, "height": 900}, color_scheme=color_scheme)
            page = await context.new_page()
            host = Host(page)
            page.on("request", lambda request: host.requests.append(request.url))
            errors: list[str] = []
            page.on("pageerror", lambda error: errors.append(str(error)))

            async def forward(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
                host.calls.append((name, json.loads(json.dumps(arguments))))
                return await call_tool(name, arguments)

            await page.expose_function("hostCallTool", forward)
            await page.set_content(HOST_PAGE)
            yield host
            assert not errors, f"the page raised: {errors}"
        finally:
            await browser.close()
