"""The context budget: what the default tools/list costs every session, measured through a real client.

At most 24 KB of compact JSON for the whole listing, answer tools included, no tool over 3 KB,
every output schema kept (docs/architecture.md, "The context budget"; benchmarks/context_cost.py
reports the figures next to FastMCP's).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from benchmarks.context_cost import ANSWER_TOOLS, BUDGET_PER_TOOL, BUDGET_TOTAL
from tests.support import MODES, connect, running_app, settings_for


def _size(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


@pytest.mark.parametrize("mode", MODES)
async def test_default_listing_stays_within_the_budget(make_sandbox: Any, mode: str, tmp_path: Path) -> None:
    from posthog_sandbox import DEFAULT_API_KEY, SandboxKey
    from tests.support import RECOMMENDED_KEY_SCOPES

    # The key the README recommends, write included. The two integration tools are listed only to a key
    # that also has the integration scopes (rotating credentials), and cost their listing only there.
    sandbox = make_sandbox(keys=[SandboxKey(DEFAULT_API_KEY, list(RECOMMENDED_KEY_SCOPES))])
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, toolsets=())) as app:
        async with connect(app, mode) as client:
            tools = [
                t.model_dump(by_alias=True, exclude_none=True, mode="json") for t in (await client.list_tools()).tools
            ]
    names = {t["name"] for t in tools}
    assert ANSWER_TOOLS <= names, "the answer tools are part of the default listing"
    total = _size(tools)
    assert total <= BUDGET_TOTAL, f"tools/list is {total} bytes, over the {BUDGET_TOTAL} budget"
    heavy = {t["name"]: _size(t) for t in tools if _size(t) > BUDGET_PER_TOOL}
    assert not heavy, f"tools over {BUDGET_PER_TOOL} bytes: {heavy}"
    for tool in tools:
        assert tool.get("outputSchema", {}).get("type") == "object", f"{tool['name']} lost its output schema"
        assert "Requires scope" not in tool["description"] and "title" not in tool["annotations"]
