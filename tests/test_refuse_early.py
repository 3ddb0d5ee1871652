"""Writes PostHog would refuse are refused before anyone is asked to approve them (issue 22, item 3).

Through a real MCP client in both protocol eras, against the sandbox over loopback HTTP: Redshift COPY
inputs, Postgres and Redshift hosts, a test step that changes the destination type, and a hogql query
with a placeholder PostHog does not know. Each refusal names the field, quotes PostHog's rule (the
sandbox's own answer to the same body is checked to be the words quoted) and says the fix; the request
log shows that nothing was written, and for what validation refuses, that nothing was sent at all.
What this server cannot know (an integration the key may not read, the docs-page generation's looser
rules) goes through to the preview instead, and PostHog decides.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from posthog_sandbox import DEFAULT_API_KEY, SandboxKey
from tests.support import MODES, SandboxControl, confirm_with_token, connect, data, running_app, settings_for, text

INTEGRATION_KEY = "phx_refuse_early_integration_reader"
ARN = "arn:aws:iam::123456789012:role/redshift-copy"
KEYS = {"aws_access_key_id": "AKIAREFUSEEARLY00001", "aws_secret_access_key": "sandbox-canary-copy-secret"}
CLUSTER = "acme.abc123.us-east-1.redshift.amazonaws.com"
AWS_S3, SNOWFLAKE, AWS_REDSHIFT = 101, 102, 108  # the seeded integrations of project 1 (docs/sandbox.md)


@pytest.fixture(params=MODES)
def mode(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def gen3(make_sandbox: Callable[..., Any]) -> Iterator[tuple[Any, SandboxControl]]:
    """The newest PostHog, with the default key (batch exports only) and one that may also read integrations."""
    scopes = ["batch_export:read", "batch_export:write"]
    keys = [SandboxKey(DEFAULT_API_KEY, scopes), SandboxKey(INTEGRATION_KEY, [*scopes, "integration:read"])]
    sandbox = make_sandbox(generation=3, keys=keys)
    with SandboxControl(sandbox.base_url, DEFAULT_API_KEY) as control:
        yield sandbox, control


def _copy_inputs(**inputs: Any) -> dict[str, Any]:
    base = {"s3_bucket": "staging", "region_name": "us-east-1", "authorization": ARN, "bucket_credentials": AWS_S3}
    return {**base, **inputs}


def _redshift(config: dict[str, Any], integration: int | None = AWS_REDSHIFT) -> dict[str, Any]:
    destination: dict[str, Any] = {"type": "Redshift", "config": {"database": "dev", "host": CLUSTER, **config}}
    if integration is not None:
        destination["integration_id"] = integration
    return {"project_id": 1, "name": "Redshift COPY", "interval": "hour", "destination": destination}


def _posthog_says(control: SandboxControl, arguments: dict[str, Any], export_id: str | None = None) -> str:
    """What the sandbox answers the same body sent straight to it (nothing is kept: it is refused)."""
    body = {k: v for k, v in arguments.items() if k not in ("project_id", "batch_export_id")}
    if "destination" in body and "integration_id" in body["destination"]:
        destination = {k: v for k, v in body["destination"].items() if k != "integration_id"}
        body["destination"] = {**destination, "integration": body["destination"]["integration_id"]}
    if export_id is None:
        answer = control.api("POST", "1/batch_exports/", json=body)
    else:
        answer = control.api("PATCH", f"1/batch_exports/{export_id}/", json=body)
    assert answer.status_code == 400, answer.text
    return str(answer.json()["detail"])


async def _refused_before_preview(client: Client, name: str, arguments: dict[str, Any]) -> str:
    result = await client.call_tool(name, arguments)
    message = text(result)
    assert result.is_error, message
    assert "confirmation_token" not in message and "confirmation_required" not in message
    return message


def _created(control: SandboxControl, name: str, destination: dict[str, Any], **fields: Any) -> str:
    answer = control.api(
        "POST", "1/batch_exports/", json={"name": name, "interval": "hour", "destination": destination, **fields}
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


# ---------------------------------------------------------------------------------------------- validation


VALIDATION_CASES = {
    "copy-without-inputs": (
        "batch-export-create",
        _redshift({"mode": "COPY"}),
        ["destination.config.copy_inputs is required", "Missing required inputs for 'COPY'", "mode INSERT"],
    ),
    "copy-lacking-an-input": (
        "batch-export-create",
        _redshift({"mode": "COPY", "copy_inputs": {"s3_bucket": "staging", "region_name": "us-east-1"}}),
        ["copy_inputs lacks authorization, bucket_credentials", "Missing required input for 'COPY'"],
    ),
    "hogql-filters": (
        "batch-export-create",
        {
            "project_id": 1,
            "name": "hogql",
            "interval": "hour",
            "model": "hogql",
            "hogql_query": "SELECT event FROM events WHERE {filters}",
            "destination": {
                "type": "AwsS3",
                "config": {"bucket_name": "b", "region": "us-east-1", "prefix": "p/"},
                "integration_id": AWS_S3,
            },
        },
        ["hogql_query uses the placeholder {filters}", "Unsupported placeholder. Only {data_interval_start}"],
    ),
    "hogql-unknown": (
        "batch-export-update",
        {
            "project_id": 1,
            "batch_export_id": "0190f4b2-6c1e-7c3a-9a51-2b1f0e7a1d11",
            "model": "hogql",
            "hogql_query": "SELECT event FROM events WHERE timestamp >= {start}",
        },
        ["hogql_query uses the placeholder {start}", "Unknown placeholder '{start}'. Only {data_interval_start}"],
    ),
}


@pytest.mark.parametrize("case", VALIDATION_CASES, ids=list(VALIDATION_CASES))
async def test_what_needs_no_live_state_is_refused_before_any_request(
    gen3: tuple[Any, SandboxControl], mode: str, tmp_path: Path, case: str
) -> None:
    sandbox, control = gen3
    name, arguments, expected = VALIDATION_CASES[case]
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            control.clear_requests()
            message = await _refused_before_preview(client, name, arguments)
            assert control.requests() == [], "nothing may reach PostHog"
    for part in expected:
        assert part in message, message
    assert "Nothing was sent to PostHog" in message


# ---------------------------------------------------------------------------------------------- COPY


PREVIEW_CASES = {
    "bucket-credentials-a-string": (
        {"bucket_credentials": "keys please"},
        "copy_inputs.bucket_credentials must be an aws-s3 integration id or an object",
    ),
    "bucket-credentials-half": (
        {"bucket_credentials": {"aws_access_key_id": "AKIAREFUSEEARLY00001"}},
        "copy_inputs.bucket_credentials must be an aws-s3 integration id or an object",
    ),
    "authorization-blank": ({"authorization": "  "}, "copy_inputs.authorization is blank"),
    "authorization-half": (
        {"authorization": {"aws_secret_access_key": "sandbox-canary-half"}},
        "copy_inputs.authorization, as AWS credentials, lacks aws_access_key_id",
    ),
    "authorization-a-list": ({"authorization": [ARN]}, "copy_inputs.authorization is list"),
}


@pytest.mark.parametrize("case", PREVIEW_CASES, ids=list(PREVIEW_CASES))
async def test_copy_inputs_newer_posthog_refuses_are_refused_before_the_preview(
    gen3: tuple[Any, SandboxControl], mode: str, tmp_path: Path, case: str
) -> None:
    sandbox, control = gen3
    inputs, names = PREVIEW_CASES[case]
    arguments = _redshift({"mode": "COPY", "copy_inputs": _copy_inputs(**inputs)})
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            control.clear_requests()
            message = await _refused_before_preview(client, "batch-export-create", arguments)
            assert control.writes() == [], "nothing may be written"
    assert names in message and "Not done" in message, message
    assert f'("{_posthog_says(control, arguments)}")' in message, "PostHog's own words are quoted"
    assert "sandbox-canary" not in message


async def test_a_copy_integration_of_another_kind_is_refused_where_the_key_may_read_it(
    gen3: tuple[Any, SandboxControl], mode: str, tmp_path: Path
) -> None:
    sandbox, control = gen3
    arguments = _redshift({"mode": "COPY", "copy_inputs": _copy_inputs(bucket_credentials=SNOWFLAKE)})
    async with running_app(settings_for(sandbox.base_url, INTEGRATION_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            control.clear_requests()
            message = await _refused_before_preview(client, "batch-export-create", arguments)
            reads = [r["path"] for r in control.requests()]
            assert control.writes() == []
    assert f"copy_inputs.bucket_credentials {SNOWFLAKE} is a snowflake integration" in message, message
    assert _posthog_says(control, arguments) in message
    assert f"/api/projects/1/integrations/{SNOWFLAKE}/" in reads

    # A key without integration:read cannot tell: the preview is offered and PostHog refuses on confirm.
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            preview = data(await client.call_tool("batch-export-create", arguments))
            assert preview["status"] == "confirmation_required"


async def test_an_update_keeps_copy_credentials_that_use_an_integration(
    gen3: tuple[Any, SandboxControl], mode: str, tmp_path: Path
) -> None:
    sandbox, control = gen3
    config = {"database": "dev", "host": CLUSTER, "mode": "COPY", "copy_inputs": _copy_inputs()}
    export_id = _created(control, "Redshift COPY", {"type": "Redshift", "config": config, "integration": AWS_REDSHIFT})
    switch = {
        "project_id": 1,
        "batch_export_id": export_id,
        "destination": {
            "type": "Redshift",
            "config": {"copy_inputs": {"bucket_credentials": KEYS}},
            "integration_id": AWS_REDSHIFT,
        },
    }
    keep = {**switch, "destination": {"type": "Redshift", "config": {"copy_inputs": {"s3_bucket": "staging-2"}}}}
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            control.clear_requests()
            message = await _refused_before_preview(client, "batch-export-update", switch)
            assert control.writes() == []
            applied = await confirm_with_token(client, "batch-export-update", keep)
    assert f"copy_inputs.bucket_credentials uses integration {AWS_S3}" in message, message
    assert "leave bucket_credentials out" in message
    assert _posthog_says(control, switch, export_id) in message
    assert "sandbox-canary" not in message
    assert applied["destination"]["config"]["copy_inputs"]["s3_bucket"] == "staging-2"


async def test_stored_inline_copy_credentials_are_not_mistaken_for_missing_ones(
    gen3: tuple[Any, SandboxControl], mode: str, tmp_path: Path
) -> None:
    """PostHog shows stored credentials without their keys; an update that leaves them alone still works."""
    sandbox, control = gen3
    inline = _copy_inputs(authorization=KEYS, bucket_credentials=KEYS)
    config = {"database": "dev", "host": CLUSTER, "mode": "COPY", "copy_inputs": inline}
    export_id = _created(
        control, "Redshift COPY inline", {"type": "Redshift", "config": config, "integration": AWS_REDSHIFT}
    )
    shown = control.api("GET", f"1/batch_exports/{export_id}/").json()["destination"]["config"]["copy_inputs"]
    assert shown["bucket_credentials"] == {} and shown["authorization"] == {}
    arguments = {
        "project_id": 1,
        "batch_export_id": export_id,
        "destination": {"type": "Redshift", "config": {"copy_inputs": {"region_name": "eu-west-1"}}},
    }
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            applied = await confirm_with_token(client, "batch-export-update", arguments)
    assert applied["destination"]["config"]["copy_inputs"]["region_name"] == "eu-west-1"


# ---------------------------------------------------------------------------------------------- hosts


HOST_CASES = {
    "localhost": ("localhost", "destination.config.host 'localhost' is a local, metadata or internal address"),
    "private": ("10.0.0.5", "destination.config.host '10.0.0.5' is a local, metadata or internal address"),
    "internal-name": ("warehouse.corp", "destination.config.host 'warehouse.corp' is a local"),
    "connection-string": (
        "postgres://admin:sandbox-canary-host-password@cluster.example.com:5439/dev",
        "destination.config.host is not a bare hostname or IP address",
    ),
}


@pytest.mark.parametrize("case", HOST_CASES, ids=list(HOST_CASES))
async def test_a_host_posthog_will_not_reach_is_refused_before_the_preview(
    gen3: tuple[Any, SandboxControl], mode: str, tmp_path: Path, case: str
) -> None:
    sandbox, control = gen3
    host, names = HOST_CASES[case]
    create = _redshift({"host": host})
    export_id = _created(
        control,
        "Redshift",
        {"type": "Redshift", "config": {"database": "dev", "host": CLUSTER}, "integration": AWS_REDSHIFT},
    )
    update = {
        "project_id": 1,
        "batch_export_id": export_id,
        "destination": {"type": "Redshift", "config": {"host": host}, "integration_id": AWS_REDSHIFT},
    }
    async with running_app(settings_for(sandbox.base_url, INTEGRATION_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            control.clear_requests()
            created = await _refused_before_preview(client, "batch-export-create", create)
            updated = await _refused_before_preview(client, "batch-export-update", update)
            assert control.writes() == []
    for message in (created, updated):
        assert names in message and "Not done" in message, message
        assert f'("{_posthog_says(control, create)}")' in message
        assert "sandbox-canary" not in message and "admin" not in message
    assert _posthog_says(control, update, export_id) in updated


async def test_a_host_behind_an_integration_the_key_cannot_read_is_left_to_posthog(
    gen3: tuple[Any, SandboxControl], mode: str, tmp_path: Path
) -> None:
    """Which host PostHog checks depends on the integration (one holding a host wins over the config's);
    without integration:read the preview is offered, and PostHog's refusal, on confirm, is the one quoted."""
    sandbox, control = gen3
    arguments = _redshift({"host": "localhost"})
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            first = data(await client.call_tool("batch-export-create", arguments))
            assert first["status"] == "confirmation_required"
            confirmed = await client.call_tool(
                "batch-export-create", {**arguments, "confirmation_token": first["confirmation_token"]}
            )
    assert confirmed.is_error and "Could not reach this host." in text(confirmed)


# ---------------------------------------------------------------------------------------------- hogql


async def test_an_update_of_a_hogql_export_with_an_unknown_placeholder_is_refused_before_the_preview(
    gen3: tuple[Any, SandboxControl], mode: str, tmp_path: Path
) -> None:
    sandbox, control = gen3
    s3 = {"type": "AwsS3", "config": {"bucket_name": "b", "region": "us-east-1", "prefix": "p/"}, "integration": AWS_S3}
    good = "SELECT event FROM events WHERE timestamp >= {data_interval_start} AND timestamp < {data_interval_end}"
    export_id = _created(control, "HogQL export", s3, model="hogql", hogql_query=good)
    bad = {"project_id": 1, "batch_export_id": export_id, "hogql_query": good.replace("data_interval_end", "until")}
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            control.clear_requests()
            message = await _refused_before_preview(client, "batch-export-update", bad)
            assert control.writes() == []
            fine = data(await client.call_tool("batch-export-update", {**bad, "hogql_query": good + " LIMIT 10"}))
    assert "hogql_query uses the placeholder {until}" in message, message
    assert _posthog_says(control, bad, export_id) in message
    assert fine["status"] == "confirmation_required"


# ---------------------------------------------------------------------------------------------- test steps


COMPLETE_CONFIG = {
    "Snowflake": {"database": "d", "warehouse": "w", "schema": "s"},
    "AwsS3": {"bucket_name": "b", "region": "us-east-1", "prefix": "p/"},
}


@pytest.mark.parametrize(
    ("export_name", "stored", "asked"),
    [("Hourly events to S3", "AwsS3", "Snowflake"), ("Paused events to Postgres", "Postgres", "AwsS3")],
    ids=["s3-as-snowflake", "postgres-as-s3"],
)
async def test_a_test_step_that_changes_the_destination_type_is_refused_before_it_is_sent(
    gen3: tuple[Any, SandboxControl], mode: str, tmp_path: Path, export_name: str, stored: str, asked: str
) -> None:
    sandbox, control = gen3
    export_id = control.export_id(export_name)
    arguments = {
        "project_id": 1,
        "batch_export_id": export_id,
        "step": 0,
        "destination": {"type": asked, "config": COMPLETE_CONFIG[asked], "integration_id": AWS_S3},
    }
    async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
        async with connect(app, mode) as client:
            control.clear_requests()
            result = await client.call_tool("batch-export-test-step", arguments)
            assert control.writes() == [], "the step may not be sent"
    message = text(result)
    assert result.is_error and f"destination.type {asked} is not the export's own ({stored})" in message, message
    direct = control.api(
        "POST",
        f"1/batch_exports/{export_id}/run_test_step/",
        json={
            "name": export_name,
            "interval": "hour",
            "step": 0,
            "destination": {"type": asked, "config": COMPLETE_CONFIG[asked], "integration": AWS_S3},
        },
    )
    assert direct.status_code == 400 and direct.json()["detail"] in message
    assert f"send destination.type {stored}" in message


# ---------------------------------------------------------------------------------------------- older PostHog


async def test_the_docs_page_generation_gets_only_the_rules_it_has(
    make_sandbox: Callable[..., Any], mode: str, tmp_path: Path
) -> None:
    """Gen-1 takes any non-empty COPY credentials and checks no host: those writes go through."""
    sandbox = make_sandbox(generation=1)
    inline = {"user": "u", "password": "sandbox-canary-gen1-password"}
    copy = _copy_inputs(bucket_credentials="any-non-empty-value", authorization="another")
    arguments = _redshift({"host": "localhost", **inline, "mode": "COPY", "copy_inputs": copy}, integration=None)
    with SandboxControl(sandbox.base_url, DEFAULT_API_KEY) as control:
        async with running_app(settings_for(sandbox.base_url, DEFAULT_API_KEY, tmp_path)) as app:
            async with connect(app, mode) as client:
                created = await confirm_with_token(client, "batch-export-create", arguments)
                missing = await _refused_before_preview(
                    client, "batch-export-create", _redshift({**inline, "mode": "COPY"}, integration=None)
                )
        assert control.state()["exports"]
    assert created["destination"]["config"]["host"] == "localhost"
    assert "Missing required inputs for 'COPY'" in missing
