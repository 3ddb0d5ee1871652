"""The whole catalog, in the order tools are listed."""

from __future__ import annotations

from dataclasses import replace

from tools import backfills, destination_tests, exports, integrations, logs, runs
from tools.answers import changes, credentials, destination_check, errors, gaps, health, projects, rotation, wait
from tools.declaration import ToolSpec

# batch-export-update changes many exports' destination as one plan (tools/answers/rotation.py); that plan
# reads what the answers read (the export list, destination checks), so it joins the declaration here.
EXPORTS: tuple[ToolSpec, ...] = tuple(
    replace(spec, plan=rotation.STEPS, max_requests=rotation.MAX_REQUESTS)
    if spec.name == "batch-export-update"
    else spec
    for spec in exports.TOOLS
)
# One tool per PostHog batch-exports endpoint.
ENDPOINTS: tuple[ToolSpec, ...] = (
    *EXPORTS,
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
# Where credentials are kept: an answer and the integrations' one write, listed to keys with the
# integration scopes they need (docs/architecture.md, "The context budget").
INTEGRATIONS: tuple[ToolSpec, ...] = (*credentials.TOOLS, *integrations.TOOLS)
CATALOG: tuple[ToolSpec, ...] = (*ENDPOINTS, *ANSWERS, *INTEGRATIONS)
BY_NAME: dict[str, ToolSpec] = {spec.name: spec for spec in CATALOG}

# Groups a server lists together (POSTHOG_MCP_TOOLSETS). Every tool is in one.
TOOLSETS: dict[str, tuple[ToolSpec, ...]] = {
    "exports": EXPORTS,
    "runs": tuple(runs.TOOLS),
    "backfills": tuple(backfills.TOOLS),
    "answers": ANSWERS,
    "integrations": INTEGRATIONS,
    "logs": tuple(logs.TOOLS),
    "tests": tuple(destination_tests.TOOLS),
}
# What a server lists unless told otherwise. The two left out are endpoints an answer tool calls
# for the model and whose job it does whole (its name is given when one of them is asked for), so a
# session need not pay for both in tools/list (docs/architecture.md, "The context budget").
DEFAULT_TOOLSETS: tuple[str, ...] = ("exports", "runs", "backfills", "answers", "integrations")
DONE_BY: dict[str, str] = {"logs": "batch-export-errors", "tests": "batch-export-destination-check"}
TOOLSET_OF: dict[str, str] = {spec.name: name for name, specs in TOOLSETS.items() for spec in specs}
# Names a tool had before it was renamed: still accepted at call time, never listed.
ALIASES: dict[str, str] = {
    "batch-exports-list": "batch-export-list",
    "batch-export-destination-test": "batch-export-test-steps",
    "batch-export-run-test-step": "batch-export-test-step",
    "batch-export-run-test-step-new": "batch-export-test-step-new",
}
