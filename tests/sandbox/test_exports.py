"""Batch export CRUD, validation, secrets, pause/unpause and soft delete (reference 7-9)."""

from __future__ import annotations

import json

import pytest

from .conftest import Api, assert_error, assert_validation, s3_body

SEED_PROJECT_1 = {
    "Hourly events to S3",
    "Daily events to Snowflake",
    "Paused events to Postgres",
    "Events to BigQuery (backfilling)",
}
GEN3_KEYS = {
    "id",
    "team_id",
    "name",
    "model",
    "destination",
    "interval",
    "paused",
    "created_at",
    "last_updated_at",
    "last_paused_at",
    "start_at",
    "end_at",
    "latest_runs",
    "hogql_query",
    "hogql_modifiers",
    "primary_key",
    "version_key",
    "incremental_mode",
    "schema",
    "filters",
    "timezone",
    "offset_day",
    "offset_hour",
}
GEN1_KEYS = GEN3_KEYS - {
    "hogql_query",
    "hogql_modifiers",
    "primary_key",
    "version_key",
    "incremental_mode",
    "timezone",
    "offset_day",
    "offset_hour",
}


def test_list_envelope_and_seed(api: Api, gen: int) -> None:
    page = api.get("").json()
    assert set(page) == {"count", "next", "previous", "results"}
    assert page["count"] == 4 and page["next"] is None and page["previous"] is None
    assert {e["name"] for e in page["results"]} == SEED_PROJECT_1
    created = [e["created_at"] for e in page["results"]]
    assert created == sorted(created, reverse=True)
    for export in page["results"]:
        assert set(export) == (GEN3_KEYS if gen == 3 else GEN1_KEYS)
        assert len(export["latest_runs"]) == 10
    types = {e["name"]: e["destination"]["type"] for e in page["results"]}
    assert types["Hourly events to S3"] == ("AwsS3" if gen == 3 else "S3")
    paused = {e["name"]: e for e in page["results"]}["Paused events to Postgres"]
    assert paused["paused"] is True and paused["last_paused_at"] == "2025-06-13T12:00:00Z"


def test_limit_offset_pagination(api: Api) -> None:
    page = api.get("?limit=3").json()
    assert page["count"] == 4 and len(page["results"]) == 3 and page["previous"] is None
    assert page["next"] == f"{api.base_url}/api/projects/1/batch_exports/?limit=3&offset=3"
    second = api.http.get(page["next"], headers={"Authorization": f"Bearer {api.key}"}).json()
    assert len(second["results"]) == 1 and second["next"] is None
    assert second["previous"] == f"{api.base_url}/api/projects/1/batch_exports/?limit=3"
    page = api.get("?limit=1&offset=2").json()
    assert page["previous"] == f"{api.base_url}/api/projects/1/batch_exports/?limit=1&offset=1"


def test_secrets_never_returned(api: Api) -> None:
    export_ids = [e["id"] for e in api.state()["exports"] if e["team_id"] == 1]
    bodies = [api.get("").text] + [api.get(f"{i}/").text for i in export_ids]
    other = Api(api.sandbox, project=2)
    try:
        bodies.append(other.get("").text)
    finally:
        other.close()
    for body in bodies:
        assert "sandbox-canary" not in body
    state = json.dumps(api.state())
    assert "sandbox-canary" in state  # stored verbatim


def test_create_minimal_and_defaults(api: Api, gen: int) -> None:
    response = api.post("", json=s3_body(gen))
    assert response.status_code == 201, response.text
    export = response.json()
    assert export["name"] == "New export" and export["model"] == "events" and export["paused"] is False
    assert export["latest_runs"] == [] and export["last_paused_at"] is None
    assert "sandbox-canary" not in response.text
    if gen == 3:
        assert export["timezone"] == "UTC" and export["incremental_mode"] == "APPEND"
        assert export["destination"]["integration"] == 101
        assert export["destination"]["config"]["legacy_parquet_extension"] is False
        assert export["offset_hour"] is None and export["offset_day"] is None
    assert api.get(f"{export['id']}/").json()["name"] == "New export"


