"""The /_sandbox/ test controls: clock, faults, request log, state, throttle, reset."""

from __future__ import annotations

import httpx
import pytest

from .conftest import Api, assert_error


def test_clock(api3: Api) -> None:
    assert api3.control("GET", "clock") == {"now": "2025-06-15T12:00:00Z"}
    assert api3.advance(90.5) == "2025-06-15T12:01:30.500000Z"
    assert api3.control("POST", "clock/set", {"now": "2025-06-16T00:00:00Z"}) == {"now": "2025-06-16T00:00:00Z"}
    response = api3.http.post(f"{api3.base_url}/_sandbox/clock/set", json={"now": "2025-06-01T00:00:00Z"})
    assert response.status_code == 400
    assert api3.http.post(f"{api3.base_url}/_sandbox/clock/advance", json={"seconds": -1}).status_code == 400


def test_requests_log(api3: Api) -> None:
    api3.control("DELETE", "requests")
    api3.get("?limit=1")
    api3.post("", json={})
    api3.control("GET", "clock")
    requests = api3.control("GET", "requests")["requests"]
    assert [(r["method"], r["path"], r["query"], r["status"]) for r in requests] == [
        ("GET", "/api/projects/1/batch_exports/", "limit=1", 200),
        ("POST", "/api/projects/1/batch_exports/", "", 400),
    ]
    assert requests[0]["time"].endswith("Z")
    assert api3.control("DELETE", "requests") == {"requests": []}


@pytest.mark.parametrize("status", [500, 502, 503])
def test_fault_status(api3: Api, status: int) -> None:
    api3.control("POST", "faults", {"status": status})
    assert_error(api3.get(""), status, "server_error", "error", "A server error occurred.")
    assert api3.get("").status_code == 200  # count defaults to 1


def test_fault_429_retry_after_and_matching(api3: Api) -> None:
    api3.control(
        "POST", "faults", {"status": 429, "retry_after": "7", "method": "POST", "path_contains": "/pause", "count": 2}
    )
    assert api3.get("").status_code == 200
    export = api3.export_named("Hourly events to S3")["id"]
    for _ in range(2):
        response = api3.post(f"{export}/pause/")
        assert response.status_code == 429 and response.headers["retry-after"] == "7"
        assert response.json() == {
            "type": "throttled_error",
            "code": "throttled",
            "detail": "Request was throttled. Expected available in 7 seconds.",
            "attr": None,
        }
    assert api3.post(f"{export}/pause/").status_code == 200
    api3.control("POST", "faults", {"status": 429})
    response = api3.get("")
    assert response.status_code == 429 and "retry-after" not in response.headers


def test_fault_html_malformed_latency_and_until_cleared(api3: Api) -> None:
    api3.control("POST", "faults", {"status": 502, "html": True})
    response = api3.get("")
    assert response.status_code == 502 and response.headers["content-type"].startswith("text/html")
    api3.control("POST", "faults", {"malformed_json": True})
    response = api3.get("")
    assert response.status_code == 200
    with pytest.raises(ValueError):
        response.json()
    api3.control("POST", "faults", {"latency_ms": 300, "count": -1})
    for _ in range(2):
        response = api3.get("")
        assert response.status_code == 200 and response.elapsed.total_seconds() >= 0.3
    assert api3.control("DELETE", "faults") == {"faults": []}
    assert api3.get("").elapsed.total_seconds() < 0.3


def test_fault_drop_connection(api3: Api) -> None:
    api3.control("POST", "faults", {"drop_connection": True})
    with pytest.raises(httpx.TransportError):
        httpx.get(api3.url(""), headers={"Authorization": f"Bearer {api3.key}"}, timeout=5)
    assert api3.get("").status_code == 200
    requests = api3.control("GET", "requests")["requests"]
    assert [r["status"] for r in requests] == [None, 200], requests


def test_faults_never_touch_controls(api3: Api) -> None:
    api3.control("POST", "faults", {"status": 500, "count": -1})
    assert api3.control("GET", "clock")["now"]
    assert api3.http.post(f"{api3.base_url}/_sandbox/faults", json={"bogus": 1}).status_code == 400


def test_state_and_reset(api3: Api) -> None:
    state = api3.state()
    assert {"now", "generation", "exports", "runs", "backfills", "log_count", "integrations"} <= set(state)
    assert len(state["exports"]) == 5 and state["log_count"] > 0
    assert {i["id"]: i["kind"] for i in state["integrations"] if i["team_id"] == 1} == {
        101: "aws-s3",
        102: "snowflake",
        103: "postgresql",
        104: "google-cloud-service-account",
        105: "databricks",
        106: "azure-blob",
        107: "s3-compatible",
        108: "aws-redshift",
        109: "aws-s3",
        110: "databricks",
        111: "snowflake",  # "B", to rotate Snowflake exports onto
    }
    export = api3.export_named("Hourly events to S3")["id"]
    api3.delete(f"{export}/")
    assert api3.export_named("Hourly events to S3")["deleted"] is True
    api3.control("POST", "reset")
    assert api3.export_named("Hourly events to S3")["deleted"] is False
    assert api3.control("GET", "clock")["now"] == "2025-06-15T12:00:00Z"


def test_outcome_control_validation(api3: Api) -> None:
    response = api3.http.post(f"{api3.base_url}/_sandbox/exports/nope/outcome", json={"outcome": "succeed"})
    assert response.status_code == 404
    response = api3.http.post(f"{api3.base_url}/_sandbox/exports/nope/outcome", json={"outcome": "explode"})
    assert response.status_code == 400


def test_empty_sandbox(start) -> None:  # noqa: ANN001
    api = start(3, seed=False)
    assert api.get("").json() == {"count": 0, "next": None, "previous": None, "results": []}
    assert len(api.state()["integrations"]) == 22


def test_speed_makes_the_clock_run(start) -> None:  # noqa: ANN001
    import time

    api = start(3, speed=3600.0)
    first = api.control("GET", "clock")["now"]
    time.sleep(0.2)
    second = api.control("GET", "clock")["now"]
    assert second > first
    export = api.export_named("Hourly events to S3")["id"]
    time.sleep(1.1)  # > one simulated hour: the next scheduled run exists
    latest = api.get(f"{export}/runs/").json()["results"][0]
    assert latest["data_interval_end"] > "2025-06-15T12:00:00Z"
