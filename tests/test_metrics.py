"""/metrics over real HTTP: tool calls by tool and outcome, durations, guard decisions, PostHog's status
codes and refusals at the edge, behind the same bearer token as /mcp."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import mcp.types as types
import pytest
from prometheus_client.parser import text_string_to_metric_families

from posthog_sandbox import DEFAULT_API_KEY
from server import metrics
from server.config import Settings
from tests.edge_support import mcp_client, post_mcp, serving
from tests.support import MODES, SandboxControl, data, settings_for

CI_TOKEN = "ci-token-" + "c" * 40
PROMETHEUS_TOKEN = "prometheus-token-" + "p" * 40


@pytest.fixture
def generation() -> int:
    return 3


@pytest.fixture
def metered(sandbox: Any, tmp_path: Path) -> Settings:
    path = tmp_path / "tokens"
    path.write_text(f"ci: {CI_TOKEN}\nprometheus: {PROMETHEUS_TOKEN}\n")
    path.chmod(0o600)
    return settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, auth_tokens_file=path, rate_limit=40)


async def scrape(
    url: str, token: str | None = PROMETHEUS_TOKEN
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient() as http:
        response = await http.get(url.removesuffix("/mcp") + metrics.METRICS_PATH, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.parametrize("mode", MODES)
async def test_metrics_count_calls_decisions_upstream_answers_and_refusals(
    metered: Settings, control: SandboxControl, mode: str
) -> None:
    async with serving(metered) as running:
        before = await scrape(running.url)
        export_id = control.export_id("Hourly events to S3")
        async with mcp_client(running.url, CI_TOKEN, mode) as client:
            assert data(await client.call_tool("batch-export-list", {"project_id": 1}))["count"] == 4
            missing = await client.call_tool("batch-export-get", {"project_id": 1, "batch_export_id": "0" * 32})
            assert missing.is_error
            preview = await client.call_tool("batch-export-pause", {"project_id": 1, "batch_export_id": export_id})
            assert isinstance(preview, types.CallToolResult) and not preview.is_error
            await client.call_tool("no-such-tool", {})
        assert (await post_mcp(running.url, "wrong-" + "w" * 40)).status_code == 401
        after = await scrape(running.url)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("posthog_mcp_tool_calls_total", tool="batch-export-list", outcome="ok") == 1
    assert grew("posthog_mcp_tool_calls_total", tool="batch-export-get", outcome="error") == 1
    assert grew("posthog_mcp_tool_call_duration_seconds_count", tool="batch-export-list") == 1
    # A client's made-up tool name never becomes a label value.
    assert grew("posthog_mcp_tool_calls_total", tool="unknown", outcome="error") == 1
    assert not any(dict(labels).get("tool") == "no-such-tool" for _, labels in after)
    # This client cannot elicit, so the guard answers with a preview and a token in both eras.
    assert grew("posthog_mcp_tool_calls_total", tool="batch-export-pause", outcome="confirmation_required") == 1
    assert grew("posthog_mcp_guard_decisions_total", tool="batch-export-pause", decision="previewed") == 1
    assert grew("posthog_mcp_upstream_responses_total", method="GET", status="200") >= 2
    assert grew("posthog_mcp_upstream_responses_total", method="GET", status="404") >= 1
    assert grew("posthog_mcp_http_refusals_total", reason="unauthenticated") == 1


async def test_limit_refusals_are_counted(metered: Settings) -> None:
    async with serving(metered.with_(rate_limit=2, rate_window=3600)) as running:
        before = await scrape(running.url)
        answers = [(await post_mcp(running.url, CI_TOKEN)).status_code for _ in range(4)]
        after = await scrape(running.url)
    assert answers == [200, 200, 429, 429]
    assert (
        value(after, "posthog_mcp_http_refusals_total", reason="rate_limited")
        - value(before, "posthog_mcp_http_refusals_total", reason="rate_limited")
        == 2
    )


async def test_metrics_need_a_token_when_the_server_has_callers(metered: Settings) -> None:
    async with serving(metered) as running:
        async with httpx.AsyncClient() as http:
            response = await http.get(running.url.removesuffix("/mcp") + metrics.METRICS_PATH)
        assert response.status_code == 401
        assert "posthog_mcp" not in response.text
