"""Load and soak (slow; run with `uv run pytest -m slow tests/reliability/test_load.py`): the
streamable HTTP transport, in its own process as it is deployed, holds 50 concurrent clients for
60 seconds on loopback with zero errors and flat memory. Its figures go to benchmarks/results.md
through `python -m benchmarks --only soak`, which runs the same code."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchmarks.common import Sandbox
from benchmarks.http_load import soak

CLIENTS = 50
SECONDS = 60.0
# Flat: after the first 10 s (pools, caches and lazy imports filled), RSS may move by noise only.
MAX_GROWTH_MB = 15.0


@pytest.mark.slow
async def test_fifty_clients_for_a_minute_without_errors_or_growth(
    make_sandbox: Callable[..., Any], tmp_path: Path
) -> None:
    sandbox = make_sandbox(generation=3, throttle=False)
    outcome = await soak(Sandbox(sandbox.base_url), tmp_path, CLIENTS, SECONDS)
    assert outcome["errors"] == 0, outcome["error_samples"]
    assert outcome["calls"] >= CLIENTS * 10, f"only {outcome['calls']} calls in {SECONDS} s"
    assert outcome["rss_growth_after_warmup_mb"] is not None
    assert outcome["rss_growth_after_warmup_mb"] <= MAX_GROWTH_MB, outcome["rss_mb"]