@pytest.mark.parametrize("field", ["name", "interval", "destination"])
def test_required_fields(api: Api, gen: int, field: str) -> None:
    body = s3_body(gen)
    del body[field]
    assert_validation(api.post("", json=body), "This field is required.", field, "required")


def test_first_error_in_field_order(api: Api, gen: int) -> None:
    body = s3_body(gen, interval="monthly")
    del body["name"]
    assert_validation(api.post("", json=body), "This field is required.", "name", "required")
    assert_validation(
        api.post("", json=s3_body(gen, interval="monthly")),
        '"monthly" is not a valid choice.',
        "interval",
        "invalid_choice",
    )


def test_enums(api: Api, gen: int) -> None:
    assert_validation(
        api.post("", json=s3_body(gen, model="users")), '"users" is not a valid choice.', "model", "invalid_choice"
    )
    body = s3_body(gen)
    body["destination"]["type"] = "Kafka"
    assert_validation(api.post("", json=body), '"Kafka" is not a valid choice.', "destination__type", "invalid_choice")
    body = s3_body(gen)
    body["destination"]["type"] = "S3" if gen == 3 else "AwsS3"
    if gen == 3:  # still a choice of the model, refused by the view as deprecated
        assert_validation(
            api.post("", json=body),
            "The 'S3' destination type is deprecated and can no longer be used. "
            "Use 'AwsS3' for AWS S3, or 'S3Compatible' for S3-compatible storage.",
            "destination",
        )
    else:
        assert_validation(
            api.post("", json=body), '"AwsS3" is not a valid choice.', "destination__type", "invalid_choice"
        )
    assert api.post("", json=s3_body(gen, interval="every 5 minutes")).status_code == 201


def test_config_unknown_and_missing(api: Api, gen: int) -> None:
    # Gen-3 checks the config in the nested serializer: its errors are the destination's non-field errors
    attr = "destination__non_field_errors" if gen == 3 else "destination"
    body = s3_body(gen)
    body["destination"]["config"].update(zeta=1, alpha=2)
    assert_validation(api.post("", json=body), "Configuration has unknown field/s: 'alpha', 'zeta'", attr)
    body = s3_body(gen)
    del body["destination"]["config"]["region"]
    assert_validation(api.post("", json=body), "Configuration missing required field: 'region'", attr)
    body = s3_body(gen)
    body["destination"]["config"]["include_events"] = ["$pageview"]
    assert api.post("", json=body).status_code == 201


def test_file_format_and_compression(api: Api, gen: int) -> None:
    body = s3_body(gen)
    body["destination"]["config"].update(file_format="CSV")
    assert_validation(
        api.post("", json=body),
        "File format CSV is not supported. Supported file formats are ['Parquet', 'JSONLines']",
        "destination",
    )
    body["destination"]["config"].update(file_format="JSONLines", compression="zstd")
    assert_validation(
        api.post("", json=body),
        "Compression zstd is not supported for file format JSONLines. Supported compressions are ['gzip', 'brotli']",
        "destination",
    )
    body["destination"]["config"].update(file_format="Parquet", compression="zstd")
    assert api.post("", json=body).status_code == 201


GEN3_VALID = {
    "Snowflake": ({"database": "D", "warehouse": "W", "schema": "S"}, 102, "snowflake"),
    "Postgres": ({"database": "d", "host": "db.example.com"}, 103, "postgresql"),
    "BigQuery": ({"dataset_id": "ds"}, 104, "google-cloud-service-account"),
    "Databricks": ({"http_path": "/sql", "catalog": "c", "schema": "s", "table_name": "t"}, 105, "databricks"),
    "AzureBlob": ({"container_name": "c"}, 106, "azure-blob"),
    "S3Compatible": ({"bucket_name": "b", "region": "r", "prefix": "p"}, 107, "s3-compatible"),
    "Redshift": ({"database": "d", "host": "h.example.com"}, 108, "aws-redshift"),
}
GEN3_REQUIRED = {
    "Snowflake": "Integration is required for Snowflake batch exports",
    "Postgres": "Integration is required for Postgres batch exports",
    "BigQuery": "Integration is required for BigQuery batch exports",
    "Databricks": "Integration is required for Databricks batch exports",
    "AzureBlob": "Integration is required for Azure Blob batch exports",
    "S3Compatible": "Integration is required for S3Compatible batch exports",
    "Redshift": "Integration is required for Redshift batch exports",
}


