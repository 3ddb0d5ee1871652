"""The one continuation shape (tools/continuation.py) and the result shaper's budget cut that uses it."""

from __future__ import annotations

from typing import Any

import pytest

from server.results import dumps, fit_budget
from tools import continuation
from tools.continuation import BUDGET, Resume, after_resume, read_resume, resume_cursor


def test_omitted_is_one_shape() -> None:
    assert continuation.omitted("t", {"a": 1}, "why", 3) == {
        "count": 3,
        "reason": "why",
        "call": {"tool": "t", "arguments": {"a": 1}},
    }
    assert "count" not in continuation.omitted("t", {}, "why")  # a cursor page does not know how many follow


def test_a_cursor_of_ours_round_trips_and_a_damaged_one_is_refused() -> None:
    cursor = resume_cursor("cD0yMDI2", "run-7", "2026-11-30T10:00:00Z")
    assert read_resume(cursor) == Resume(page="cD0yMDI2", after="run-7", key="2026-11-30T10:00:00Z")
    assert read_resume("cD0yMDI2") is None  # PostHog's own cursor passes through
    with pytest.raises(ValueError, match="omitted.call's cursor unchanged"):
        read_resume(cursor[:-6] + "!!!!!!")


def _runs(*stamps: str) -> list[dict[str, Any]]:
    return [{"id": f"r{i}", "created_at": stamp} for i, stamp in enumerate(stamps)]


def test_a_re_read_page_continues_after_the_item_shown() -> None:
    page = _runs("2026-11-30T12:00:00Z", "2026-11-30T11:00:00Z", "2026-11-30T10:00:00Z")
    assert after_resume(page, Resume(None, "r1", "2026-11-30T11:00:00Z"), "created_at", True) == page[2:]
    # The item moved off the page (a first page that newer items pushed on): placed by its moment, which
    # PostHog writes with microseconds only when they are not zero.
    moved = Resume(None, "gone", "2026-11-30T11:00:00.000001Z")
    assert after_resume(page, moved, "created_at", True) == page[1:]


def test_the_budget_cut_continues_from_the_item_after_the_last_shown() -> None:
    page = {"count": 500, "results": [{"id": i, "pad": "x" * 400} for i in range(100)]}
    asked: list[int] = []

    def resume(shown: int) -> dict[str, Any]:
        asked.append(shown)
        return continuation.omitted("batch-export-list", {"offset": shown}, "cut", 500 - shown)

    fitted = fit_budget({**page, "next": "https://posthog/…?offset=100"}, resume)
    shown = len(fitted["results"])
    assert 0 < shown < 100 and asked == [shown] and fitted["omitted"]["call"]["arguments"] == {"offset": shown}
    assert "next" not in fitted  # PostHog's link would skip what was cut
    assert len(dumps(fitted).encode()) <= BUDGET


def test_one_huge_item_is_shortened_visibly_rather_than_left_out() -> None:
    fitted = fit_budget({"results": [{"id": 1, "hogql_query": "SELECT " + "x" * 40_000}]}, lambda shown: None)
    assert len(dumps(fitted).encode()) <= BUDGET
    assert "40007 characters in all" in fitted["results"][0]["hogql_query"]
