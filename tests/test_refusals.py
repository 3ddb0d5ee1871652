"""The rules of tools/refusals.py, one by one, on a fake PostHog: what PostHog would refuse is refused with
the field, PostHog's words and the fix; what it would accept, or what this server cannot know, is not.

tests/test_refuse_early.py drives the same rules through a real MCP client against the sandbox.
"""

from __future__ import annotations

from typing import Any

import pytest

from tools.declaration import NotPossible
from tools.refusals import (
    INVALID_HOST,
    UNREACHABLE_HOST,
    IntegrationReader,
    asked_once,
    copy_inputs_missing,
    copy_inputs_problem,
    hogql_query_problem,
    host_problem,
    host_verdict,
    known,
    merged_config,
    refuse_destination,
    type_change,
)
from tools.upstream import UpstreamError


class Refused(UpstreamError):
    def __init__(self, status: int) -> None:
        super().__init__(f"HTTP {status}")
        self.status, self.code, self.detail = status, None, f"HTTP {status}"


class FakePostHog:
    """Integrations by id; a read of any other, or of all when `forbidden`, is refused like PostHog does."""

    def __init__(self, integrations: dict[int, dict[str, Any]] | None = None, forbidden: bool = False) -> None:
        self.integrations = integrations or {}
        self.forbidden = forbidden
        self.reads: list[str] = []

    async def send(self, request: Any) -> Any:
        raise AssertionError("a refusal check never writes")

    async def request(self, method: str, path: str, *, query: Any = None, json: Any = None) -> Any:
        assert method == "GET", "a refusal check only reads"
        self.reads.append(path)
        if self.forbidden:
            raise Refused(403)
        found = self.integrations.get(int(path.strip("/").split("/")[-1]))
        if found is None:
            raise Refused(404)
        return found


AWS_S3 = {"id": 101, "kind": "aws-s3", "config": {"name": "acme"}}
SNOWFLAKE = {"id": 102, "kind": "snowflake", "config": {"name": "sf"}}
AWS_REDSHIFT = {"id": 108, "kind": "aws-redshift", "config": {"name": "rs", "aws_account_id": "1"}}
PLAIN_REDSHIFT = {"id": 112, "kind": "aws-redshift", "config": {"host": "cluster.example.com", "port": 5439}}
KEYS = {"aws_access_key_id": "AKIA-secret-id", "aws_secret_access_key": "secret-key"}
ARN = "arn:aws:iam::123456789012:role/redshift-copy"


def _copy(**inputs: Any) -> dict[str, Any]:
    base = {"s3_bucket": "staging", "region_name": "us-east-1", "authorization": ARN, "bucket_credentials": 101}
    return {"database": "dev", "host": "cluster.example.com", "mode": "COPY", "copy_inputs": {**base, **inputs}}


async def _copy_problem(
    config: dict[str, Any],
    stored: dict[str, Any] | None = None,
    *,
    newer: bool = True,
    posthog: FakePostHog | None = None,
) -> str | None:
    stored = stored or {}
    reader = IntegrationReader(posthog or FakePostHog({101: AWS_S3, 102: SNOWFLAKE}))
    return await copy_inputs_problem(
        merged_config(stored, config), stored, updating=bool(stored), newer=known(newer), integrations=reader
    )


# ---------------------------------------------------------------------------------------------- COPY


def test_copy_needs_its_inputs_in_every_generation() -> None:
    assert copy_inputs_missing({"mode": "INSERT"}) is None
    assert copy_inputs_missing({"mode": "COPY", "copy_inputs": {**_copy()["copy_inputs"]}}) is None
    for empty in ({"mode": "COPY"}, {"mode": "COPY", "copy_inputs": {}}, {"mode": "COPY", "copy_inputs": None}):
        problem = copy_inputs_missing(empty)
        assert problem and "destination.config.copy_inputs is required" in problem
        assert "Missing required inputs for 'COPY'" in problem and "mode INSERT" in problem
    problem = copy_inputs_missing({"mode": "COPY", "copy_inputs": {"s3_bucket": "b", "region_name": "r"}})
    assert problem and "lacks authorization, bucket_credentials" in problem
    assert "Missing required input for 'COPY'" in problem
    problem = copy_inputs_missing({"mode": "COPY", "copy_inputs": "s3://bucket"})
    assert problem and "Missing required input for 'COPY'" in problem


