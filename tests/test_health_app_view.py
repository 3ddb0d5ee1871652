"""The health view on its own, in headless Chromium, fed an answer shaped like the contract
(every cell status, an omitted tail), through the test host's side of the Apps protocol.

The same view against real sandbox results through the server is tests/test_health_app.py.
"""

from __future__ import annotations

import re
from typing import Any

from server.host.ui import HEALTH_APP_URI, MAX_VIEW_BYTES, view_for
from tests.apps_host import apps_host

EXPORT_A = "0190aaaa-0000-7000-8000-000000000001"
EXPORT_B = "0190aaaa-0000-7000-8000-000000000002"
EXPORT_C = "0190aaaa-0000-7000-8000-000000000003"


def _cells(statuses: str, day: str = "2026-11-30") -> list[dict[str, Any]]:
    names = {"c": "completed", "f": "failed", "r": "running", "m": "missing", "p": "paused"}
    cells = []
    for hour, code in enumerate(statuses):
        cell: dict[str, Any] = {
            "start": f"{day}T{hour:02d}:00:00Z",
            "end": f"{day}T{hour + 1:02d}:00:00Z",
            "status": names[code],
        }
        if code in "cfr":
            cell["run_id"] = f"0190bbbb-0000-7000-8000-0000000000{hour:02d}"
        if code == "c":
            cell["records"] = 1000 + hour
        if code == "f":
            cell["error"] = f"S3 AccessDenied at hour {hour}"
            cell["records"] = 0
        cells.append(cell)
    return cells


ANSWER = {
    "project_id": 7,
    "counts": {"total": 14, "failing": 1, "degraded": 0, "paused": 1, "healthy": 12},
    "exports": [
        # Deliberately out of order: the view lists failing first whatever it is given.
        {"batch_export_id": EXPORT_C, "name": "Healthy to BigQuery", "destination_type": "BigQuery", "interval": "hour", "state": "healthy", "intervals": _cells("ccccccccr")},
        {"batch_export_id": EXPORT_A, "name": "Events to S3", "destination_type": "S3", "interval": "hour", "state": "failing", "failing_since": "2026-11-30T05:00:00Z", "consecutive_failures": 2, "latest_error": "S3 AccessDenied", "intervals": _cells("cccmmcfcf")},
        {"batch_export_id": EXPORT_B, "name": "Paused to Postgres", "destination_type": "Postgres", "interval": "hour", "state": "paused", "paused": True, "intervals": _cells("ccpppp")},
    ],
    "omitted": {"count": 11, "reason": "healthy exports past the first 3", "call": {"tool": "batch-export-health", "arguments": {"project_id": 7, "state": "all", "offset": 3}}},
}  # fmt: skip


def _result(answer: dict[str, Any]) -> dict[str, Any]:
    import json

    return {"content": [{"type": "text", "text": json.dumps(answer)}], "structuredContent": answer, "isError": False}


def test_view_is_self_contained_and_small() -> None:
    view = view_for(HEALTH_APP_URI)
    assert view is not None
    html = view.html
    assert len(html.encode()) <= MAX_VIEW_BYTES, f"{len(html.encode())} bytes"
    lowered = html.lower()
    for external in (
        "http://",
        "https://",
        "//cdn",
        "<link",
        "<script src",
        "@import",
        "url(",
        "fetch(",
        "xmlhttprequest",
        "websocket",
        "eventsource",
    ):
        assert external not in lowered, f"the view must not load anything from outside: found {external!r}"
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', html)
    assert csp and "default-src 'none'" in csp.group(1) and "connect-src 'none'" in csp.group(1)
    assert view.meta["ui"]["csp"] == {
        "connectDomains": [],
        "resourceDomains": [],
        "frameDomains": [],
        "baseUriDomains": [],
    }


