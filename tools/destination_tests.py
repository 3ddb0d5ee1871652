"""Destination tests: check that PostHog can reach a warehouse or bucket before exporting.

They reach outside PostHog (openWorldHint) but change nothing there, so they are not guarded.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field, model_validator

from tools.exports import EXPORT_PATH, DestinationInput, check_destination, read_export
from tools.models import DestinationType, ExportParams, Interval, Params, TestStepResult, TestSteps
from tools.spec import READ, WRITE, ToolSpec, Upstream, path_for

_GEN1_NOTE = " Older PostHog allows this only to keys with scope * (INTERNAL)."


class DestinationTestParams(Params):
    destination: DestinationType = Field(description="Destination type to describe the test steps of.")


_STEP_HELP = "Index of the test step to run (from batch-export-test-steps)."


class TestStepNewParams(Params):
    name: str = Field(min_length=1, max_length=255, description="Export name.")
    interval: Interval = Field(description="Export interval.")
    step: int = Field(0, ge=0, le=20, description=_STEP_HELP)
    destination: DestinationInput = Field(description="Destination to test, as for batch-export-create.")

    @model_validator(mode="after")
    def _destination_is_complete(self) -> TestStepNewParams:
        check_destination(self.destination, partial=False)
        return self


class TestStepParams(ExportParams):
    step: int = Field(0, ge=0, le=20, description=_STEP_HELP)
    destination: DestinationInput | None = Field(
        None, description="Config keys to try instead of the stored ones (default: the export's own)."
    )

    @model_validator(mode="after")
    def _destination_keys_are_known(self) -> TestStepParams:
        check_destination(self.destination, partial=True)
        return self


async def run_step_on_export(upstream: Upstream, params: TestStepParams) -> Any:
    """PostHog wants the export's name, interval and destination again; take them from the export,
    so a model only says which step (and, optionally, which config keys to try)."""
    export = await read_export(upstream, params.batch_export_id)
    stored = export.get("destination") or {}
    destination: dict[str, Any] = {"type": stored.get("type"), "config": {}}
    if stored.get("integration") is not None:
        destination["integration_id"] = stored["integration"]
    if params.destination is not None:
        destination.update(params.destination.model_dump(mode="json", exclude_none=True))
    body = {
        "name": export.get("name"),
        "interval": export.get("interval"),
        "destination": destination,
        "step": params.step,
    }
    path = path_for(EXPORT_PATH + "run_test_step/", batch_export_id=params.batch_export_id)
    return await upstream.request("POST", path, json=body)


_TEST_STEP = dict(
    method="POST",
    scope=WRITE,
    output=TestStepResult,
    read_only=False,
    destructive=False,
    idempotent=True,
    open_world=True,
    guarded=False,
)

TOOLS = [
    ToolSpec(
        name="batch-export-test-steps",
        title="List a destination's test steps",
        description="List the connection test steps PostHog runs for a destination type." + _GEN1_NOTE,
        method="GET",
        path="batch_exports/test/",
        scope=READ,
        params=DestinationTestParams,
        output=TestSteps,
        query=("destination",),
        read_only=True,
        destructive=False,
        idempotent=True,
        open_world=True,
    ),
    ToolSpec(
        name="batch-export-test-step",
        title="Test an export's destination",
        description="Run one connection test step against an existing export's stored destination." + _GEN1_NOTE,
        path=EXPORT_PATH + "run_test_step/",
        params=TestStepParams,
        handler=run_step_on_export,
        **_TEST_STEP,
    ),
    ToolSpec(
        name="batch-export-test-step-new",
        title="Test a new destination",
        description="Run one connection test step for a destination before creating the export." + _GEN1_NOTE,
        path="batch_exports/run_test_step_new/",
        params=TestStepNewParams,
        **_TEST_STEP,
    ),
]