async def test_copy_integration_ids_must_name_an_aws_s3_integration_of_the_project() -> None:
    assert await _copy_problem(_copy()) is None
    assert await _copy_problem(_copy(bucket_credentials="101", authorization=101)) is None
    wrong_kind = await _copy_problem(_copy(bucket_credentials=102))
    assert wrong_kind and "copy_inputs.bucket_credentials 102 is a snowflake integration" in wrong_kind
    assert "'bucket_credentials' does not reference an AWS S3 integration of this project." in wrong_kind
    absent = await _copy_problem(_copy(authorization="999"))
    assert absent and "copy_inputs.authorization 999 is no integration of this project" in absent


async def test_an_integration_this_server_cannot_read_is_left_to_posthog() -> None:
    unreadable = FakePostHog(forbidden=True)
    assert await _copy_problem(_copy(bucket_credentials=102), posthog=unreadable) is None
    assert unreadable.reads == ["integrations/102/"]


async def test_a_boolean_is_no_integration_id() -> None:
    problem = await _copy_problem(_copy(bucket_credentials=True))
    assert problem and "Missing required bucket credentials for 'COPY'" in problem


async def test_bucket_credentials_are_an_id_or_both_keys() -> None:
    assert await _copy_problem(_copy(bucket_credentials=KEYS)) is None
    for partial in ({"aws_access_key_id": "x"}, "keys", ["x"], None):
        problem = await _copy_problem(_copy(bucket_credentials=partial))
        assert problem and "copy_inputs.bucket_credentials must be an aws-s3 integration id" in problem, partial
        assert "Missing required bucket credentials for 'COPY'" in problem


async def test_authorization_is_an_id_keys_or_a_role() -> None:
    assert await _copy_problem(_copy(authorization=KEYS)) is None
    missing = await _copy_problem(_copy(authorization={"aws_access_key_id": "x"}))
    assert missing and "lacks aws_secret_access_key" in missing and "Missing required credentials for 'COPY'" in missing
    blank = await _copy_problem(_copy(authorization="  "))
    assert blank and "authorization is blank" in blank and "Missing required IAM role for 'COPY'" in blank
    for other in (["arn"], 1.5, None, False):
        problem = await _copy_problem(_copy(authorization=other))
        assert problem and "must be an IAM role ARN, AWS credentials, or an integration ID." in problem, other


async def test_the_newer_rules_apply_only_to_newer_posthog() -> None:
    """The docs-page generation takes any non-empty value; only the inputs' presence is checked there."""
    assert await _copy_problem(_copy(bucket_credentials="keys"), newer=False) is None
    assert await _copy_problem(_copy(authorization=["x"]), newer=False) is None
    assert await _copy_problem({"mode": "COPY"}, newer=False)


async def test_an_update_may_not_turn_an_integration_into_inline_credentials() -> None:
    stored = {**_copy(bucket_credentials="101", authorization=ARN)}
    switched = await _copy_problem({"copy_inputs": {"bucket_credentials": KEYS}}, stored)
    assert switched and "copy_inputs.bucket_credentials uses integration 101" in switched
    assert "Cannot switch 'bucket_credentials' from an integration to inline credentials." in switched
    assert "leave bucket_credentials out" in switched
    assert await _copy_problem({"copy_inputs": {"s3_bucket": "other"}}, stored) is None
    assert await _copy_problem({"copy_inputs": {"bucket_credentials": 101}}, stored) is None


async def test_an_update_does_not_take_hidden_secrets_for_missing_ones() -> None:
    """PostHog shows stored credentials without their keys; merged, they are still there."""
    stored = {**_copy(bucket_credentials={}, authorization={})}  # as PostHog shows {keys}
    assert await _copy_problem({"copy_inputs": {"s3_bucket": "other"}}, stored) is None
    assert await _copy_problem({"copy_inputs": {"authorization": {"aws_access_key_id": "new"}}}, stored) is None
    replaced = await _copy_problem({"copy_inputs": {"bucket_credentials": "keys"}}, stored)
    assert replaced and "Missing required bucket credentials for 'COPY'" in replaced


def test_the_config_merge_replaces_scalars_and_merges_objects() -> None:
    stored = {"mode": "COPY", "copy_inputs": {"authorization": ARN, "bucket_credentials": {}, "s3_bucket": "a"}}
    sent = {"copy_inputs": {"authorization": KEYS, "bucket_credentials": {"aws_access_key_id": "x"}}}
    assert merged_config(stored, sent) == {
        "mode": "COPY",
        "copy_inputs": {"authorization": KEYS, "bucket_credentials": {"aws_access_key_id": "x"}, "s3_bucket": "a"},
    }
    assert stored["copy_inputs"]["authorization"] == ARN, "the stored config is not changed"


# ---------------------------------------------------------------------------------------------- hosts


