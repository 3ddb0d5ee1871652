"""Authentication, scopes, projects, routing and the error envelope (reference 1-3, 6)."""

from __future__ import annotations

import pytest

from .conftest import Api, assert_error, logs_key

AUTH = "authentication_error"


def test_no_credentials_is_401(api: Api) -> None:
    assert_error(api.get("", key=None), 401, AUTH, "not_authenticated", "Authentication credentials were not provided.")


@pytest.mark.parametrize(
    "where,detail",
    [
        ("header", "Personal API key found in request Authorization header is invalid."),
        ("body", "Personal API key found in request body is invalid."),
        ("query", "Personal API key found in request query string is invalid."),
    ],
)
def test_invalid_key_names_its_source(api: Api, where: str, detail: str) -> None:
    if where == "header":
        response = api.get("", key="phx_nope")
    elif where == "body":
        response = api.post("", json={"personal_api_key": "phx_nope"}, key=None)
    else:
        response = api.get("?personal_api_key=phx_nope", key=None)
    assert_error(response, 401, AUTH, "authentication_failed", detail)


def test_key_sources_and_precedence(api: Api) -> None:
    assert api.get("?personal_api_key=phx_sandbox_default_key", key=None).status_code == 200
    # body key works for a POST (validation error proves auth passed)
    response = api.post("", json={"personal_api_key": "phx_sandbox_default_key"}, key=None)
    assert response.status_code == 400
    # header wins over a bad query key
    assert api.get("?personal_api_key=phx_nope").status_code == 200


def test_scope_rules(api: Api, gen: int) -> None:
    assert api.get("", key="phx_read").status_code == 200
    assert api.get("", key="phx_write").status_code == 200  # write implies read
    assert api.get("", key="phx_star").status_code == 200
    if gen == 1:
        assert api.get("", key="phx_legacy").status_code == 200
    else:  # Gen-3: a legacy key (no scopes) holds no scope at all
        assert_error(
            api.get("", key="phx_legacy"),
            403,
            AUTH,
            "permission_denied",
            "API key missing required scope 'batch_export:read'",
        )
    assert_error(
        api.get("", key="phx_other"),
        403,
        AUTH,
        "permission_denied",
        "API key missing required scope 'batch_export:read'",
    )
    assert_error(
        api.post("", json={}, key="phx_read"),
        403,
        AUTH,
        "permission_denied",
        "API key missing required scope 'batch_export:write'",
    )


def test_internal_scope_for_tests_in_gen1_only(api: Api, gen: int) -> None:
    response = api.get("test/?destination=Snowflake", key="phx_write")
    if gen == 1:
        assert_error(response, 403, AUTH, "permission_denied", "API key missing required scope 'INTERNAL'")
        assert_error(
            api.post("run_test_step_new/", json={}, key="phx_write"),
            403,
            AUTH,
            "permission_denied",
            "API key missing required scope 'INTERNAL'",
        )
        assert api.get("test/?destination=Snowflake", key="phx_star").status_code == 200
        assert api.get("test/?destination=Snowflake", key="phx_legacy").status_code == 200
    else:
        assert response.status_code == 200
        assert api.post("run_test_step_new/", json={}, key="phx_read").status_code == 403


def test_logs_scope_differs_by_generation(api: Api, gen: int) -> None:
    export = api.export_named("Hourly events to S3")["id"]
    response = api.get(f"{export}/logs/", key="phx_read")
    if gen == 3:
        assert response.status_code == 200
    else:
        assert_error(response, 403, AUTH, "permission_denied", "This action does not support Personal API Key access")
        assert api.get(f"{export}/logs/", key="phx_star").status_code == 403
        assert api.get(f"{export}/logs/", key="phx_legacy").status_code == 200


def test_scoped_teams(api: Api) -> None:
    assert_error(
        api.get("", key="phx_team2"),
        403,
        AUTH,
        "permission_denied",
        "API key does not have access to the requested project: ID 1.",
    )
    other = Api(api.sandbox, "phx_team2", project=2)
    try:
        assert other.get("").json()["count"] == 1
    finally:
        other.close()


def test_projects(api: Api) -> None:
    for project, status, detail in [
        (3, 403, "You don't have access to the project."),
        (99, 404, "Project not found."),
        ("abc", 404, "Project not found."),
    ]:
        other = Api(api.sandbox, project=project)
        try:
            response = other.get("")
            type_ = AUTH if status == 403 else "invalid_request"
            code = "permission_denied" if status == 403 else "not_found"
            assert_error(response, status, type_, code, detail)
        finally:
            other.close()


def test_current_project_and_route_families(api: Api) -> None:
    names = {e["name"] for e in api.get("").json()["results"]}
    for family, project, suffix in [
        ("projects", "@current", "/"),
        ("environments", 1, ""),
        ("environments", "@current", "/"),
    ]:
        other = Api(api.sandbox, project=project, family=family)
        try:
            response = other.http.get(
                f"{other.base_url}/api/{family}/{project}/batch_exports{suffix}",
                headers={"Authorization": f"Bearer {api.key}"},
            )
            assert response.status_code == 200
            assert {e["name"] for e in response.json()["results"]} == names
        finally:
            other.close()


