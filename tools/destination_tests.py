"""Destination tests: check that PostHog can reach a warehouse or bucket before exporting.

They reach outside PostHog (openWorldHint) but change nothing there, so they are not guarded.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from tools.exports import EXPORT_PATH, DestinationInput, check_destination
from tools.models import DestinationType, ExportParams, Interval, Params, TestStepResult, TestSteps
from tools.spec import READ, WRITE, ToolSpec

_GEN1_NOTE = " Older PostHog allows this only to keys with scope * (INTERNAL)."


class DestinationTestParams(Params):
    destination: DestinationType = Field(description="Destination type to describe the test steps of.")


class _StepFields(Params):
    name: str = Field(min_length=1, max_length=255, description="Export name.")
    interval: Interval = Field(description="Export interval.")
    step: int = Field(0, ge=0, le=20, description="Index of the test step to run (from batch-export-destination-test).")


class TestStepNewParams(_StepFields):
    destination: DestinationInput = Field(description="Destination to test, as for batch-export-create.")

    @model_validator(mode="after")
    def _destination_is_complete(self) -> TestStepNewParams:
        check_destination(self.destination, partial=False)
        return self


class TestStepParams(_StepFields, ExportParams):
    destination: DestinationInput = Field(description="Type and config keys to try; stored secrets are reused.")

    @model_validator(mode="after")
    def _destination_keys_are_known(self) -> TestStepParams:
        check_destination(self.destination, partial=True)
        return self


_TEST_STEP = dict(
    method="POST",
    scope=WRITE,
    output=TestStepResult,
    read_only=False,
    destructive=False,
    idempotent=True,
    open_world=True,
    guarded=False,
    internal_on_gen1=True,
)

TOOLS = [
    ToolSpec(
        name="batch-export-destination-test",
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
        internal_on_gen1=True,
    ),
    ToolSpec(
        name="batch-export-run-test-step",
        title="Test an export's destination",
        description="Run one connection test step against an existing export's destination." + _GEN1_NOTE,
        path=EXPORT_PATH + "run_test_step/",
        params=TestStepParams,
        **_TEST_STEP,
    ),
    ToolSpec(
        name="batch-export-run-test-step-new",
        title="Test a new destination",
        description="Run one connection test step for a destination before creating the export." + _GEN1_NOTE,
        path="batch_exports/run_test_step_new/",
        params=TestStepNewParams,
        **_TEST_STEP,
    ),
]
