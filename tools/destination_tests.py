"""Destination tests: check that PostHog can reach a warehouse or bucket before exporting.

They reach outside PostHog (openWorldHint) but change nothing there, so they are not guarded.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from tools.declaration import READ, WRITE, NotPossible, ToolSpec
from tools.destinations import (
    SECRET_CONFIG_KEYS,
    TESTABLE_TYPES,
    DestinationInput,
    check_destination,
    moved_targets,
    untestable,
)
from tools.echo import echoed
from tools.exports import EXPORT_PATH, is_newer_posthog, read_export
from tools.models import TestStepResult, TestSteps
from tools.params import ExportParams, Interval, Params
from tools.refusals import type_change
from tools.upstream import Request, Upstream

TestableType = Literal["AwsS3", "S3Compatible", "BigQuery", "Snowflake", "Databricks", "AzureBlob"]
assert get_args(TestableType) == TESTABLE_TYPES

_GEN1_NOTE = " Older PostHog allows this only to keys with scope * (INTERNAL)."


def _testable(value: Any) -> Any:
    """Before the enum check, so that Postgres gets a sentence, not a list of allowed values."""
    if isinstance(value, str) and value not in TESTABLE_TYPES:
        raise ValueError(untestable(value))
    return value


class DestinationTestParams(Params):
    destination: TestableType = Field(description="Destination type to describe the test steps of.")

    @field_validator("destination", mode="before")
    @classmethod
    def _only_testable(cls, value: Any) -> Any:
        return _testable(value)


_STEP_HELP = "Index of the test step to run (from batch-export-test-steps)."


class TestStepNewParams(Params):
    name: str = Field(min_length=1, max_length=255, description="Export name.")
    interval: Interval = Field(description="Export interval.")
    step: int = Field(0, ge=0, le=20, description=_STEP_HELP)
    destination: DestinationInput = Field(description="Destination to test, as for batch-export-create.")

    @model_validator(mode="after")
    def _destination_is_complete(self) -> TestStepNewParams:
        _testable(self.destination.type)
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


def _refuse_credentials_elsewhere(stored: dict[str, Any], proposed: DestinationInput) -> None:
    """A test step that points the stored destination somewhere else, without credentials of its own,
    would carry the export's stored credentials (or its integration's) there: refuse it before sending."""
    moved = moved_targets(stored.get("config") or {}, proposed.config)
    if not moved:
        return
    own_secret = any(key in SECRET_CONFIG_KEYS for key in proposed.config)
    own_integration = proposed.integration_id is not None and proposed.integration_id != stored.get("integration")
    if own_secret or own_integration:
        return
    changes = ", ".join(
        f"{key} {echoed(repr(old))} -> {echoed(repr(new))}" for key, (old, new) in sorted(moved.items())
    )
    raise NotPossible(
        f"This test step moves the destination ({changes}) but gives no credentials for the new target, so PostHog "
        "would send the export's stored credentials there. Give the new target's credentials (or integration_id) "
        "too, or test it as a new destination with batch-export-test-step-new."
    )


async def run_step_on_export(upstream: Upstream, params: TestStepParams, request: Request) -> Any:
    """PostHog wants the export's name, interval and destination again; take them from the export,
    so a model only says which step (and, optionally, which config keys to try)."""
    export = await read_export(upstream, params)
    stored = export.get("destination") or {}
    # PostHog validates the body against the export before it looks for the step (docs/posthog-api.md,
    # "Destination tests"), so the type change is what it would answer first.
    if params.destination is not None and params.destination.type != stored.get("type"):
        raise NotPossible(type_change(stored.get("type"), params.destination.type, by_posthog=is_newer_posthog(export)))
    if stored.get("type") not in TESTABLE_TYPES:
        raise NotPossible(
            f"Export {export.get('name')!r} sends to {stored.get('type')}: {untestable(stored.get('type'))}"
        )
    if params.destination is not None:
        _refuse_credentials_elsewhere(stored, params.destination)
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
    return await upstream.send(dataclasses.replace(request, body=body))


def _test_step_tool(
    name: str, title: str, description: str, path: str, params: type[Params], handler: Any = None
) -> ToolSpec:
    """A test step reaches outside PostHog but changes nothing there: a write by method, never guarded."""
    return ToolSpec(
        name=name,
        title=title,
        description=description,
        method="POST",
        path=path,
        scope=WRITE,
        params=params,
        output=TestStepResult,
        handler=handler,
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
    _test_step_tool(
        "batch-export-test-step",
        "Test an export's destination",
        "Run one connection test step against an existing export's stored destination." + _GEN1_NOTE,
        EXPORT_PATH + "run_test_step/",
        TestStepParams,
        handler=run_step_on_export,
    ),
    _test_step_tool(
        "batch-export-test-step-new",
        "Test a new destination",
        "Run one connection test step for a destination before creating the export." + _GEN1_NOTE,
        "batch_exports/run_test_step_new/",
        TestStepNewParams,
    ),
]
