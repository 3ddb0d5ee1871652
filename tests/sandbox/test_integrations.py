"""Integrations (docs/posthog-api.md, "Integrations") over real loopback HTTP: the seeded credentials, the
scopes, the shape that never carries a secret, creation per kind as PostHog's API allows it, no update,
delete, the control for the kinds the API cannot create, and rotating exports onto another credential."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from posthog_sandbox import DEFAULT_API_KEY, SandboxKey

from .conftest import KEYS, Api, assert_error, assert_validation

LIST = "/api/projects/1/integrations/"
INTEGRATION_KEYS = [
    *KEYS,
    SandboxKey("phx_integration_read", ["integration:read"]),
    SandboxKey("phx_integration_write", ["integration:write", "batch_export:write"]),
]
FIELDS = {"id", "kind", "config", "created_at", "created_by", "errors", "display_name"}
SEEDED = {
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
    111: "snowflake",
}


@pytest.fixture
def api(start: Callable[..., Api]) -> Api:
    return start(3, key="phx_integration_write", keys=INTEGRATION_KEYS)


def create(api: Api, kind: str, config: dict[str, Any]) -> Any:
    return api.post(LIST, json={"kind": kind, "config": config})


def test_seeded_integrations_and_their_shape(api: Api) -> None:
    page = api.get(LIST, key="phx_integration_read").json()
    assert page["count"] == 11 and page["next"] is None
    assert {i["id"]: i["kind"] for i in page["results"]} == SEEDED
    assert all(set(i) == FIELDS for i in page["results"])
    assert "sandbox-canary" not in json.dumps(page) and "sensitive_config" not in json.dumps(page)
    by_id = {i["id"]: i for i in page["results"]}
    assert by_id[102]["display_name"] == "acme-snowflake-a (account: acme-xy12345, password auth)"
    assert by_id[111]["config"]["authentication_type"] == "keypair"  # "B", to rotate onto
    assert by_id[101]["display_name"] == "acme-prod-aws (AWS account 123456789012)"
    assert by_id[103]["display_name"] == "ID: 1-db.sandbox.internal-5432-posthog_export"
    assert by_id[101]["created_by"]["email"].endswith("@acme.example") and by_id[101]["errors"] == ""
    snowflakes = api.get(f"{LIST}?kind=snowflake").json()["results"]
    assert [i["id"] for i in snowflakes] == [102, 111]
    assert_validation(
        api.get(f"{LIST}?kind=oracle"),
        "Select a valid choice. oracle is not one of the available choices.",
        "kind",
        "invalid_choice",
    )
    two = api.get("/api/environments/2/integrations/").json()["results"]
    assert {i["id"] for i in two} == {200 + offset for offset in range(1, 12)}
    assert api.get(f"{LIST}?limit=2&offset=2").json()["results"][0]["id"] == 103


def test_scopes(api: Api) -> None:
    missing = "API key missing required scope '{}'"
    err = ("authentication_error", "permission_denied")
    assert_error(api.get(LIST, key=DEFAULT_API_KEY), 403, *err, missing.format("integration:read"))
    assert_error(api.get(f"{LIST}101/", key="phx_read"), 403, *err, missing.format("integration:read"))
    body = {"kind": "databricks", "config": {"server_hostname": "h.cloud.databricks.com"}}
    assert_error(api.post(LIST, json=body, key="phx_integration_read"), 403, *err, missing.format("integration:write"))
    assert_error(api.delete(f"{LIST}101/", key="phx_integration_read"), 403, *err, missing.format("integration:write"))
    assert api.get(LIST, key="phx_star").status_code == 200
    assert api.get(LIST).status_code == 200  # write implies read


def test_retrieve_no_update_and_not_found(api: Api) -> None:
    one = api.get(f"{LIST}102/").json()
    assert one["kind"] == "snowflake" and set(one) == FIELDS
    for path in (f"{LIST}201/", f"{LIST}999/", f"{LIST}abc/"):
        assert_error(api.get(path), 404, "invalid_request", "not_found", "Not found.")
    for method in ("PATCH", "PUT"):
        response = api.request(method, f"{LIST}102/", json={"config": {"user": "x"}})
        assert_error(response, 405, "invalid_request", "method_not_allowed", f'Method "{method}" not allowed.')
    assert api.get(f"{LIST}102/").json() == one


def test_create_named_kinds_refuse_a_taken_name(api: Api) -> None:
    config = {
        "name": "prod-snowflake",
        "account": "myorg-myaccount",
        "user": "posthog_svc",
        "password": "sandbox-canary-pw",
    }
    made = create(api, "snowflake", {**config, "authentication_type": "password"})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["config"] == {
        "name": "prod-snowflake",
        "account": "myorg-myaccount",
        "user": "posthog_svc",
        "authentication_type": "password",
    }
    assert body["id"] > 211 and body["created_by"]["id"] == 1 and "sandbox-canary" not in made.text
    assert body["display_name"] == "prod-snowflake (account: myorg-myaccount, password auth)"
    assert_validation(create(api, "snowflake", config), "An integration named 'prod-snowflake' already exists")
    assert_validation(
        create(api, "snowflake", {"account": "a", "user": "u"}), "Name, account, and user must be provided"
    )
    assert_validation(
        create(api, "snowflake", {**config, "name": "n2", "account": "https://x.snowflakecomputing.com"}),
        "Snowflake integration is not valid: invalid account identifier 'https://x.snowflakecomputing.com'",
    )
    assert_validation(
        create(api, "snowflake", {"name": "n3", "account": "a", "user": "u", "authentication_type": "keypair"}),
        "Private key is required for key-pair authentication",
    )

    s3 = create(
        api,
        "aws-s3",
        {
            "name": "prod-aws-2",
            "aws_access_key_id": "AKIASANDBOXCANARY123",
            "aws_secret_access_key": "sandbox-canary-s",
        },
    )
    assert s3.status_code == 201 and set(s3.json()["config"]) == {"name", "aws_account_id"}
    assert "sandbox-canary" not in s3.text and "AKIA" not in s3.text
    assert_validation(
        create(api, "aws-s3", {"name": "bad", "aws_access_key_id": "nope", "aws_secret_access_key": "s"}),
        "AWS credentials are not valid: The security token included in the request is invalid.",
    )
    assert_validation(
        create(api, "aws-s3", {"name": "n"}), "Name, access key ID, and secret access key must be provided"
    )
    compatible = {
        "name": "r2",
        "aws_access_key_id": "k",
        "aws_secret_access_key": "s",
        "endpoint_url": "http://127.0.0.1:9000",
    }
    response = create(api, "s3-compatible", compatible)
    assert response.status_code == 400 and response.json()["detail"].startswith("Invalid endpoint URL")
    compatible["endpoint_url"] = "https://account.r2.cloudflarestorage.com"
    assert create(api, "s3-compatible", compatible).json()["display_name"] == (
        "r2 (access key, https://account.r2.cloudflarestorage.com)"
    )


def test_create_upserting_kinds_rotate_in_place(api: Api) -> None:
    config = {"host": "warehouse.acme.example", "user": "exporter", "password": "sandbox-canary-old"}
    first = create(api, "postgresql", config)
    assert first.status_code == 201, first.text
    again = create(api, "postgresql", {**config, "password": "sandbox-canary-new"})
    assert again.status_code == 201 and again.json()["id"] == first.json()["id"]  # same host, port and user
    assert first.json()["config"] == {
        "host": "warehouse.acme.example",
        "port": 5432,
        "user": "exporter",
        "ssl_mode": "require",
        "ssl_root_cert": None,
    }
    assert_validation(create(api, "postgresql", {**config, "host": "10.0.0.5"}), "Invalid host: '10.0.0.5'")
    assert_validation(
        create(api, "postgresql", {**config, "ssl_mode": "verify-full"}),
        "Root certificate must be provided when verifying server certificates",
    )

    azure = create(api, "azure-blob", {"connection_string": "AccountName=acmeexports;AccountKey=sandbox-canary"})
    assert azure.json()["id"] == 106 and azure.json()["config"] == {}  # the seeded account, updated
    assert_validation(
        create(api, "azure-blob", {"connection_string": "AccountKey=x"}),
        "Could not extract AccountName from connection string. Ensure it contains 'AccountName=<your-account-name>;'",
    )
    databricks = {"server_hostname": "https://x.cloud.databricks.com", "client_id": "c", "client_secret": "s"}
    assert_validation(
        create(api, "databricks", databricks),
        "Databricks integration is not valid: 'server_hostname' should not be a full URL",
    )
    gcp = {"service_account_email": "svc@p.iam.gserviceaccount.com", "project_id": "p"}
    impersonated = create(api, "google-cloud-service-account", gcp)
    assert impersonated.json()["display_name"] == "svc@p.iam.gserviceaccount.com-1-impersonated"


def test_kinds_the_api_does_not_create(api: Api) -> None:
    assert_validation(create(api, "aws-redshift", {"name": "r"}), "Kind not supported")
    assert_validation(create(api, "slack", {}), "Kind not supported")
    assert_validation(api.post(LIST, json={"config": {}}), "This field is required.", "kind", "required")
    assert_validation(
        api.post(LIST, json={"kind": "oracle"}), '"oracle" is not a valid choice.', "kind", "invalid_choice"
    )
    added = api.controls.add_integration(
        "aws-redshift", "redshift-b", {"name": "redshift-b", "user": "u"}, {"aws_secret_access_key": "sandbox-canary"}
    )
    assert added["kind"] == "aws-redshift" and "sandbox-canary" not in json.dumps(added)
    assert api.get(f"{LIST}{added['id']}/").json() == added
    destination = {"type": "Redshift", "integration": added["id"], "config": {"database": "d", "host": "r.example.com"}}
    export = api.post("", json={"name": "To Redshift B", "interval": "hour", "destination": destination})
    assert export.status_code == 201, export.text


def test_rotating_snowflake_exports_onto_b(start: Callable[..., Api]) -> None:
    api = start(3, key="phx_star", keys=INTEGRATION_KEYS, exports=60, throttle=False)
    exports = api.get("?limit=100").json()["results"]
    on_a = [e for e in exports if e["destination"]["type"] == "Snowflake"]
    assert len(on_a) >= 2 and {e["destination"]["integration"] for e in on_a} == {102}  # one credential, shared
    activity = api.get("/api/projects/1/activity_log/?page=1").json()["count"]
    for export in on_a:
        patch = {"destination": {"type": "Snowflake", "config": {}, "integration": 111}}
        assert api.patch(f"{export['id']}/", json=patch).status_code == 200
    assert {api.get(f"{e['id']}/").json()["destination"]["integration"] for e in on_a} == {111}
    # The destination is not the export's own row: PostHog's activity log does not see a rotation.
    assert api.get("/api/projects/1/activity_log/?page=1").json()["count"] == activity


def test_delete_leaves_exports_without_it(api: Api) -> None:
    export = api.export_named("Hourly events to S3")["id"]
    assert api.delete(f"{LIST}101/").status_code == 204
    assert api.get(f"{LIST}101/").status_code == 404
    assert api.get(f"{export}/").json()["destination"]["integration"] is None  # on_delete=SET_NULL
    assert 101 not in {i["id"] for i in api.state()["integrations"]}