@pytest.mark.parametrize(
    ("host", "verdict"),
    [
        ("db.example.com", None),
        ("db_1.example.com.", None),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
        ("postgres://user:pw@db.example.com/analytics", "invalid"),
        ("db.example.com:5432", "invalid"),
        ("db.example.com/path", "invalid"),
        ("", "invalid"),
        ("   ", "invalid"),
        (5432, "invalid"),
        ("localhost", "unreachable"),
        ("LocalHost.", "unreachable"),
        ("ｌｏｃａｌｈｏｓｔ", "unreachable"),  # fullwidth: IDNA maps it to localhost
        ("127.0.0.1", "unreachable"),
        ("::1", "unreachable"),
        ("::ffff:10.0.0.1", "unreachable"),
        ("169.254.169.254", "unreachable"),
        ("metadata.google.internal", "unreachable"),
        ("db.sandbox.internal", "unreachable"),
        ("pg.svc.cluster.local", "unreachable"),
        ("db.corp", "unreachable"),
        ("nas.home.arpa", "unreachable"),
        ("10.1.2.3", "unreachable"),
        ("192.168.0.10", "unreachable"),
        ("100.64.0.1", "unreachable"),
        ("224.0.0.1", "unreachable"),
        ("0.0.0.0", "unreachable"),
    ],
)
def test_host_verdicts_follow_posthogs_check(host: Any, verdict: str | None) -> None:
    assert host_verdict(host) == verdict


def test_host_messages_name_the_field_and_the_fix_and_never_echo_a_malformed_value() -> None:
    invalid = host_problem("postgres://admin:hunter2@db.example.com", stored=False)
    assert invalid and invalid.startswith("destination.config.host is not a bare hostname")
    assert INVALID_HOST in invalid and "destination.config.port" in invalid
    assert "hunter2" not in invalid and "admin" not in invalid
    unreachable = host_problem("10.0.0.5", stored=False)
    assert unreachable and "'10.0.0.5'" in unreachable and UNREACHABLE_HOST in unreachable
    stored = host_problem("localhost", stored=True)
    assert stored and stored.startswith("The export's stored destination.config.host 'localhost'")
    assert "send destination.config.host with" in stored
    assert host_problem("db.example.com", stored=False) is None


async def _refusal(
    dest_type: str,
    sent: dict[str, Any],
    stored: dict[str, Any] | None = None,
    *,
    integration_id: int | None = None,
    newer: bool = True,
    posthog: FakePostHog | None = None,
) -> str | None:
    try:
        await refuse_destination(
            posthog or FakePostHog({101: AWS_S3, 108: AWS_REDSHIFT, 112: PLAIN_REDSHIFT}),
            dest_type,
            sent,
            stored or {},
            integration_id=integration_id,
            updating=stored is not None,
            newer=known(newer),
        )
    except NotPossible as reason:
        return str(reason)
    return None


async def test_the_host_posthog_checks_is_the_integrations_when_it_holds_one() -> None:
    # Redshift with an AWS-flavoured integration (no host): the config's host is checked.
    refused = await _refusal("Redshift", {"database": "d", "host": "localhost"}, integration_id=108)
    assert refused and UNREACHABLE_HOST in refused
    # A plain Redshift integration holds the host, so PostHog never looks at the config's.
    assert await _refusal("Redshift", {"database": "d", "host": "localhost"}, integration_id=112) is None
    # A postgresql integration always holds one.
    assert await _refusal("Postgres", {"database": "d", "host": "localhost"}, integration_id=103) is None
    # Inline credentials (an export made before integrations): the config's host.
    assert await _refusal("Postgres", {"database": "d", "host": "10.0.0.5"}, {"database": "d"})


async def test_an_integration_that_cannot_be_read_leaves_the_host_to_posthog() -> None:
    posthog = FakePostHog(forbidden=True)
    assert await _refusal("Redshift", {"host": "localhost"}, integration_id=108, posthog=posthog) is None
    assert posthog.reads == ["integrations/108/"]


async def test_a_good_host_costs_no_read() -> None:
    posthog = FakePostHog({108: AWS_REDSHIFT})
    assert await _refusal("Redshift", {"host": "cluster.example.com"}, integration_id=108, posthog=posthog) is None
    assert posthog.reads == []


async def test_a_stored_host_posthog_refuses_is_named_as_stored() -> None:
    refused = await _refusal("Postgres", {"table_name": "t"}, {"database": "d", "host": "db.lan"})
    assert refused and "stored destination.config.host 'db.lan'" in refused
    assert await _refusal("Postgres", {"host": "db.example.com"}, {"database": "d", "host": "db.lan"}) is None