@pytest.mark.parametrize("type_", sorted(GEN3_VALID))
def test_gen3_destinations(api3: Api, type_: str) -> None:
    config, integration, _ = GEN3_VALID[type_]
    body = {
        "name": type_,
        "interval": "day",
        "destination": {"type": type_, "config": dict(config), "integration": integration},
    }
    assert api3.post("", json=body).status_code == 201
    del body["destination"]["integration"]
    assert_validation(api3.post("", json=body), GEN3_REQUIRED[type_], "destination")
    body["destination"]["integration_id"] = 101 if type_ != "S3Compatible" else 102
    response = api3.post("", json=body)
    assert response.status_code == 400 and response.json()["attr"] == "destination"
    body["destination"]["integration_id"] = 999
    assert_validation(
        api3.post("", json=body),
        'Invalid pk "999" - object does not exist.',
        "destination__integration_id",
        "does_not_exist",
    )
    body["destination"]["integration_id"] = 201  # project 2's integration
    assert api3.post("", json=body).json()["code"] == "does_not_exist"


def test_gen3_specific_rules(api3: Api) -> None:
    body = s3_body(3)
    body["destination"]["integration"] = 102
    assert_validation(
        api3.post("", json=body),
        "Integration provided is not an AWS S3 integration (got kind='snowflake')",
        "destination",
    )
    body = s3_body(3)
    body["destination"]["config"]["bucket_name"] = ""
    assert_validation(api3.post("", json=body), "The following inputs are empty: ['bucket_name']", "destination")
    http = {
        "name": "h",
        "interval": "hour",
        "destination": {"type": "HTTP", "config": {"url": "https://example.com/", "token": "t"}},
    }
    assert_validation(api3.post("", json=http), "Invalid destination URL: https://example.com/", "destination")
    http["destination"]["config"]["url"] = "https://eu.i.posthog.com/batch/"
    assert api3.post("", json=http).status_code == 201
    assert_validation(
        api3.post("", json={**http, "model": "persons"}), "HTTP batch exports only support the events model"
    )
    pg = {
        "name": "p",
        "interval": "hour",
        "destination": {
            "type": "Postgres",
            "integration": 103,
            "config": {"database": "d", "host": "postgres://u:p@host/db"},
        },
    }
    assert_validation(
        api3.post("", json=pg),
        "Invalid host. Enter a hostname or IP address without credentials, scheme, or path.",
        "destination",
    )
    rs = {
        "name": "r",
        "interval": "hour",
        "destination": {"type": "Redshift", "integration": 108, "config": {"database": "d"}},
    }
    assert_validation(
        api3.post("", json=rs),
        "A 'host' is required when using an AWS Redshift integration: set it to the cluster or workgroup endpoint.",
        "destination",
    )
    rs["destination"]["config"].update(host="h", mode="COPY")
    assert_validation(api3.post("", json=rs), "Missing required inputs for 'COPY'", "destination")


