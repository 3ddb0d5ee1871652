"""The whole catalog, in the order tools are listed."""

from __future__ import annotations

from tools import backfills, destination_tests, exports, logs, runs
from tools.answers import changes, destination_check, errors, gaps, health, projects, wait
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
    *changes.TOOLS,
    *destination_check.TOOLS,
    *gaps.TOOLS,
    *wait.TOOLS,
    *projects.TOOLS,
)
CATALOG: tuple[ToolSpec, ...] = (*ENDPOINTS, *ANSWERS)
BY_NAME: dict[str, ToolSpec] = {spec.name: spec for spec in CATALOG}

# Groups a server lists together (POSTHOG_MCP_TOOLSETS). Every tool is in one.
TOOLSETS: dict[str, tuple[ToolSpec, ...]] = {
    "exports": tuple(exports.TOOLS),
    "runs": tuple(runs.TOOLS),
    "backfills": tuple(backfills.TOOLS),
    "answers": ANSWERS,
    "logs": tuple(logs.TOOLS),
    "tests": tuple(destination_tests.TOOLS),
}
# What a server lists unless told otherwise. The two left out are endpoints an answer tool calls
# for the model and whose job it does whole (its name is given when one of them is asked for), so a
# session need not pay for both in tools/list (docs/architecture.md, "The context budget").
DEFAULT_TOOLSETS: tuple[str, ...] = ("exports", "runs", "backfills", "answers")
DONE_BY: dict[str, str] = {"logs": "batch-export-errors", "tests": "batch-export-destination-check"}
TOOLSET_OF: dict[str, str] = {spec.name: name for name, specs in TOOLSETS.items() for spec in specs}
# Names a tool had before it was renamed: still accepted at call time, never listed.
ALIASES: dict[str, str] = {
    "batch-exports-list": "batch-export-list",
    "batch-export-destination-test": "batch-export-test-steps",
    "batch-export-run-test-step": "batch-export-test-step",
    "batch-export-run-test-step-new": "batch-export-test-step-new",
}
