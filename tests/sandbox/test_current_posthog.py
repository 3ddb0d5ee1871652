"""What PostHog's newest code does that the docs page does not (docs/posthog-api.md), one test per behaviour,
over real loopback HTTP; Gen-1 where it differs."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest

from posthog_sandbox.routes import QUERY_NEEDS_SQLGLOT

from .conftest import Api, assert_error, assert_validation, logs_key, s3_body

AUTH = "authentication_error"


# ---------------------------------------------------------------------------------------------- 1. integrations


def _create(api: Api, type_: str, config: dict, integration: int | None, name: str | None = None) -> str:
    destination = {"type": type_, "config": config}
    if integration is not None:
        destination["integration"] = integration
    response = api.post("", json={"name": name or type_, "interval": "hour", "destination": destination})
    assert response.status_code == 201, response.text
    return response.json()["id"]


@pytest.mark.parametrize(
    ("type_", "config", "integration", "message"),
    [
        ("BigQuery", {"dataset_id": "ds"}, 104, "Integration is required for BigQuery batch exports"),
        (
            "Databricks",
            {"http_path": "/sql", "catalog": "c", "schema": "s", "table_name": "t"},
            105,
            "Integration is required for Databricks batch exports",
        ),
        ("AzureBlob", {"container_name": "c"}, 106, "Integration is required for Azure Blob batch exports"),
    ],
)
def test_integration_needed_on_every_destination_update(
    api3: Api, type_: str, config: dict, integration: int, message: str
) -> None:
    export = _create(api3, type_, config, integration)
    patch = {"destination": {"type": type_, "config": {}}}
    assert_validation(api3.patch(f"{export}/", json=patch), message, "destination")
    assert api3.get(f"{export}/").json()["destination"]["integration"] == integration  # nothing changed
    patch["destination"]["integration"] = integration
    assert api3.patch(f"{export}/", json=patch).status_code == 200
    assert api3.patch(f"{export}/", json={"name": "renamed, no destination"}).status_code == 200


def test_redshift_integration_is_sticky(api3: Api) -> None:
    export = _create(api3, "Redshift", {"database": "d", "host": "h.example.com"}, 108)
    for destination in (
        {"type": "Redshift", "config": {"schema": "s"}},
        {"type": "Redshift", "config": {"schema": "s"}, "integration": None},
    ):
        assert_validation(
            api3.patch(f"{export}/", json={"destination": destination}),
            "Cannot remove the integration from a Redshift batch export that uses one. "
            "Re-send its `integration` to keep it (or a different one to swap).",
            "destination",
        )
    ok = {"type": "Redshift", "config": {"schema": "s"}, "integration": 108}
    assert api3.patch(f"{export}/", json={"destination": ok}).json()["destination"]["config"]["schema"] == "s"


def test_snowflake_and_s3_fall_back_to_the_stored_integration(api3: Api) -> None:
    snowflake = api3.export_named("Daily events to Snowflake")["id"]
    response = api3.patch(f"{snowflake}/", json={"destination": {"type": "Snowflake", "config": {"role": "R"}}})
    assert response.status_code == 200 and response.json()["destination"]["integration"] == 102
    s3 = api3.export_named("Hourly events to S3")["id"]
    response = api3.patch(f"{s3}/", json={"destination": {"type": "AwsS3", "config": {"prefix": "new/"}}})
    assert response.status_code == 200 and response.json()["destination"]["integration"] == 101
    # an explicit null is a removal, and refused
    removal = {"destination": {"type": "AwsS3", "config": {}, "integration": None}}
    assert_validation(
        api3.patch(f"{s3}/", json=removal), "Integration is required for AwsS3 batch exports", "destination"
    )


def test_create_needs_the_integration(api3: Api) -> None:
    body = s3_body(3)
    del body["destination"]["integration"]
    assert_validation(api3.post("", json=body), "Integration is required for AwsS3 batch exports", "destination")
    assert api3.post("", json=body).status_code == 400 and len(api3.get("").json()["results"]) == 4  # none made


def test_config_errors_and_rule_errors_carry_different_attrs(api: Api, gen: int) -> None:
    body = s3_body(gen)
    body["destination"]["config"]["max_file_size_mb"] = "big"
    response = api.post("", json=body)
    assert response.status_code == 400
    assert response.json()["attr"] == ("destination__non_field_errors" if gen == 3 else "destination")
    assert response.json()["detail"] == "Configuration has invalid type: got 'str', expected 'int'"
    body = s3_body(gen)
    body["destination"]["config"]["file_format"] = "CSV"
    assert api.post("", json=body).json()["attr"] == "destination"


def test_legacy_parquet_extension_refused_on_a_new_export(api3: Api) -> None:
    body = s3_body(3)
    body["destination"]["config"].update(file_format="Parquet", compression="zstd", legacy_parquet_extension=True)
    response = api3.post("", json=body)
    assert_validation(
        response,
        "'legacy_parquet_extension' can only stay on for an export that already writes the compression codec "
        "into its Parquet file names. It cannot be turned on for a new export, or turned back on once an export "
        "moved to the standard '.parquet' extension.",
        "destination",
    )
    body["destination"]["config"]["legacy_parquet_extension"] = False
    assert api3.post("", json=body).status_code == 201


@pytest.mark.parametrize("destination", [{"type": "AwsS3"}, {"config": {"prefix": "x/"}}])
def test_patch_destination_without_type_or_config_is_500(api3: Api, destination: dict) -> None:
    export = api3.export_named("Hourly events to S3")["id"]
    before = api3.get(f"{export}/").json()
    response = api3.patch(f"{export}/", json={"name": "changed", "destination": destination})
    assert_error(response, 500, "server_error", "error", "A server error occurred.")
    assert api3.get(f"{export}/").json() == before


# ---------------------------------------------------------------------------------------------- 2. test steps

SIX = ["AwsS3", "S3Compatible", "BigQuery", "Snowflake", "Databricks", "AzureBlob"]


def test_destination_tests_exist_for_six_types_only(api3: Api) -> None:
    for type_ in SIX:
        assert api3.get(f"test/?destination={type_}").json()["steps"], type_
    for type_ in ("Postgres", "Redshift", "HTTP", "NoOp", "Workflows"):
        response = api3.get(f"test/?destination={type_}")
        assert response.status_code == 404 and response.content == b"", type_


def test_run_test_step_for_another_type_is_500(api3: Api) -> None:
    postgres = {
        "name": "p",
        "interval": "hour",
        "step": 0,
        "destination": {"type": "Postgres", "integration": 103, "config": {"database": "d", "host": "h"}},
    }
    assert_error(
        api3.post("run_test_step_new/", json=postgres), 500, "server_error", "error", "A server error occurred."
    )
    export = api3.export_named("Paused events to Postgres")["id"]
    response = api3.post(f"{export}/run_test_step/", json={**postgres, "name": "Paused events to Postgres"})
    assert response.status_code == 500
    past_last = {**s3_body(3), "step": 2}  # AwsS3 has steps 0 and 1
    assert api3.post("run_test_step_new/", json={**past_last, "step": 1}).status_code == 200
    assert api3.post("run_test_step_new/", json=past_last).status_code == 500


# ---------------------------------------------------------------------------------------------- 3. late rows


def test_backfill_row_is_written_a_few_seconds_after_the_answer(api: Api, gen: int) -> None:
    export = api.export_named("Hourly events to S3")["id"]
    body = {"start_at": "2025-06-14T00:00:00+00:00", "end_at": "2025-06-14T02:00:00+00:00"}
    response = api.post(f"{export}/backfills/", json=body)
    assert response.status_code == (201 if gen == 3 else 200)
    assert api.get(f"{export}/backfills/").json()["results"] == []
    assert [b["batch_export"] for b in api.state()["pending_backfills"]] == [export]
    if gen == 3:
        backfill_id = response.json()["backfill_id"]
        assert api.get(f"{export}/backfills/{backfill_id}/").status_code == 404
        assert api.post(f"{export}/backfills/{backfill_id}/cancel/").status_code == 404
    api.advance(4.9)
    assert api.get(f"{export}/backfills/").json()["results"] == []
    api.advance(0.1)
    rows = api.get(f"{export}/backfills/").json()["results"]
    assert len(rows) == 1 and rows[0]["status"] == "Starting" and rows[0]["created_at"] == "2025-06-15T12:00:05Z"
    if gen == 3:
        assert rows[0]["id"] == backfill_id
        assert api.get(f"{export}/backfills/{backfill_id}/").json()["id"] == backfill_id
    assert api.state()["pending_backfills"] == []


def test_retry_row_is_late_too(api3: Api) -> None:
    export = api3.export_named("Daily events to Snowflake")["id"]
    failed = next(r for r in api3.get(f"{export}/runs/").json()["results"] if r["status"] == "Failed")
    assert api3.post(f"{export}/runs/{failed['id']}/retry/").status_code == 201
    assert api3.get(f"{export}/backfills/").json()["results"] == []
    api3.advance(5)
    assert [b["start_at"] for b in api3.get(f"{export}/backfills/").json()["results"]] == [
        failed["data_interval_start"]
    ]


def test_backfill_row_delay_is_settable(start: Callable[..., Api]) -> None:
    api = start(3, backfill_row_delay=0)
    export = api.export_named("Hourly events to S3")["id"]
    body = {"start_at": "2025-06-14T00:00:00+00:00", "end_at": "2025-06-14T02:00:00+00:00"}
    backfill_id = api.post(f"{export}/backfills/", json=body).json()["backfill_id"]
    assert api.get(f"{export}/backfills/{backfill_id}/").status_code == 200
    slow = start(3, backfill_row_delay=60)
    export = slow.export_named("Hourly events to S3")["id"]
    backfill_id = slow.post(f"{export}/backfills/", json=body).json()["backfill_id"]
    slow.advance(59)
    assert slow.get(f"{export}/backfills/{backfill_id}/").status_code == 404
    slow.advance(1)
    assert slow.get(f"{export}/backfills/{backfill_id}/").status_code == 200


# ---------------------------------------------------------------------------------------------- 4. delete


def test_delete_cancels_running_only(api: Api, gen: int) -> None:
    export = api.export_named("Hourly events to S3")["id"]
    body = {"start_at": "2025-06-14T00:00:00+00:00", "end_at": "2025-06-14T05:00:00+00:00"}
    api.post(f"{export}/backfills/", json=body)
    api.advance(5 + 10 + 31)  # the row, Running, and its first run Running
    api.post(f"{export}/backfills/", json={**body, "start_at": "2025-06-14T01:00:00+00:00"})
    api.advance(5)  # the second row is written, still Starting
    statuses = sorted(b["status"] for b in api.get(f"{export}/backfills/").json()["results"])
    assert statuses == ["Running", "Starting"]
    assert api.delete(f"{export}/").status_code == 204
    after = {b["status"] for b in api.state()["backfills"] if b["batch_export"] == export}
    if gen == 3:
        assert after == {"Cancelled", "Starting"}
        runs = [r for r in api.state()["runs"] if r["batch_export"] == export]
        assert "Running" not in {r["status"] for r in runs} and "Cancelled" in {r["status"] for r in runs}
    else:
        assert after == {"Cancelled"}


# ---------------------------------------------------------------------------------------------- 5. keys


def test_legacy_key_refused_for_every_action_but_current_says_star(api: Api, gen: int) -> None:
    export = api.export_named("Hourly events to S3")["id"]
    current = api.get("/api/personal_api_keys/@current/", key="phx_legacy").json()
    assert current["scopes"] == ["*"]
    calls = [
        ("GET", "", "batch_export:read"),
        ("GET", f"{export}/", "batch_export:read"),
        ("POST", f"{export}/pause/", "batch_export:write"),
        ("GET", f"{export}/runs/", "batch_export:read"),
        ("GET", f"{export}/backfills/", "batch_export:read"),
        ("GET", "test/?destination=Snowflake", "batch_export:read"),
    ]
    for method, path, scope in calls:
        response = api.request(method, path, key="phx_legacy")
        if gen == 3:
            assert_error(response, 403, AUTH, "permission_denied", f"API key missing required scope '{scope}'")
        else:
            assert response.status_code == 200, (path, response.text)


def test_unsupported_action_wording(start: Callable[..., Api]) -> None:
    api = start(3, logs_for_keys="refused")
    export = api.export_named("Hourly events to S3")["id"]
    for key in ("phx_star", "phx_read", "phx_legacy"):  # checked before `*` and before the legacy key's scopes
        assert_error(
            api.get(f"{export}/logs/", key=key),
            403,
            AUTH,
            "permission_denied",
            "This action does not support personal API key access",
        )
    gen1 = start(1)
    export = gen1.export_named("Hourly events to S3")["id"]
    assert gen1.get(f"{export}/logs/", key="phx_star").json()["detail"] == (
        "This action does not support Personal API Key access"
    )


# ---------------------------------------------------------------------------------------------- 6. logs


def test_logs_route_allowed_by_default_and_refusable(start: Callable[..., Api]) -> None:
    allowed = start(3)
    export = allowed.export_named("Hourly events to S3")["id"]
    assert allowed.get(f"{export}/logs/", key="phx_read").status_code == 200
    refused = start(3, logs_for_keys="refused")
    export = refused.export_named("Hourly events to S3")["id"]
    assert refused.get(f"{export}/logs/", key="phx_read").status_code == 403
    assert refused.get(f"{export}/logs/", key="phx_star").status_code == 403


def _query(api: Api, sql: str, key: str = "phx_query") -> httpx.Response:
    return api.request(
        "POST",
        f"/api/projects/{api.project}/query/",
        key=key,
        json={"query": {"kind": "HogQLQuery", "query": sql}},
    )


QUERY_KEYS = [
    "phx_query=query:read",
    "phx_batch=batch_export:read",
]


@pytest.fixture
def logs_api(start: Callable[..., Api]) -> Api:
    from posthog_sandbox import SandboxKey

    from .conftest import KEYS

    keys = [*KEYS, SandboxKey("phx_query", ["query:read"]), SandboxKey("phx_batch", ["batch_export:read"])]
    return start(3, keys=keys, logs_for_keys="refused")


def test_query_api_serves_the_same_lines(logs_api: Api) -> None:
    api = logs_api
    export = api.export_named("Daily events to Snowflake")["id"]
    response = _query(
        api,
        f"SELECT timestamp, level, message, instance_id FROM batch_export_log_entries "
        f"WHERE log_source_id = '{export}' AND level = 'ERROR' ORDER BY timestamp DESC LIMIT 3",
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["columns"] == ["timestamp", "level", "message", "instance_id"]
    assert [t[0] for t in body["types"]] == body["columns"] and body["types"][0][1].startswith("DateTime64")
    assert len(body["results"]) == 3 and body["hasMore"] is True
    assert all(row[1] == "ERROR" and "SnowflakeConnectionError" in row[2] for row in body["results"])
    stamps = [row[0] for row in body["results"]]
    assert stamps == sorted(stamps, reverse=True)
    # the same rows the logs route would give a key it serves
    route = api.get(f"{export}/logs/?level=ERROR&limit=3", key="phx_sandbox_default_key")
    assert route.status_code == 403  # refused for personal keys in this sandbox
    state = api.state()
    assert state["log_count"] > 0


def test_query_api_grammar(logs_api: Api) -> None:
    api = logs_api
    s3 = api.export_named("Hourly events to S3")["id"]
    snowflake = api.export_named("Daily events to Snowflake")["id"]
    star = _query(api, f"SELECT * FROM batch_export_log_entries WHERE log_source_id = '{s3}' LIMIT 2 OFFSET 1").json()
    assert star["columns"] == ["team_id", "log_source", "log_source_id", "instance_id", "timestamp", "message", "level"]
    assert len(star["results"]) == 2 and star["results"][0][:3] == [1, "batch_export", s3]
    counts = _query(
        api,
        "SELECT log_source_id, level, count() AS n FROM batch_export_log_entries "
        f"WHERE log_source_id IN ('{s3}', '{snowflake}') AND (level = 'ERROR' OR level != 'INFO') "
        "GROUP BY log_source_id, level ORDER BY n DESC",
    ).json()
    assert counts["columns"] == ["log_source_id", "level", "n"] and counts["types"][2] == ["n", "UInt64"]
    assert [row[:2] for row in counts["results"]] == [[snowflake, "ERROR"]] and counts["results"][0][2] == 4
    total = _query(api, "SELECT count() FROM batch_export_log_entries").json()
    assert total["columns"] == ["count()"] and total["results"][0][0] == api.state()["log_count"] - _project2(api)
    like = _query(
        api,
        "SELECT count() FROM batch_export_log_entries WHERE message LIKE 'Starting batch export%' "
        "AND message ILIKE '%RANGE 2025-06-15%'",
    ).json()
    case_sensitive = _query(
        api, "SELECT count() FROM batch_export_log_entries WHERE message LIKE '%RANGE 2025-06-15%'"
    ).json()
    assert like["results"][0][0] > 0 and case_sensitive["results"][0][0] == 0
    window = _query(
        api,
        "SELECT timestamp FROM batch_export_log_entries WHERE timestamp >= '2025-06-15 10:00:00' "
        "AND timestamp < '2025-06-15 11:00:00' AND level <= 'INFO' ORDER BY timestamp",
    ).json()
    assert window["results"] and all("2025-06-15T10:" in row[0] for row in window["results"])
    assert window["results"] == sorted(window["results"])
    empty = _query(api, "SELECT count() FROM batch_export_log_entries WHERE level > 'ZZZ'").json()
    assert empty["results"] == [[0]]


def _project2(api: Api) -> int:
    other = type(api)(api.sandbox, project=2)
    try:
        export = other.export_named("Project 2 events to HTTP")["id"]
        response = _query(other, f"SELECT count() FROM batch_export_log_entries WHERE log_source_id = '{export}'")
        return int(response.json()["results"][0][0])
    finally:
        other.close()


@pytest.mark.parametrize(
    "sql",
    [
        "DELETE FROM batch_export_log_entries",
        "SELECT * FROM events",
        "SELECT message FROM batch_export_log_entries UNION ALL SELECT message FROM batch_export_log_entries",
        "SELECT lower(message) FROM batch_export_log_entries",
        "SELECT message FROM batch_export_log_entries WHERE NOT level = 'INFO'",
        "SELECT nope FROM batch_export_log_entries",
        "SELECT message FROM batch_export_log_entries GROUP BY level",
        "SELECT message FROM batch_export_log_entries WHERE count() > 1",
        "SELECT DISTINCT level FROM batch_export_log_entries",
        "SELECT message FROM batch_export_log_entries; SELECT 1",
        "SELEC message FROM",
        "SELECT message FROM batch_export_log_entries JOIN events ON 1 = 1",
        "SELECT message FROM batch_export_log_entries LIMIT -1",
    ],
)
def test_query_api_refuses_the_rest(logs_api: Api, sql: str) -> None:
    response = _query(logs_api, sql)
    assert response.status_code == 400, (sql, response.text)
    body = response.json()
    assert body["type"] == "validation_error" and body["code"] == "invalid_input" and body["detail"]


def test_query_api_scope_and_body(logs_api: Api) -> None:
    api = logs_api
    sql = "SELECT count() FROM batch_export_log_entries"
    assert_error(
        _query(api, sql, key="phx_batch"), 403, AUTH, "permission_denied", "API key missing required scope 'query:read'"
    )
    assert _query(api, sql, key="phx_star").status_code == 200
    response = api.request("POST", "/api/projects/1/query", key="phx_query", json={"query": {"kind": "EventsQuery"}})
    assert response.status_code == 400 and response.json()["attr"] == "query"
    environments = api.request(
        "POST", "/api/environments/1/query/", key="phx_query", json={"query": {"kind": "HogQLQuery", "query": sql}}
    )
    assert environments.status_code == 200


def test_query_api_without_sqlglot_answers_like_a_posthog_without_it(
    logs_api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """sqlglot is the optional extra `sandbox`: without it the route says what to install, never a traceback."""
    import sys

    import posthog_sandbox

    monkeypatch.setitem(sys.modules, "sqlglot", None)  # `import sqlglot` now raises ModuleNotFoundError
    monkeypatch.delitem(sys.modules, "posthog_sandbox.query_api", raising=False)
    monkeypatch.delattr(posthog_sandbox, "query_api", raising=False)
    response = _query(logs_api, "SELECT count() FROM batch_export_log_entries", key="phx_query")
    assert_error(response, 404, "invalid_request", "not_found", QUERY_NEEDS_SQLGLOT)
    assert "pip install 'posthog-batch-exports-mcp[sandbox]'" in QUERY_NEEDS_SQLGLOT


# ---------------------------------------------------------------------------------------------- 7. times


def test_runs_filters_without_offset_are_read_in_the_project_timezone(start: Callable[..., Api]) -> None:
    utc = start(3)
    berlin = start(3, project_timezone="Europe/Berlin")  # UTC+2 in June
    for api in (utc, berlin):
        export = api.export_named("Hourly events to S3")["id"]
        naive = api.get(f"{export}/runs/?after=2025-06-15T09:00:00&before=2025-06-15T11:00:00").json()["results"]
        explicit = api.get(f"{export}/runs/?after=2025-06-15T09:00:00Z&before=2025-06-15T11:00:00Z").json()
        assert [r["created_at"] for r in explicit["results"]] == [
            "2025-06-15T11:00:00Z",
            "2025-06-15T10:00:00Z",
            "2025-06-15T09:00:00Z",
        ]
        created = [r["created_at"] for r in naive]
        if api is utc:
            assert created == [r["created_at"] for r in explicit["results"]]
        else:  # 09:00-11:00 in Berlin is 07:00-09:00 UTC
            assert created == ["2025-06-15T09:00:00Z", "2025-06-15T08:00:00Z", "2025-06-15T07:00:00Z"]
        start_param = api.get(f"{export}/runs/?ordering=data_interval_start&start=2025-06-15T10:00:00").json()
        first = start_param["results"][0]["data_interval_start"]
        assert first == ("2025-06-15T10:00:00Z" if api is utc else "2025-06-15T08:00:00Z")


# ---------------------------------------------------------------------------------------------- 8. headers


def test_throttled_answer_carries_retry_after(start: Callable[..., Api]) -> None:
    api = start(3)
    statuses = []
    for _ in range(481):
        response = api.get("?limit=1")
        statuses.append(response.status_code)
        if response.status_code == 429:
            break
    assert statuses[-1] == 429 and statuses.count(200) == 480
    wait = response.headers["Retry-After"]
    assert wait.isdigit() and int(wait) >= 1
    assert (
        response.json()["detail"]
        == f"Request was throttled. Expected available in {wait} second{'' if wait == '1' else 's'}."
    )


def test_unauthenticated_answer_names_the_resource_metadata(api: Api) -> None:
    for key in (None, "phx_unknown"):
        response = api.get("", key=key)
        assert response.status_code == 401
        header = response.headers["WWW-Authenticate"]
        assert header == f'Bearer resource_metadata="{api.base_url}/.well-known/oauth-protected-resource"'
    assert "WWW-Authenticate" not in api.get("", key="phx_other").headers  # 403, not 401


def test_unhandled_500_carries_an_error_event_id(api3: Api) -> None:
    export = api3.export_named("Hourly events to S3")["id"]
    first = api3.patch(f"{export}/", json={"destination": {"type": "AwsS3"}}).json()
    second = api3.patch(f"{export}/", json={"destination": {"type": "AwsS3"}}).json()
    assert (
        re.fullmatch(r"[0-9a-f]{32}", first["error_event_id"]) and first["error_event_id"] != second["error_event_id"]
    )


def test_database_unavailable_fault(api3: Api) -> None:
    export = api3.export_named("Hourly events to S3")["id"]
    api3.control("POST", "faults", {"database_unavailable": True, "method": "POST"})
    response = api3.post(f"{export}/pause/")
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    body = response.json()
    assert body["type"] == "server_error" and body["code"] == "database_unavailable" and body["attr"] is None
    assert api3.get(f"{export}/").json()["paused"] is False  # this fault answers before the write
    assert api3.post(f"{export}/pause/").status_code == 200


# ---------------------------------------------------------------------------------------------- 9. routes


def test_routes(api: Api, gen: int) -> None:
    export = api.export_named("Hourly events to S3")["id"]
    for path in (
        f"/api/projects/1/batch_exports/{export}",
        f"/api/projects/1/batch_exports/{export}/",
        f"/api/environments/1/batch_exports/{export}",
        f"/api/environments/1/batch_exports/{export}/",
    ):
        assert api.get(path).json()["id"] == export, path
    assert api.get(f"/api/projects/1/batch_exports/{export}/runs").status_code == 200
    assert api.get("/api/organizations/@current/batch_exports/").status_code == 404
    legacy_backfill = api.post(
        f"{export}/backfill/", json={"start_at": "2025-06-14T00:00:00+00:00", "end_at": "2025-06-14T01:00:00+00:00"}
    )
    if gen == 3:
        assert_error(legacy_backfill, 404, "invalid_request", "not_found", "Not found.")
    else:
        assert legacy_backfill.status_code == 200


def test_logs_keys_helper_matches_the_generation(api: Api, gen: int) -> None:
    export = api.export_named("Hourly events to S3")["id"]
    assert api.get(f"{export}/logs/", key=logs_key(api)).status_code == 200