def test_gen3_offsets_timezone_filters_hogql(api3: Api) -> None:
    body = s3_body(3, interval="day", offset_hour=5, timezone="Europe/Berlin")
    export = api3.post("", json=body).json()
    assert export["offset_hour"] == 5 and export["offset_day"] is None and export["timezone"] == "Europe/Berlin"
    week = api3.post("", json=s3_body(3, interval="week", offset_day=3)).json()
    assert week["offset_day"] == 3 and week["offset_hour"] == 0
    assert_validation(
        api3.post("", json=s3_body(3, timezone="Mars/Base")),
        '"Mars/Base" is not a valid choice.',
        "timezone",
        "invalid_choice",
    )
    assert_validation(
        api3.post("", json=s3_body(3, interval="day", offset_day=1)),
        "offset_day should not be specified for daily intervals",
        "offset_day",
    )
    assert_validation(
        api3.post("", json=s3_body(3, offset_day=1)),
        "offset_day is not applicable for non-weekly intervals",
        "offset_day",
    )
    assert_validation(
        api3.post("", json=s3_body(3, offset_hour=1)),
        "offset_hour is not applicable for non-daily/weekly intervals",
        "offset_hour",
    )
    assert_validation(
        api3.post("", json=s3_body(3, interval="day", offset_hour=24)),
        "Ensure this value is less than or equal to 23.",
        "offset_hour",
        "max_value",
    )
    assert_validation(
        api3.post("", json=s3_body(3, filters={"type": "event"})), "'filters' should be an array of filters", "filters"
    )
    assert_validation(
        api3.post("", json=s3_body(3, filters=[{"type": "cohort"}])),
        "Each filter must have a 'type' of one of: 'event', 'hogql', 'person'",
        "filters",
    )
    assert api3.post("", json=s3_body(3, filters=[{"type": "event", "key": "$browser"}])).status_code == 201
    assert_validation(
        api3.post("", json=s3_body(3, hogql_query="SELECT event FROM events")),
        "'hogql_query' is only supported for 'hogql' not 'events' model",
        "hogql_query",
    )
    hogql = api3.post("", json=s3_body(3, model="hogql", hogql_query="SELECT event, uuid AS id FROM events"))
    assert hogql.status_code == 201
    assert hogql.json()["schema"] is None  # a hogql model keeps its query in a source, with no schema


def test_gen1_rules(api1: Api) -> None:
    snowflake = {
        "name": "s",
        "interval": "hour",
        "destination": {
            "type": "Snowflake",
            "config": {"account": "a", "user": "u", "database": "d", "warehouse": "w", "schema": "s"},
        },
    }
    assert_validation(
        api1.post("", json=snowflake), "Password is required if authentication type is password", "destination"
    )
    http = {
        "name": "h",
        "interval": "hour",
        "destination": {"type": "HTTP", "config": {"url": "https://example.com/", "token": "t"}},
    }
    export = api1.post("", json=http).json()  # no URL allow-list in Gen-1
    assert "timezone" not in export and "token" not in export["destination"]["config"]
    assert api1.post("", json=s3_body(1, timezone="UTC")).json().get("timezone") is None
    schema = api1.post("", json=s3_body(1, hogql_query="SELECT event FROM events")).json()["schema"]
    assert schema["fields"] == [{"expression": "event", "alias": "event"}]
    assert_validation(
        api1.post("", json=s3_body(1, hogql_query="SELECT * FROM persons")),
        "Query must SELECT FROM events",
        "hogql_query",
    )


