"""The gaps rule at the edge of now, on a fake PostHog (the sandbox's clock cannot be set to the
wall clock the tool reads): an interval that just ended is a gap once its run failed, and not yet
while PostHog has had no time to create its run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

from tools.answers.gaps import GapsParams, find_gaps
from tools.upstream import Request

EXPORT = UUID("0190f4b2-6c1e-7c3a-9a51-2b1f0e7a1d11")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


class FakePostHog:
    """An hourly export whose run for each interval is given; no backfills."""

    def __init__(self, runs: list[dict[str, Any]]) -> None:
        self.runs = runs

    async def send(self, request: Request) -> Any:
        return {"id": str(EXPORT), "name": "hourly", "interval": "hour", "paused": False, "created_at": "2020-01-01"}

    async def request(self, method: str, path: str, *, query: Any = None, json: Any = None) -> Any:
        if path.endswith("/runs/"):
            return {"results": self.runs, "next": None}
        return {"results": []}


def _run(start: datetime, status: str) -> dict[str, Any]:
    return {
        "id": f"run-{start:%H}",
        "status": status,
        "data_interval_start": _iso(start),
        "data_interval_end": _iso(start + timedelta(hours=1)),
        "created_at": _iso(start + timedelta(hours=1, minutes=1)),
    }


NOW = datetime(2026, 12, 2, 0, 8, tzinfo=UTC)  # 8 minutes after the last hourly interval ended
LAST = datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
PARAMS = GapsParams(project_id=1, batch_export_id=EXPORT, start="2026-12-01T18:00:00Z")
SETTLED = [_run(LAST - timedelta(hours=h), "Completed") for h in range(1, 6)]


async def test_a_just_ended_interval_whose_run_failed_is_a_gap() -> None:
    found = await find_gaps(FakePostHog([*SETTLED, _run(LAST, "Failed")]), PARAMS, now=NOW)
    assert found["ranges"] == [
        {"start_at": "2026-12-01T23:00:00Z", "end_at": "2026-12-02T00:00:00Z", "runs": 1, "failed": 1}
    ]


async def test_a_just_ended_interval_without_a_run_is_not_a_gap_yet() -> None:
    assert (await find_gaps(FakePostHog(SETTLED), PARAMS, now=NOW))["ranges"] == []
    later = await find_gaps(FakePostHog(SETTLED), PARAMS, now=NOW + timedelta(minutes=10))
    assert later["ranges"] == [
        {"start_at": "2026-12-01T23:00:00Z", "end_at": "2026-12-02T00:00:00Z", "runs": 1, "missing": 1}
    ]
