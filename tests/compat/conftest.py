"""The agent-framework tests need the `compat` dependency group (`uv sync --locked --group compat`, as .ci/run
runs it). Without it they are not collected, and the run's header says so; in CI (`CI` set) they are
collected anyway, so a missing framework fails them rather than passing unnoticed.
"""

from __future__ import annotations

import importlib.util
import os

import pytest

FRAMEWORKS = ("agents", "pydantic_ai", "google.genai", "anthropic")


def _missing() -> list[str]:
    found = []
    for name in FRAMEWORKS:
        try:
            spec = importlib.util.find_spec(name)
        except ModuleNotFoundError:
            spec = None
        if spec is None:
            found.append(name)
    return found


MISSING = _missing()
if MISSING and not os.environ.get("CI"):
    collect_ignore_glob = ["test_*.py"]


def pytest_report_header(config: pytest.Config) -> str | None:
    if MISSING and not os.environ.get("CI"):
        return f"tests/compat not collected: {', '.join(MISSING)} missing (uv sync --locked --group compat)"
    return None
