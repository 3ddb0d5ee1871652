"""The whole catalog, in the order tools are listed."""

from __future__ import annotations

from tools import (
    backfills,
    destination_check,
    destination_tests,
    errors,
    exports,
    gaps,
    health,
    logs,
    projects,
    runs,
    wait,
)
from tools.declaration import ToolSpec

# One tool per PostHog batch-exports endpoint.
ENDPOINTS: tuple[ToolSpec, ...] = (
    *exports.TOOLS,
    *logs.TOOLS,
    *runs.TOOLS,
    *backfills.TOOLS,
    *destination_tests.TOOLS,
)
# Tools that answer an operator's question with as many requests as it takes.
ANSWERS: tuple[ToolSpec, ...] = (
    *health.TOOLS,
    *errors.TOOLS,
    *destination_check.TOOLS,
    *gaps.TOOLS,
    *wait.TOOLS,
    *projects.TOOLS,
)
CATALOG: tuple[ToolSpec, ...] = (*ENDPOINTS, *ANSWERS)
BY_NAME: dict[str, ToolSpec] = {spec.name: spec for spec in CATALOG}
# Names a tool had before it was renamed: still accepted at call time, never listed.
ALIASES: dict[str, str] = {
    "batch-exports-list": "batch-export-list",
    "batch-export-destination-test": "batch-export-test-steps",
    "batch-export-run-test-step": "batch-export-test-step",
    "batch-export-run-test-step-new": "batch-export-test-step-new",
}
