"""What a model naturally sends is either made to work or refused before anyone is asked to confirm."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from tests.support import SandboxControl, confirm_with_token, connect, data, running_app, settings_for, text


def _day(control: SandboxControl, days_ago: int) -> datetime:
    now = control.now()
    return now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=days_ago)


@asynccontextmanager
async def session(sandbox: Any, tmp_path: Path, **overrides: Any) -> AsyncIterator[Any]:
    from posthog_sandbox import DEFAULT_API_KEY

    settings = settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path, **overrides)
    async with running_app(settings) as app, connect(app) as client:
        yield client


async def test_backfill_bounds_take_the_form_this_posthog_accepts(
    sandbox: Any, control: SandboxControl, tmp_path: Path
) -> None:
    daily = control.export_id("Daily events to Snowflake")
    hourly = control.export_id("Hourly events to S3")
    start, end = _day(control, 3), _day(control, 2)
    control.clear_requests()
    # A model sends midnight datetimes for a daily export and bare dates for an hourly one: both work.
    async with session(sandbox, tmp_path) as client:
        for export_id, bounds in (
            (daily, (start.isoformat(), end.isoformat())),
            (hourly, (start.date().isoformat(), end.date().isoformat())),
        ):
            arguments = {"project_id": 1, "batch_export_id": export_id, "start_at": bounds[0], "end_at": bounds[1]}
            assert (await confirm_with_token(client, "batch-export-backfill-create", arguments))["backfill_id"]
    assert len(control.writes()) == 2


async def test_a_daily_backfill_from_mid_day_is_refused_before_confirmation(
    sandbox: Any, control: SandboxControl, generation: int, tmp_path: Path
) -> None:
    daily = control.export_id("Daily events to Snowflake")
    arguments = {
        "project_id": 1,
        "batch_export_id": daily,
        "start_at": (_day(control, 3) + timedelta(hours=5)).isoformat(),
        "end_at": _day(control, 2).isoformat(),
    }
    async with session(sandbox, tmp_path) as client:
        result = await client.call_tool("batch-export-backfill-create", arguments)
    if generation == 3:
        assert result.is_error and "give dates such as" in text(result) and "Nothing was changed" in text(result)
    else:  # the docs-page generation takes datetimes for every interval
        assert data(result)["status"] == "confirmation_required"
    assert control.writes() == []


async def test_runs_list_stays_small_and_continues_after_the_last_run_shown(
    sandbox: Any, control: SandboxControl, tmp_path: Path
) -> None:
    hourly = control.export_id("Hourly events to S3")
    base = {"project_id": 1, "batch_export_id": hourly, "after": "-30d"}
    async with session(sandbox, tmp_path) as client:
        first = data(await client.call_tool("batch-export-runs-list", base))
        assert len(first["results"]) == 20 and "next" not in first
        assert all("batch_export" not in run and None not in run.values() for run in first["results"])
        call = first["omitted"]["call"]
        # The same window (as the absolute time -30d meant), from after the last run shown.
        assert call["tool"] == "batch-export-runs-list" and set(call["arguments"]) == {*base, "cursor"}
        assert call["arguments"]["after"].endswith("Z") and call["arguments"]["cursor"]
        got = [r["id"] for r in first["results"]]
        for _ in range(10):  # at most 100 runs a call, fewer where the answer budget cuts them
            following = data(await client.call_tool("batch-export-runs-list", {**call["arguments"], "limit": 100}))
            got += [r["id"] for r in following["results"]]
            if len(got) >= 100 or "omitted" not in following:
                break
            call = following["omitted"]["call"]
    page = control.api("GET", f"1/batch_exports/{hourly}/runs/", params={"after": "-30d"}).json()["results"]
    # The 21st run of PostHog's first page comes next: none of the 80 the first answer cut is skipped.
    assert got[:100] == [r["id"] for r in page]


async def test_interval_filters_choose_interval_ordering(sandbox: Any, control: SandboxControl, tmp_path: Path) -> None:
    hourly = control.export_id("Hourly events to S3")
    start = _day(control, 2)
    window = {
        "project_id": 1,
        "batch_export_id": hourly,
        "start": start.isoformat(),
        "end": (start + timedelta(hours=3)).isoformat(),
        "limit": 100,
    }
    async with session(sandbox, tmp_path) as client:
        runs = data(await client.call_tool("batch-export-runs-list", window))["results"]
        clash = await client.call_tool("batch-export-runs-list", {**window, "ordering": "-created_at"})
    assert 1 <= len(runs) <= 4
    assert all(datetime.fromisoformat(r["data_interval_start"].replace("Z", "+00:00")) >= start for r in runs)
    assert clash.is_error and "start/end filter by data interval" in text(clash)


async def test_logs_take_relative_times(sandbox: Any, control: SandboxControl, generation: int, tmp_path: Path) -> None:
    daily = control.export_id("Daily events to Snowflake")
    arguments = {"project_id": 1, "batch_export_id": daily, "after": "-10d", "level": ["ERROR"], "limit": 5}
    async with session(sandbox, tmp_path) as client:
        result = await client.call_tool("batch-export-logs", arguments)
    if generation == 1:  # the docs-page generation serves logs to legacy keys only, and says so
        assert result.is_error and "legacy" in text(result)
        return
    rows = data(result)["results"]
    assert rows and all(r["level"] == "ERROR" and "log_source_id" not in r for r in rows)


async def test_destination_integration_copied_from_get_is_accepted(
    sandbox: Any, tmp_path: Path, generation: int
) -> None:
    if generation == 1:
        return  # the docs-page generation keeps S3 credentials inline, without integrations
    destination = {
        "type": "AwsS3",
        "integration": 101,
        "config": {"bucket_name": "b", "region": "us-east-1", "prefix": "p/"},
    }
    arguments = {"project_id": 1, "name": "From a copied integration", "interval": "hour", "destination": destination}
    async with session(sandbox, tmp_path) as client:
        created = await confirm_with_token(client, "batch-export-create", arguments)
    assert created["destination"]["integration"] == 101


async def test_destination_type_change_is_refused_before_confirmation_on_newer_posthog(
    sandbox: Any, control: SandboxControl, generation: int, tmp_path: Path
) -> None:
    snowflake = control.export_id("Daily events to Snowflake")
    arguments = {
        "project_id": 1,
        "batch_export_id": snowflake,
        "destination": {"type": "BigQuery", "config": {"dataset_id": "d"}},
    }
    async with session(sandbox, tmp_path) as client:
        result = await client.call_tool("batch-export-update", arguments)
    if generation == 3:
        assert result.is_error and "cannot change a destination's type" in text(result)
    else:  # the docs-page generation allows it
        assert data(result)["status"] == "confirmation_required"


async def test_pinned_project_accepts_its_own_id(sandbox: Any, tmp_path: Path) -> None:
    async with session(sandbox, tmp_path, project_id=1) as client:
        assert data(await client.call_tool("batch-export-list", {"project_id": 1}))["results"]


async def test_levels_outside_the_schema_are_refused_with_the_allowed_values(sandbox: Any, tmp_path: Path) -> None:
    """The advertised schema is the contract: a bare or lower-case level is refused, naming what is allowed."""
    async with session(sandbox, tmp_path) as client:
        result = await client.call_tool(
            "batch-export-logs",
            {"project_id": 1, "batch_export_id": "e3e70682-c209-4cac-a29f-6fbed82c07cd", "level": ["error"]},
        )
    assert result.is_error and "'ERROR'" in text(result) and "Nothing was sent" in text(result)