def test_patch_deep_merges_and_keeps_secrets(api: Api, gen: int) -> None:
    export = api.export_named("Daily events to Snowflake")
    response = api.patch(
        f"{export['id']}/",
        json={"name": "Renamed", "destination": {"type": "Snowflake", "config": {"role": "EXPORTER"}}},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["name"] == "Renamed" and body["destination"]["config"]["role"] == "EXPORTER"
    assert body["destination"]["config"]["database"] == "ANALYTICS"
    assert "sandbox-canary" not in response.text
    stored = api.export_named("Renamed")
    assert stored["destination"]["config"]["password"] == "sandbox-canary-snowflake-password"
    assert stored["last_updated_at"] == "2025-06-15T12:00:00Z" != export["last_updated_at"]
    if gen == 3:
        assert stored["destination"]["integration"] == 102


def test_patch_type_change(api: Api, gen: int) -> None:
    export = api.export_named("Paused events to Postgres")
    body = {"destination": {"type": "HTTP", "config": {"url": "https://us.i.posthog.com/batch/", "token": "x"}}}
    response = api.patch(f"{export['id']}/", json=body)
    if gen == 3:
        assert_validation(
            response,
            "Cannot change destination type from 'Postgres' to 'HTTP'. Delete this batch "
            "export and create a new one with the new destination type.",
            "destination",
        )
    else:
        assert response.status_code == 200 and response.json()["destination"]["type"] == "HTTP"


def test_patch_model_change_and_unknown_keys(api3: Api) -> None:
    export = api3.export_named("Hourly events to S3")["id"]
    assert_validation(
        api3.patch(f"{export}/", json={"model": "persons"}),
        "Changing models is not supported. Create a new batch export instead.",
        "model",
    )
    assert_validation(
        api3.patch(f"{export}/", json={"destination": {"type": "AwsS3", "config": {"nope": 1}}}),
        "Configuration has unknown field/s: 'nope'",
        "destination__non_field_errors",
    )
    assert api3.patch(f"{export}/", json={"paused": True}).json()["paused"] is True
    assert api3.get(f"{export}/").json()["last_paused_at"] is None  # PATCH paused does not set it


def test_put_requires_everything(api: Api, gen: int) -> None:
    export = api.export_named("Hourly events to S3")["id"]
    assert_validation(api.put(f"{export}/", json={"name": "x"}), "This field is required.", "destination", "required")
    response = api.put(f"{export}/", json=s3_body(gen, name="Put"))
    assert response.status_code == 200 and response.json()["name"] == "Put"


def test_soft_delete(api: Api, gen: int) -> None:
    export = api.export_named("Events to BigQuery (backfilling)")["id"]
    response = api.delete(f"{export}/")
    assert response.status_code == 204 and response.content == b""
    assert_error(api.get(f"{export}/"), 404, "invalid_request", "not_found", "Not found.")
    assert_error(api.delete(f"{export}/"), 404, "invalid_request", "not_found", "Not found.")
    assert export not in {e["id"] for e in api.get("").json()["results"]}
    state = api.state()
    assert [e["deleted"] for e in state["exports"] if e["id"] == export] == [True]
    assert {b["status"] for b in state["backfills"] if b["batch_export"] == export} == {"Cancelled"}
    active = [
        r["status"] for r in state["runs"] if r["batch_export"] == export and r["status"] in ("Running", "Starting")
    ]
    if gen == 3:  # Running runs are cancelled, Starting ones are not: the 12:00 tick's run has just started
        assert active == ["Starting"]
    assert api.get(f"{export}/runs/").status_code == 200  # nested lists do not check `deleted`


def test_pause_and_unpause(api: Api) -> None:
    export = api.export_named("Hourly events to S3")["id"]
    assert api.post(f"{export}/pause/").json() == {"paused": True}
    paused = api.get(f"{export}/").json()
    assert paused["paused"] is True and paused["last_paused_at"] == "2025-06-15T12:00:00Z"
    api.advance(60)
    assert api.post(f"{export}/pause/").json() == {"paused": True}
    assert api.get(f"{export}/").json()["last_updated_at"] == paused["last_updated_at"]  # no-op
    api.advance(3 * 3600)
    assert api.post(f"{export}/unpause/").json() == {"paused": False}
    unpaused = api.get(f"{export}/").json()
    assert unpaused["paused"] is False and unpaused["last_updated_at"] == "2025-06-15T15:01:00Z"
    assert api.get(f"{export}/backfills/").json()["results"] == []
    runs = api.get(f"{export}/runs/?after=2025-06-15T12:00:01Z").json()["results"]
    assert runs == []  # no scheduled runs while paused
    assert api.post(f"{export}/unpause/").json() == {"paused": False}
    assert_error(
        api.post("00000000-0000-0000-0000-000000000000/pause/"), 404, "invalid_request", "not_found", "Not found."
    )


def test_unpause_with_backfill(api: Api) -> None:
    export = api.export_named("Paused events to Postgres")
    assert api.post(f"{export['id']}/unpause/", json={"backfill": True}).json() == {"paused": False}
    assert api.get(f"{export['id']}/backfills/").json()["results"] == []  # the workflow writes the row later
    api.advance(5)
    backfills = api.get(f"{export['id']}/backfills/").json()["results"]
    assert len(backfills) == 1
    assert backfills[0]["start_at"] == export["last_paused_at"] == "2025-06-13T12:00:00Z"
    assert backfills[0]["end_at"] == "2025-06-15T12:00:00Z" and backfills[0]["status"] == "Starting"


def test_empty_and_non_object_bodies(api: Api) -> None:
    assert_validation(api.post(""), "This field is required.", "name", "required")
    assert_validation(api.post("", json=[1]), "Invalid data. Expected a dictionary, but got list.")
    body = s3_body(3)
    body["destination"] = "AwsS3"
    assert_validation(
        api.post("", json=body), "Invalid data. Expected a dictionary, but got str.", "destination__non_field_errors"
    )
