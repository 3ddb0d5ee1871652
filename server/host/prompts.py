"""Prompts for the common jobs, which hosts offer as slash commands.

Each prompt is a short plan that names the tools to use, built from the tools this server
actually lists: a step whose tools are all hidden (read-only mode, an allow-list, a key
without the scope) is left out, and a prompt whose essential steps are gone is not offered.
Writes are always left to the guarded tools, which preview and ask before anything changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import mcp.types as types
from mcp import MCPError

from server import untrusted
from tools.echo import echoed

MAX_ARGUMENT_LENGTH = 200
# A caller's unknown argument names are repeated in the error, each capped and only the first few.
MAX_UNKNOWN_SHOWN = 5


@dataclass(frozen=True)
class Step:
    text: str
    """What to do; `{tool}` is replaced by the first listed tool of `tools`."""
    tools: tuple[str, ...] = ()
    essential: bool = False
    needs: tuple[str, ...] = ()
    """Left out unless one of these is listed too (following a write nobody can make is no step)."""


@dataclass(frozen=True)
class Argument:
    name: str
    description: str
    required: bool = True


@dataclass(frozen=True)
class PromptSpec:
    name: str
    title: str
    description: str
    goal: str
    """The first line; `{name}` placeholders are filled from the arguments."""
    steps: tuple[Step, ...]
    arguments: tuple[Argument, ...] = ()


PROJECT = Argument("project_id", "PostHog project id (the number in the project's URL).")
EXPORT = Argument("batch_export", "The export's name or id.")

PROMPTS: tuple[PromptSpec, ...] = (
    PromptSpec(
        name="diagnose-failing-export",
        title="Diagnose a failing export",
        description="Find out why one batch export fails and what would fix it, without changing anything.",
        goal="Find out why the PostHog batch export {batch_export} in project {project_id} is failing, and what would fix it.",
        arguments=(PROJECT, EXPORT),
        steps=(
            Step(
                "Find the export and its state with {tool} (name_contains narrows it).",
                ("batch-export-health", "batch-export-list"),
                essential=True,
            ),
            Step(
                "Read its recent runs with {tool}: which intervals failed, since when, how often.",
                ("batch-export-runs-list",),
            ),
            Step("Read the error messages with {tool}.", ("batch-export-errors", "batch-export-logs")),
            Step(
                "Check the destination's connection and permissions with {tool}.",
                ("batch-export-destination-check", "batch-export-test-step"),
            ),
            Step(
                "Explain the cause in plain words and the fix. Change nothing yet: if a retry would help, offer {tool}; it previews first.",
                ("batch-export-run-retry",),
            ),
        ),
    ),
    PromptSpec(
        name="find-and-fill-gaps",
        title="Find and fill gaps",
        description="List the data intervals an export failed or never ran, then backfill exactly those after approval.",
        goal="Find the data intervals that the PostHog batch export {batch_export} in project {project_id} failed or never exported{since}, and fill them.",
        arguments=(
            PROJECT,
            EXPORT,
            Argument("since", "How far back to look, e.g. 7 days or 2026-11-01.", required=False),
        ),
        steps=(
            Step("Find the export's id with {tool}.", ("batch-export-list", "batch-export-health")),
            Step(
                "List its failed and missing intervals with {tool}.",
                ("batch-export-gaps", "batch-export-runs-list"),
                essential=True,
            ),
            Step("Show the user the gaps as ranges, with how many runs each backfill creates."),
            Step(
                "Only after they agree, backfill them with {tool}; it previews the exact ranges first.",
                ("batch-export-gaps-backfill", "batch-export-backfill-create"),
            ),
            Step(
                "Follow the backfill with {tool} until it completes, then report.",
                ("batch-export-wait", "batch-export-backfill-get"),
                needs=("batch-export-gaps-backfill", "batch-export-backfill-create"),
            ),
        ),
    ),
    PromptSpec(
        name="weekly-health-report",
        title="Weekly health report",
        description="A short report on every batch export of a project: what failed this week, what is paused, what to do.",
        goal="Write a short weekly health report on the PostHog batch exports of project {project_id}.",
        arguments=(PROJECT,),
        steps=(
            Step(
                "Get every export's state with {tool} (state all).",
                ("batch-export-health", "batch-export-list"),
                essential=True,
            ),
            Step("For each failing export, read the errors with {tool}.", ("batch-export-errors", "batch-export-logs")),
            Step("Find intervals missed in the last 7 days with {tool}.", ("batch-export-gaps",)),
            Step(
                "Report: counts by state, each failing export with the cause and since when, paused exports, "
                "and the actions you recommend. Make no change."
            ),
        ),
    ),
    PromptSpec(
        name="rotate-destination-credentials",
        title="Change a destination's credentials safely",
        description="Test new destination credentials first, then change only those keys, with a preview.",
        goal="Change the destination credentials of the PostHog batch export {batch_export} in project {project_id} safely.",
        arguments=(PROJECT, EXPORT),
        steps=(
            Step("Read the export with {tool}; secret keys are never shown.", ("batch-export-get",), essential=True),
            Step(
                "If its destination names an integration, the credentials live there, shared: see which exports "
                "share it with {tool}.",
                ("batch-export-integrations",),
            ),
            Step(
                "To change shared credentials, create new ones with {tool} (it previews first), then move every "
                "export using the old integration with batch-export-update on_integration: one plan, one "
                "confirmation, after the destination's test steps pass.",
                ("batch-export-integration-create",),
            ),
            Step("Ask the user which credential keys change and for their new values. Never repeat a secret back."),
            Step(
                "Before changing anything, test the new keys with {tool} on this export (the keys to try, not saved).",
                ("batch-export-destination-check", "batch-export-test-step"),
            ),
            Step(
                "If every test step passes, change only those keys with {tool}; its preview marks them "
                "'(secret, changed)'. Show the preview and confirm only if the user agrees.",
                ("batch-export-update",),
                essential=True,
            ),
            Step("Check the next run succeeds with {tool}.", ("batch-export-wait", "batch-export-runs-list")),
        ),
    ),
)


class Prompts:
    """The prompts/list and prompts/get handlers for the tools one server lists."""

    def __init__(self, tool_names: Sequence[str], *, pinned_project: int | None = None) -> None:
        self.tools = set(tool_names)
        self.pinned_project = pinned_project
        self.offered = {p.name: p for p in PROMPTS if self._usable(p)}

    def _usable(self, prompt: PromptSpec) -> bool:
        return all(self._tool_for(step) is not None for step in prompt.steps if step.essential)

    def _tool_for(self, step: Step) -> str | None:
        return next((name for name in step.tools if name in self.tools), None)

    def _arguments(self, prompt: PromptSpec) -> list[Argument]:
        return [a for a in prompt.arguments if not (a.name == "project_id" and self.pinned_project is not None)]

    async def list_prompts(self, ctx: Any, params: types.PaginatedRequestParams | None) -> types.ListPromptsResult:
        return types.ListPromptsResult(
            prompts=[
                types.Prompt(
                    name=p.name,
                    title=p.title,
                    description=p.description,
                    arguments=[
                        types.PromptArgument(name=a.name, description=a.description, required=a.required)
                        for a in self._arguments(p)
                    ],
                )
                for p in self.offered.values()
            ]
        )

    async def get_prompt(self, ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
        prompt = self.offered.get(params.name)
        if prompt is None:
            raise MCPError(
                code=types.INVALID_PARAMS,
                message=f"Unknown prompt {echoed(params.name)!r}. Prompts here: {', '.join(self.offered) or 'none'}.",
            )
        return types.GetPromptResult(
            description=prompt.description,
            messages=[
                types.PromptMessage(
                    role="user",
                    content=types.TextContent(type="text", text=self.render(prompt, params.arguments or {})),
                )
            ],
        )

    def render(self, prompt: PromptSpec, given: dict[str, str]) -> str:
        expected = self._arguments(prompt)
        unknown = sorted(untrusted.clean_line(name) for name in set(given) - {a.name for a in prompt.arguments})
        missing = [a.name for a in expected if a.required and not str(given.get(a.name, "")).strip()]
        if unknown or missing:
            problems = [f"missing required argument(s): {', '.join(missing)}"] if missing else []
            shown = [echoed(name) for name in unknown[:MAX_UNKNOWN_SHOWN]]
            shown += [f"and {len(unknown) - MAX_UNKNOWN_SHOWN} more"] if len(unknown) > MAX_UNKNOWN_SHOWN else []
            problems += [f"unknown argument(s): {', '.join(shown)}"] if unknown else []
            allowed = ", ".join(a.name for a in expected)
            raise MCPError(
                code=types.INVALID_PARAMS,
                message=f"Prompt {prompt.name}: {'; '.join(problems)}. Arguments: {allowed or 'none'}.",
            )
        values = {a.name: _clean(given.get(a.name, "")) for a in prompt.arguments}
        if self.pinned_project is not None:
            values["project_id"] = str(self.pinned_project)
        if values.get("project_id") and not values["project_id"].isdigit():
            raise MCPError(
                code=types.INVALID_PARAMS,
                message=f"Prompt {prompt.name}: project_id must be a number (the one in the project's URL), "
                f"not {values['project_id']!r}.",
            )
        if "since" in values:
            values["since"] = f" since {values['since']}" if values["since"] else ""
        lines = [prompt.goal.format(**values), ""]
        number = 0
        for step in prompt.steps:
            tool = self._tool_for(step)
            if (step.tools and tool is None) or (step.needs and not self.tools & set(step.needs)):
                continue
            number += 1
            lines.append(f"{number}. {step.text.format(tool=tool)}")
        return "\n".join(lines)


def _clean(value: Any) -> str:
    """One line, bounded, cleaned of invisible and control characters (server/untrusted.py): an argument is a
    name or an id (often pasted from PostHog), never more instructions."""
    text = " ".join(untrusted.clean_line(str(value)).split())
    return text if len(text) <= MAX_ARGUMENT_LENGTH else text[: MAX_ARGUMENT_LENGTH - 1] + "…"