def test_export_of_other_project_is_404(api: Api) -> None:
    http_export = api.export_named("Project 2 events to HTTP")["id"]
    assert_error(api.get(f"{http_export}/"), 404, "invalid_request", "not_found", "Not found.")
    assert_error(api.get("not-a-uuid/"), 404, "invalid_request", "not_found", "Not found.")
    assert_error(api.get("/api/projects/1/nothing/"), 404, "invalid_request", "not_found", "Not found.")


def test_unrouted_methods_are_405(api: Api) -> None:
    export = api.export_named("Hourly events to S3")["id"]
    run = api.get(f"{export}/runs/").json()["results"][0]["id"]
    for method, path in [
        ("PUT", f"{export}/runs/{run}/"),
        ("DELETE", f"{export}/runs/{run}/"),
        ("PATCH", f"{export}/backfills/"),
        ("DELETE", ""),
        ("GET", f"{export}/pause/"),
        ("POST", f"{export}/runs/"),
    ]:
        assert_error(
            api.request(method, path), 405, "invalid_request", "method_not_allowed", f'Method "{method}" not allowed.'
        )


def test_deprecated_backfill_route_only_in_gen1(api: Api, gen: int) -> None:
    export = api.export_named("Hourly events to S3")["id"]
    response = api.post(
        f"{export}/backfill/", json={"start_at": "2025-06-14T00:00:00+00:00", "end_at": "2025-06-14T02:00:00+00:00"}
    )
    if gen == 1:
        assert response.status_code == 200
        assert response.json() == {
            "backfill_id": f"{export}-Backfill-2025-06-14T00:00:00+00:00-2025-06-14T02:00:00+00:00"
        }
    else:
        assert_error(response, 404, "invalid_request", "not_found", "Not found.")


def test_run_logs_route_is_broken(api: Api, gen: int) -> None:
    export = api.export_named("Hourly events to S3")["id"]
    run = api.get(f"{export}/runs/").json()["results"][0]["id"]
    response = api.get(f"{export}/runs/{run}/logs/", key=logs_key(api))
    assert_error(response, 500, "server_error", "error", "A server error occurred.")
    if gen == 1:  # no scope mapping: scoped keys are refused before the handler
        assert api.get(f"{export}/runs/{run}/logs/").status_code == 403


def test_malformed_json_body(api: Api) -> None:
    response = api.request("POST", "", content=b"{nope", headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    body = response.json()
    assert body["type"] == "invalid_request" and body["code"] == "parse_error" and body["attr"] is None
    assert body["detail"].startswith("JSON parse error - ")


def test_current_key(api: Api) -> None:
    body = api.get("/api/personal_api_keys/@current/").json()
    assert body["scopes"] == ["batch_export:read", "batch_export:write"]
    assert body["scoped_teams"] == [] and body["value"] is None
    assert api.get("/api/personal_api_keys/@current", key="phx_legacy").json()["scopes"] == ["*"]
    assert api.get("/api/personal_api_keys/@current/", key="phx_team2").json()["scoped_teams"] == [2]
    # the newest PostHog needs no scope for it
    assert api.get("/api/personal_api_keys/@current/", key="phx_other").status_code == 200
    assert_error(
        api.get("/api/personal_api_keys/@current/", key=None),
        401,
        AUTH,
        "not_authenticated",
        "Authentication credentials were not provided.",
    )


def test_current_key_scope_in_older_posthog(start) -> None:  # noqa: ANN001
    api = start(3, current_key_requires_scope=True)
    assert_error(
        api.get("/api/personal_api_keys/@current/"),
        403,
        AUTH,
        "permission_denied",
        "API key missing required scope 'personal_api_key:read'",
    )
    assert api.get("/api/personal_api_keys/@current/", key="phx_star").status_code == 200
    assert api.get("/api/personal_api_keys/@current/", key="phx_legacy").status_code == 200


def test_default_key_only_when_no_keys_given(start) -> None:  # noqa: ANN001
    api = start(3, keys=None)
    assert api.get("").status_code == 200
    assert api.get("", key="phx_read").status_code == 401


def test_throttling_per_key(start) -> None:  # noqa: ANN001
    api = start(3, seed=False)
    statuses = [api.get("", key="phx_read").status_code for _ in range(481)]
    assert statuses[:480] == [200] * 480
    response = api.get("", key="phx_read")
    assert response.status_code == 429
    body = response.json()
    assert body["type"] == "throttled_error" and body["code"] == "throttled" and body["attr"] is None
    assert body["detail"].startswith("Request was throttled. Expected available in ")
    assert api.get("", key="phx_write").status_code == 200  # per key
    api.control("POST", "throttle", {"enabled": False})
    assert api.get("", key="phx_read").status_code == 200


def test_throttle_off_by_config(start) -> None:  # noqa: ANN001
    api = start(3, seed=False, throttle=False)
    assert all(api.get("").status_code == 200 for _ in range(490))
