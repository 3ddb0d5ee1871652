"""Fixtures of the reliability suite: one sandbox (generation 3) per test, with the throttle left on
unless a test turns it off, and the MCP protocol era as a parameter."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from posthog_sandbox import DEFAULT_API_KEY
from tests.support import MODES, SandboxControl


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def live(make_sandbox: Callable[..., Any]) -> Iterator[tuple[Any, SandboxControl]]:
    """A fresh generation-3 sandbox and its controls."""
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    yield sandbox, control
    control.close()
