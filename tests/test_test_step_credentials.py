"""A test step may not carry an export's stored credentials to another target (issue 13, item 8).

PostHog merges the export's stored secrets (or its integration) into the config a test step sends, so
`batch-export-test-step` with another bucket, host or project would test the stored credentials
against a place the caller chose. Through a real MCP client against the sandbox: such a step is refused
before anything is sent; the same step with credentials of its own, or on the stored target, goes through.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from posthog_sandbox import DEFAULT_API_KEY
from tests.support import MODES, SandboxControl, connect, data, running_app, settings_for, text


def _test_step_posts(control: Any) -> list[dict[str, Any]]:
    return [r for r in control.requests() if r["method"] == "POST" and "run_test_step" in r["path"]]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("export_name", "moved"),
    [
        ("Hourly events to S3", {"type": "AwsS3", "config": {"bucket_name": "attacker-bucket"}}),
        ("Events to BigQuery (backfilling)", {"type": "BigQuery", "config": {"project_id": "attacker-project"}}),
    ],
    ids=["s3-bucket", "bigquery-project"],
)
async def test_a_step_that_moves_the_target_without_credentials_is_refused(
    make_sandbox: Any,
    mode: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    export_name: str,
    moved: dict[str, Any],
) -> None:
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    request.addfinalizer(control.close)
    export_id = control.export_id(export_name)
    arguments = {"project_id": 1, "batch_export_id": export_id, "step": 0, "destination": moved}
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            control.clear_requests()
            refused = await client.call_tool("batch-export-test-step", arguments)
            assert refused.is_error
            message = text(refused)
            assert "stored credentials" in message and next(iter(moved["config"])) in message, message
            assert _test_step_posts(control) == [], "nothing may reach PostHog's test step"

            # On the stored target it runs as before.
            same = await client.call_tool("batch-export-test-step", {**arguments, "destination": None})
            assert data(same)["result"]["status"] in ("Passed", "Failed")
            assert len(_test_step_posts(control)) == 1


@pytest.mark.parametrize("mode", MODES)
async def test_a_moved_target_with_its_own_integration_goes_through(
    make_sandbox: Any, mode: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    sandbox = make_sandbox(generation=3)
    control = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)
    request.addfinalizer(control.close)
    export_id = control.export_id("Hourly events to S3")
    moved = {"type": "AwsS3", "config": {"bucket_name": "other-bucket"}, "integration_id": 999}
    arguments = {"project_id": 1, "batch_export_id": export_id, "step": 0, "destination": moved}
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            control.clear_requests()
            result = await client.call_tool("batch-export-test-step", arguments)
            assert "stored credentials" not in text(result)
            sent = _test_step_posts(control)
            assert len(sent) == 1
