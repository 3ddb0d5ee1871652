"""The OpenTelemetry spans the mcp SDK makes reach an exporter once a tracer provider is installed,
as the README's tracing recipe relies on (opentelemetry-instrument installs one)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

from posthog_sandbox import DEFAULT_API_KEY
from tests.edge_support import mcp_client, serving
from tests.support import MODES, data, settings_for

TOKEN = "tracing-token-" + "t" * 40


class Recording(SpanExporter):
    """Keeps spans only while a test listens: the provider, once installed, stays for the process."""

    def __init__(self) -> None:
        self.listening = False
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self.listening:
            self.spans.extend(spans)
        return SpanExportResult.SUCCESS


_RECORDING = Recording()


@pytest.fixture
def recording() -> Iterator[Recording]:
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
        provider.add_span_processor(SimpleSpanProcessor(_RECORDING))
    _RECORDING.spans.clear()
    _RECORDING.listening = True
    try:
        yield _RECORDING
    finally:
        _RECORDING.listening = False
        _RECORDING.spans.clear()


@pytest.fixture
def generation() -> int:
    return 3


@pytest.mark.parametrize("mode", MODES)
async def test_a_tool_call_over_http_makes_a_server_span(
    recording: Recording, sandbox: Any, tmp_path: Path, mode: str
) -> None:
    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, auth_token=TOKEN)
    async with serving(settings) as running:
        async with mcp_client(running.url, TOKEN, mode) as client:
            assert data(await client.call_tool("batch-export-list", {"project_id": 1}))["count"] == 4
    calls = [span for span in recording.spans if span.name == "tools/call batch-export-list"]
    assert len(calls) == 1, [span.name for span in recording.spans]
    span = calls[0]
    assert span.kind == trace.SpanKind.SERVER
    assert span.attributes is not None
    assert span.attributes["gen_ai.tool.name"] == "batch-export-list"
    assert span.attributes["mcp.method.name"] == "tools/call"
    assert all(TOKEN not in str(value) for s in recording.spans for value in (s.attributes or {}).values())
