"""batch-export-destination-check: every connection test step of a destination, in one call.

PostHog tests a destination one step at a time (list the steps, then run each); a person asks
"can PostHog reach it?". This runs the steps in order and stops at the first failure, since
later steps depend on the earlier ones (a bucket cannot be written if it cannot be found).
Like the single-step tools it changes nothing in PostHog, so it is not guarded.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, model_validator

from tools.answers import progress
from tools.declaration import WRITE, NotPossible, ToolSpec
from tools.destination_tests import TOOLS as STEP_TOOLS
from tools.destination_tests import TestStepNewParams, TestStepParams, run_step_on_export
from tools.destinations import TESTABLE_TYPES, DestinationInput, check_destination, untestable
from tools.exports import read_export
from tools.params import Interval, Params
from tools.request import build_request
from tools.upstream import Upstream

_STEP_ON_EXPORT = next(spec for spec in STEP_TOOLS if spec.name == "batch-export-test-step")
_STEP_ON_NEW = next(spec for spec in STEP_TOOLS if spec.name == "batch-export-test-step-new")


class CheckParams(Params):
    batch_export_id: UUID | None = Field(None, description="An existing export to check.")
    destination: DestinationInput | None = Field(
        None, description="A proposed destination (as in batch-export-create), or keys to try."
    )
    name: str = Field("destination check", min_length=1, max_length=255, description="Name (proposed only).")
    interval: Interval = Field("hour", description="Interval (proposed only).")

    @model_validator(mode="after")
    def _one_target(self) -> CheckParams:
        if self.batch_export_id is None and self.destination is None:
            raise ValueError("give batch_export_id (an existing export) or destination (a proposed one)")
        check_destination(self.destination, partial=self.batch_export_id is not None)
        if self.destination is not None and self.destination.type not in TESTABLE_TYPES:
            raise ValueError(_untestable(self.destination.type))
        return self


class CheckAnswer(BaseModel):
    model_config = ConfigDict(extra="allow")

    destination_type: str
    passed: bool
    steps: list[dict[str, Any]]


def _untestable(kind: Any) -> str:
    return untestable(kind)


async def check_destination_steps(upstream: Upstream, params: CheckParams, request: Any = None) -> dict[str, Any]:
    if params.batch_export_id is not None:
        export = await read_export(upstream, params)
        kind = (export.get("destination") or {}).get("type")
    else:
        assert params.destination is not None
        kind = params.destination.type
    if kind not in TESTABLE_TYPES:
        raise NotPossible(_untestable(kind) + " Nothing was sent to test it.")
    described = await upstream.request("GET", "batch_exports/test/", query={"destination": kind})
    names = [s.get("name") for s in (described or {}).get("steps") or [] if isinstance(s, dict)]
    steps: list[dict[str, Any]] = []
    passed = True
    for index, name in enumerate(names):
        await progress.report(index, len(names), f"step {index + 1} of {len(names)}: {name}")
        if not passed:
            steps.append({"step": index, "name": name, "status": "not run"})
            continue
        if params.batch_export_id is not None:
            one = TestStepParams(
                project_id=params.project_id,
                batch_export_id=params.batch_export_id,
                step=index,
                destination=params.destination,
            )
            answer = await run_step_on_export(upstream, one, build_request(_STEP_ON_EXPORT, one))
        else:
            assert params.destination is not None  # the validator requires one without batch_export_id
            new = TestStepNewParams(
                project_id=params.project_id,
                name=params.name,
                interval=params.interval,
                step=index,
                destination=params.destination,
            )
            answer = await upstream.send(build_request(_STEP_ON_NEW, new))
        result = (answer or {}).get("result") or {}
        ok = str(result.get("status", "")).lower() == "passed"
        step: dict[str, Any] = {"step": index, "name": name, "status": "passed" if ok else "failed"}
        if result.get("message"):
            step["message"] = result["message"]
        steps.append(step)
        passed = ok
    return {"destination_type": kind, "passed": passed and bool(names), "steps": steps}


TOOLS = [
    ToolSpec(
        name="batch-export-destination-check",
        title="Check a destination",
        description="Every test step of an export's destination or a proposed one, to the first failure.",
        method="POST",
        path="batch_exports/run_test_step_new/",
        scope=WRITE,
        params=CheckParams,
        output=CheckAnswer,
        handler=check_destination_steps,
        read_only=False,
        destructive=False,
        idempotent=True,
        open_world=True,
        guarded=False,
    ),
]