async def test_view_renders_and_acts_through_the_host() -> None:
    answered: list[tuple[str, dict[str, Any]]] = []

    async def call_tool(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        answered.append((name, arguments))
        if name == "batch-export-health":
            return _result(ANSWER)
        status = "executed" if "confirmation_token" in arguments else "confirmation_required"
        body: dict[str, Any] = {"status": status, "message": f"{name} {status}."}
        if status == "confirmation_required":
            body |= {
                "preview": {"summary": f"Preview of {name}", "arguments": arguments},
                "confirmation_token": "tok-123",
            }
        return _result(body)

    view = view_for(HEALTH_APP_URI)
    assert view is not None
    async with apps_host(call_tool) as host:
        # A model asked for states only (no cells): the view asks the host for the cells itself.
        no_cells = {**ANSWER, "exports": [{k: v for k, v in e.items() if k != "intervals"} for e in ANSWER["exports"]]}
        frame = await host.load(view.html, {"project_id": 7, "state": "all"}, _result(no_cells))
        rows = frame.locator("#grid .row[data-export-id]")
        await frame.locator(".cell").first.wait_for()
        assert host.calls[0] == ("batch-export-health", {"project_id": 7, "state": "all", "intervals": 24})
        assert await rows.count() == 3
        assert [await rows.nth(i).get_attribute("data-export-id") for i in range(3)] == [EXPORT_A, EXPORT_B, EXPORT_C]
        assert await frame.locator("select#state").input_value() == "all"
        summary = await frame.locator("#summary").text_content()
        assert summary is not None and "14 exports" in summary and "1 failing" in summary
        for status, count in (("completed", 15), ("failed", 2), ("running", 1), ("missing", 2), ("paused", 4)):
            assert await frame.locator(f'#grid .cell[data-status="{status}"]').count() == count, status
        assert "11 more not shown" in (await frame.locator("#more").text_content() or "")

        # Keyboard: the first cell takes focus, arrows move, the detail follows.
        first = frame.locator("#grid .cell").first
        await first.focus()
        for _ in range(6):
            await host.page.keyboard.press("ArrowRight")
        focused = frame.locator("#grid .cell:focus")
        assert await focused.get_attribute("data-status") == "failed"
        assert await focused.get_attribute("aria-selected") == "true"
        detail = frame.locator("#detail")
        assert await detail.locator('[data-field="status"]').text_content() == "failed"
        assert await detail.locator('[data-field="error"]').text_content() == "S3 AccessDenied at hour 6"
        assert await detail.locator('[data-field="records"]').text_content() == "0"
        await host.page.keyboard.press("ArrowDown")  # to the paused export's row, clamped to its last cell
        assert await frame.locator("#grid .cell:focus").get_attribute("data-status") == "paused"
        await host.page.keyboard.press("ArrowUp")
        await host.page.keyboard.press("Home")
        assert await frame.locator("#grid .cell:focus").get_attribute("data-index") == "0"

        # Retry a failed run: the host's tools/call, then the whole preview, then the token on Confirm.
        await frame.locator(f'.row[data-export-id="{EXPORT_A}"] .cell[data-index="6"]').click()
        await detail.locator('button[data-tool="batch-export-run-retry"]').click()
        await detail.locator('[data-outcome="confirmation_required"]').wait_for()
        retry = {"project_id": 7, "batch_export_id": EXPORT_A, "run_id": "0190bbbb-0000-7000-8000-000000000006"}
        assert host.calls[-1] == ("batch-export-run-retry", retry)
        assert "Preview of batch-export-run-retry" in (await detail.locator("pre").text_content() or "")
        await detail.locator('button[data-confirm="batch-export-run-retry"]').click()
        await detail.locator('[data-outcome="executed"]').wait_for()
        assert host.calls[-1] == ("batch-export-run-retry", {**retry, "confirmation_token": "tok-123"})

        # Backfill a missing range: both missing hours, start of the first to end of the last.
        await frame.locator(f'.row[data-export-id="{EXPORT_A}"] .cell[data-index="4"]').click()
        button = detail.locator('button[data-tool="batch-export-backfill-create"]')
        assert "2 missing intervals" in (await button.text_content() or "")
        await button.click()
        await detail.locator('[data-outcome="confirmation_required"]').wait_for()
        assert host.calls[-1] == (
            "batch-export-backfill-create",
            {
                "project_id": 7,
                "batch_export_id": EXPORT_A,
                "start_at": "2026-11-30T03:00:00Z",
                "end_at": "2026-11-30T05:00:00Z",
            },
        )
        # A completed cell offers no write.
        await frame.locator(f'.row[data-export-id="{EXPORT_C}"] .cell[data-index="0"]').click()
        assert await detail.locator("button[data-tool]").count() == 0

        # Themes: the host's theme decides the palette, and a context change switches it.
        light = await frame.locator("body").evaluate("b => getComputedStyle(b).backgroundColor")
        await host.send({"method": "ui/notifications/host-context-changed", "params": {"theme": "dark"}})
        await frame.locator('html[data-theme="dark"]').wait_for(state="attached")
        dark = await frame.locator("body").evaluate("b => getComputedStyle(b).backgroundColor")
        assert light == "rgb(255, 255, 255)" and dark != light
        assert _luminance(dark) < 0.1

        messages = await host.from_view()
        assert messages[0]["method"] == "ui/initialize" and messages[0]["params"]["protocolVersion"]
        assert any(m.get("method") == "ui/notifications/size-changed" for m in messages)
    assert host.requests == [], f"the view reached the network: {host.requests}"
    assert answered == host.calls


def _luminance(css: str) -> float:
    r, g, b = (int(v) / 255 for v in re.findall(r"\d+", css)[:3])
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_every_linked_view_exists() -> None:
    from tools.catalog import CATALOG

    linked = {spec.name: spec.ui_resource for spec in CATALOG if spec.ui_resource}
    for name, uri in linked.items():
        assert uri.startswith("ui://") and view_for(uri) is not None, (
            f"{name} links {uri}, which server/ui does not serve"
        )


def test_readme_shows_the_screenshot() -> None:
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    shot = root / "docs" / "health-app.png"
    assert shot.is_file() and shot.stat().st_size <= 200_000
    assert "docs/health-app.png" in (root / "README.md").read_text()


async def test_view_reads_a_long_answer_as_rows_and_shows_what_ran_and_exported_nothing() -> None:
    """A model's answer over many exports comes as rows of `columns` (tools/answers/health.py); the view
    shows them as it shows entries, with their states, and an interval that exported 0 records as empty."""
    table = {
        "project_id": 7,
        "counts": {"total": 2000, "billing": 1, "silent": 1, "auto_paused": 1, "healthy": 1997},
        "columns": ["batch_export_id", "name", "state", "since", "count", "error"],
        "exports": [
            [EXPORT_A, "Events to S3", "billing", "2026-11-30T05:00:00Z", 4, 1],
            [EXPORT_B, "Persons to Postgres", "silent", "2026-11-29T00:00:00Z", 31, None],
            [EXPORT_C, "Sessions to BigQuery", "auto_paused", "2026-11-28T00:00:00Z", None, None],
        ],
        "errors": ["Batch export run failed due to exceeding billing limits."],
        "backfills_running": [
            {"batch_export_id": EXPORT_C, "name": "Sessions to BigQuery", "backfill_id": "b", "runs_done": "7/24"}
        ],
    }
    empty = [{**c, "status": "empty", "records": 0} for c in _cells("ccc")]
    with_cells = {
        **table,
        "columns": None,
        "exports": [
            {"batch_export_id": EXPORT_B, "name": "Persons to Postgres", "state": "silent", "intervals": empty}
        ],
    }

    async def call_tool(name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        return _result({k: v for k, v in with_cells.items() if v is not None})

    view = view_for(HEALTH_APP_URI)
    assert view is not None
    async with apps_host(call_tool) as host:
        frame = await host.load(view.html, {"project_id": 7}, _result(table))
        rows = frame.locator("#grid .row[data-export-id]")
        await rows.first.wait_for()
        assert await frame.locator("select#state").input_value() == "attention"
        summary = await frame.locator("#summary").text_content() or ""
        assert "1 billing" in summary and "1 silent" in summary and "1 auto paused" in summary
        assert "7/24" in (await frame.locator("#backfills").text_content() or "")
        await frame.locator('#grid .cell[data-status="empty"]').first.wait_for()  # the cells the view asked for
        assert await frame.locator('#grid .cell[data-status="empty"]').count() == 3
        assert await frame.locator('#grid .cell[data-status="completed"]').count() == 0