async def test_hosts_are_checked_only_by_newer_posthog_and_only_for_postgres_and_redshift() -> None:
    assert await _refusal("Postgres", {"database": "d", "host": "localhost"}, newer=False) is None
    assert await _refusal("Snowflake", {"database": "d", "host": "localhost"}) is None


async def test_copy_comes_before_the_host() -> None:
    refused = await _refusal("Redshift", {**_copy(bucket_credentials="x"), "host": "localhost"}, integration_id=108)
    assert refused and "bucket_credentials" in refused


async def test_the_generation_is_asked_once_and_only_when_a_rule_refuses() -> None:
    asked: list[int] = []

    async def probe() -> bool:
        asked.append(1)
        return True

    newer = asked_once(probe)
    posthog = FakePostHog({101: AWS_S3, 108: AWS_REDSHIFT})
    await refuse_destination(posthog, "Redshift", _copy(), {}, integration_id=108, updating=False, newer=newer)
    assert asked == []
    with pytest.raises(NotPossible):
        await refuse_destination(
            posthog, "Redshift", {**_copy(), "host": "localhost"}, {}, integration_id=108, updating=False, newer=newer
        )
    assert await newer() and asked == [1]


# ---------------------------------------------------------------------------------------------- hogql


@pytest.mark.parametrize(
    "query",
    [
        "SELECT event FROM events WHERE timestamp >= {data_interval_start} AND timestamp < {data_interval_end}",
        "SELECT event FROM events WHERE timestamp >= { data_interval_start }",
        "SELECT event, '{not_a_placeholder}' AS s FROM events",
        "SELECT event FROM events -- {commented}\nWHERE 1 = 1",
        "SELECT event FROM events /* {commented} */",
        "SELECT `odd{name}` FROM events",
        "SELECT {'a': 1} AS d FROM events",
        "SELECT f'{event}' AS t FROM events WHERE x = {unknown}",  # template strings: left to PostHog
        "SELECT arrayMap(x -> {return x}, [1]) AS m FROM events",  # lambda blocks: left to PostHog
        "SELECT 'it''s {x}' AS s, 'a\\'{y}' AS t FROM events",
        "SELECT event FROM events WHERE {unbalanced",
    ],
)
def test_queries_posthog_takes_or_only_its_parser_can_judge_are_not_refused(query: str) -> None:
    assert hogql_query_problem(query) is None


@pytest.mark.parametrize(
    ("query", "placeholder"),
    [
        ("SELECT event FROM events WHERE {filters}", "{filters}"),
        ("SELECT event FROM events WHERE timestamp > {now() - 1}", "{now() - 1}"),
        ("SELECT event FROM events WHERE x = {unknown} AND {filters}", "{filters}"),  # unsupported comes first
    ],
)
def test_filters_and_expression_placeholders_are_unsupported(query: str, placeholder: str) -> None:
    problem = hogql_query_problem(query)
    assert problem and problem.startswith(f"hogql_query uses the placeholder {placeholder}")
    assert "Unsupported placeholder. Only {data_interval_start} and {data_interval_end} are supported" in problem
    assert "WHERE timestamp >= {data_interval_start}" in problem


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("SELECT event FROM events WHERE timestamp > {start}", "start"),
        ("SELECT event FROM events WHERE x = {person.id}", "person.id"),
        ("SELECT event FROM events WHERE x = {DATA_INTERVAL_START}", "DATA_INTERVAL_START"),
        ("SELECT event FROM events WHERE x = {`odd name`}", "odd name"),
        ("SELECT {'a': {inside}} AS d FROM events", "inside"),
    ],
)
def test_other_names_are_unknown_placeholders(query: str, name: str) -> None:
    problem = hogql_query_problem(query)
    assert problem and f"Unknown placeholder '{{{name}}}'. Only {{data_interval_start}}" in problem


def test_a_long_placeholder_is_echoed_capped() -> None:
    problem = hogql_query_problem("SELECT event FROM events WHERE x = {" + "a" * 5000 + "}")
    assert problem and len(problem) < 600 and "characters)" in problem


# ---------------------------------------------------------------------------------------------- test steps


def test_a_test_step_type_change_says_posthogs_rule_where_posthog_has_it() -> None:
    newer = type_change("AwsS3", "Snowflake", by_posthog=True)
    assert newer.startswith("destination.type Snowflake is not the export's own (AwsS3)")
    assert "Cannot change destination type from 'AwsS3' to 'Snowflake'. Delete this batch export" in newer
    assert "send destination.type AwsS3" in newer and "batch-export-test-step-new" in newer
    older = type_change("AwsS3", "Snowflake", by_posthog=False)
    assert "Cannot change" not in older and "send destination.type AwsS3" in older
