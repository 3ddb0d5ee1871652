"""Fixtures shared by the integration tests: a real sandbox on loopback per test."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support import SandboxControl


@pytest.fixture
def make_sandbox() -> Iterator[Callable[..., Any]]:
    """Start sandboxes with any config; all are stopped after the test."""
    from posthog_sandbox import SandboxConfig, start_sandbox

    started = []

    def start(**config: Any) -> Any:
        sandbox = start_sandbox(SandboxConfig(**config))
        started.append(sandbox)
        return sandbox

    yield start
    for sandbox in started:
        sandbox.close()


@pytest.fixture(params=[3, 1], ids=["gen3", "gen1"])
def generation(request: pytest.FixtureRequest) -> int:
    return request.param


@pytest.fixture
def sandbox(make_sandbox: Callable[..., Any], generation: int) -> Any:
    return make_sandbox(generation=generation)


@pytest.fixture
def control(sandbox: Any) -> Iterator[SandboxControl]:
    from posthog_sandbox import DEFAULT_API_KEY

    ctl = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    yield ctl
    ctl.close()
