"""Log rows and their filters (reference 10); destination test endpoints (reference 9.11)."""

from __future__ import annotations

import pytest

from .conftest import Api, assert_validation, logs_key, s3_body


def _logs(api: Api, export: str, query: str = "") -> dict:
    response = api.get(f"{export}/logs/{query}", key=logs_key(api))
    assert response.status_code == 200, response.text
    return response.json()


def test_logs_envelope_order_and_limit(api: Api) -> None:
    export = api.export_named("Hourly events to S3")["id"]
    page = _logs(api, export)
    assert set(page) == {"count", "next", "previous", "results"}
    assert page["count"] == 50 and len(page["results"]) == 50  # default limit is also the query limit
    stamps = [r["timestamp"] for r in page["results"]]
    assert stamps == sorted(stamps, reverse=True)
    row = page["results"][0]
    assert set(row) == {"log_source_id", "instance_id", "timestamp", "level", "message"}
    assert row["log_source_id"] == export
    # the 12:00 tick's run has just been created (Starting, no rows yet); the 11:00 one finished at 11:02
    assert row["message"].startswith(
        "Batch export for range 2025-06-15 10:00:00+00:00 - 2025-06-15 11:00:00+00:00 finished successfully with "
    )
    assert row["timestamp"] == "2025-06-15T11:02:00Z"
    starting = page["results"][1]
    assert (
        starting["message"] == "Starting batch export for range 2025-06-15 10:00:00+00:00 - 2025-06-15 11:00:00+00:00"
    )
    assert starting["timestamp"] == "2025-06-15T11:00:30Z"
    assert starting["instance_id"] == row["instance_id"] != page["results"][2]["instance_id"]
    assert len(_logs(api, export, "?limit=500")["results"]) == 500
    for value, detail, code in [
        ("0", "Ensure this value is greater than or equal to 1.", "min_value"),
        ("501", "Ensure this value is less than or equal to 500.", "max_value"),
        ("x", "A valid integer is required.", "invalid_input"),
    ]:
        assert_validation(api.get(f"{export}/logs/?limit={value}", key=logs_key(api)), detail, "limit", code)


def test_logs_filters(api: Api) -> None:
    export = api.export_named("Daily events to Snowflake")["id"]
    errors = _logs(api, export, "?level=ERROR&limit=500")["results"]
    assert errors and {r["level"] for r in errors} == {"ERROR"}
    both_comma = _logs(api, export, "?level=error,info&limit=500")["results"]
    both_repeat = _logs(api, export, "?level=ERROR&level=INFO&limit=500")["results"]
    assert both_comma == both_repeat and len(both_comma) > len(errors)
    search = _logs(api, export, "?search=INCORRECT%20USERNAME&limit=500")["results"]
    assert len(search) == len(errors)
    newest = errors[0]
    assert _logs(api, export, f"?instance_id={newest['instance_id']}")["count"] == 2
    after = _logs(api, export, f"?after={newest['timestamp']}&limit=500")["results"]
    assert all(r["timestamp"] > newest["timestamp"] for r in after)
    before = _logs(api, export, f"?before={newest['timestamp']}&limit=500")["results"]
    assert newest not in before and all(r["timestamp"] < newest["timestamp"] for r in before)
    assert_validation(
        api.get(f"{export}/logs/?after=never", key=logs_key(api)),
        "Datetime has wrong format. Use one of these formats instead: YYYY-MM-DDThh:mm[:ss[.uuuuuu]][+HH:MM|-HH:MM|Z].",
        "after",
    )


def test_logs_of_deleted_export_is_404(api: Api) -> None:
    export = api.export_named("Hourly events to S3")["id"]
    api.delete(f"{export}/")
    assert api.get(f"{export}/logs/", key=logs_key(api)).status_code == 404


def test_destination_test_descriptions(api: Api, gen: int) -> None:
    key = "phx_star"
    response = api.get("test/", key=key)
    assert response.status_code == 400 and response.content == b""
    response = api.get("test/?destination=Postgres", key=key)
    assert response.status_code == 404 and response.content == b""
    s3 = "AwsS3" if gen == 3 else "S3"
    steps = api.get(f"test/?destination={s3}", key=key).json()["steps"]
    assert "Check S3 bucket exists" in [s["name"] for s in steps]
    assert all(s["result"] is None for s in steps)
    if gen == 3:
        assert steps[0]["name"] == "Ensure we can assume provided AWS role"
        assert api.get("test/?destination=S3", key=key).status_code == 404


def test_run_test_step_new(api: Api, gen: int) -> None:
    key = "phx_star"
    body = {**s3_body(gen), "step": 0}
    response = api.post("run_test_step_new/", json=body, key=key)
    assert response.status_code == 200, response.text
    step = response.json()
    assert set(step) == {"name", "description", "result"}
    assert step["result"] == {"status": "Passed", "message": None}
    bad = s3_body(gen)
    del bad["destination"]["config"]["bucket_name"]
    assert_validation(
        api.post("run_test_step_new/", json=bad, key=key),
        "Configuration missing required field: 'bucket_name'",
        "destination__non_field_errors" if gen == 3 else "destination",
    )
    assert api.post("run_test_step_new/", json={**s3_body(gen), "step": 9}, key=key).status_code == 500


def test_run_test_step_uses_stored_config_and_outcome(api: Api) -> None:
    key = "phx_star"
    export = api.export_named("Daily events to Snowflake")
    body = {
        "name": export["name"],
        "interval": "day",
        "step": 0,
        "destination": {"type": "Snowflake", "config": {"database": "ANALYTICS"}},
    }
    response = api.post(f"{export['id']}/run_test_step/", json=body, key=key)
    assert response.status_code == 200, response.text
    result = response.json()["result"]
    assert result["status"] == "Failed" and "Incorrect username or password" in result["message"]
    assert "sandbox-canary" not in response.text


@pytest.mark.parametrize("destination", ["Snowflake", "BigQuery", "Databricks", "AzureBlob"])
def test_supported_test_destinations(api3: Api, destination: str) -> None:
    assert api3.get(f"test/?destination={destination}").json()["steps"]
