"""The activity log of batch exports (docs/posthog-api.md, "Activity log") over real loopback HTTP: the seeded
history, what each change writes (and what it does not), the scope check, filters and both page styles."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from posthog_sandbox import DEFAULT_API_KEY, SandboxKey

from .conftest import KEYS, Api, assert_error, s3_body

LOG = "/api/projects/1/activity_log/"
ACTIVITY_KEYS = [
    *KEYS,
    SandboxKey("phx_activity", ["activity_log:read"]),
    SandboxKey("phx_activity_write", ["activity_log:write"]),
    SandboxKey("phx_activity_team2", ["activity_log:read"], [2]),
]
ENTRY_FIELDS = {
    "id",
    "user",
    "unread",
    "organization_id",
    "was_impersonated",
    "is_system",
    "activity",
    "item_id",
    "scope",
    "detail",
    "created_at",
}


@pytest.fixture(params=[3, 1], ids=["gen3", "gen1"])
def sandbox(request: pytest.FixtureRequest, start: Callable[..., Api]) -> Api:
    return start(request.param, key="phx_activity", keys=ACTIVITY_KEYS)


def entries(api: Api, query: str = "") -> list[dict[str, Any]]:
    """Every entry the filter matches, following `next` to the end."""
    out: list[dict[str, Any]] = []
    url: str | None = f"{LOG}?{query}"
    while url:
        response = api.get(url)
        assert response.status_code == 200, response.text
        page = response.json()
        out += page["results"]
        url = page["next"] and page["next"].removeprefix(api.base_url)
    return out


def of(api: Api, export_id: str) -> list[dict[str, Any]]:
    return entries(api, f"scope=BatchExport&item_id={export_id}")


def test_seeded_history_answers_who_changed_what(sandbox: Api) -> None:
    postgres = sandbox.export_named("Paused events to Postgres")
    log = of(sandbox, postgres["id"])
    assert [e["activity"] for e in log] == ["updated", "created"]  # newest first
    paused, created = log
    assert set(paused) == ENTRY_FIELDS
    assert paused["detail"]["changes"] == [
        {"type": "BatchExport", "action": "changed", "field": "enabled", "before": False, "after": True}
    ]
    assert paused["created_at"] == postgres["last_paused_at"] == "2025-06-13T12:00:00Z"
    assert paused["user"]["email"].endswith("@acme.example") and paused["is_system"] is False
    assert created["detail"]["changes"] == [] and created["created_at"] == postgres["created_at"]
    assert created["detail"]["name"] == "'Paused events to Postgres' (Postgres)"
    assert created["detail"]["context"]["destination_type"] == "Postgres"

    snowflake = sandbox.export_named("Daily events to Snowflake")
    renamed, made = of(sandbox, snowflake["id"])
    assert made["detail"]["context"]["name"] == "Snowflake events"
    assert renamed["detail"]["changes"] == [
        {
            "type": "BatchExport",
            "action": "changed",
            "field": "name",
            "before": "Snowflake events",
            "after": "Daily events to Snowflake",
        }
    ]
    everyone = entries(sandbox)
    assert len({e["user"]["id"] for e in everyone}) >= 3  # more than one person made these
    assert {e["item_id"] for e in everyone} == {e["id"] for e in sandbox.state()["exports"] if e["team_id"] == 1}


def test_scope_and_projects(start: Callable[..., Api]) -> None:
    api = start(3, key="phx_activity", keys=ACTIVITY_KEYS)
    for key in ("phx_activity", "phx_activity_write", "phx_star"):
        assert api.get(LOG, key=key).status_code == 200, key
    for key in (DEFAULT_API_KEY, "phx_read", "phx_legacy"):
        assert_error(
            api.get(LOG, key=key),
            403,
            "authentication_error",
            "permission_denied",
            "API key missing required scope 'activity_log:read'",
        )
    assert_error(
        api.get(LOG, key="phx_activity_team2"),
        403,
        "authentication_error",
        "permission_denied",
        "API key does not have access to the requested project: ID 1.",
    )
    two = api.get("/api/projects/2/activity_log/", key="phx_activity_team2").json()["results"]
    assert [e["detail"]["context"]["name"] for e in two] == ["Project 2 events to HTTP"]
    assert api.get("/api/environments/@current/activity_log/").status_code == 200
    assert api.get("/api/projects/3/activity_log/").status_code == 403
    assert api.post(LOG, json={}).status_code == 405


def test_each_change_writes_what_posthog_writes(sandbox: Api) -> None:
    gen = sandbox.sandbox.config.generation
    created = sandbox.post("", json=s3_body(gen, name="Audit me"), key=DEFAULT_API_KEY)
    assert created.status_code == 201, created.text
    export = created.json()["id"]
    (made,) = of(sandbox, export)
    assert made["activity"] == "created" and made["detail"]["changes"] == []
    assert made["user"]["id"] == 1 and made["user"]["first_name"] == "Alex"  # every key acts as user 1
    assert made["detail"]["context"] == {
        "name": "Audit me",
        "destination_type": "AwsS3" if gen >= 3 else "S3",
        "interval": "hour",
        "created_by_user_id": None,
        "created_by_user_email": None,
        "created_by_user_name": None,
    }

    patch = {"name": "Audited", "interval": "day"}
    assert sandbox.patch(f"{export}/", json=patch, key=DEFAULT_API_KEY).status_code == 200
    assert [(c["field"], c["before"], c["after"]) for c in of(sandbox, export)[0]["detail"]["changes"]] == [
        ("name", "Audit me", "Audited"),
        ("interval", "hour", "day"),
    ]
    # The destination is its own model: changing only its config writes nothing.
    config = {"prefix": "elsewhere/"}
    destination = {"type": "AwsS3" if gen >= 3 else "S3", "config": config}
    assert sandbox.patch(f"{export}/", json={"destination": destination}, key=DEFAULT_API_KEY).status_code == 200
    assert len(of(sandbox, export)) == 2

    sandbox.post(f"{export}/pause/", key=DEFAULT_API_KEY)
    sandbox.post(f"{export}/pause/", key=DEFAULT_API_KEY)  # already paused: no save, no entry
    sandbox.post(f"{export}/unpause/", key=DEFAULT_API_KEY)
    enabled = [c for e in of(sandbox, export)[:2] for c in e["detail"]["changes"]]
    assert [(c["field"], c["before"], c["after"]) for c in enabled] == [
        ("enabled", True, False),
        ("enabled", False, True),
    ]
    assert len(of(sandbox, export)) == 4

    assert sandbox.delete(f"{export}/", key=DEFAULT_API_KEY).status_code == 204
    log = of(sandbox, export)
    assert len(log) == 6  # the delete pauses first, then saves the row it read before that pause
    assert [(c["field"], c["before"], c["after"]) for c in log[0]["detail"]["changes"]] == [
        ("enabled", True, False),
        ("deleted", False, True),
    ]
    assert [(c["field"], c["after"]) for c in log[1]["detail"]["changes"]] == [("enabled", True)]


def test_deleting_a_paused_export_writes_one_entry(start: Callable[..., Api]) -> None:
    api = start(3, key="phx_activity", keys=ACTIVITY_KEYS)
    export = api.export_named("Paused events to Postgres")["id"]
    before = len(of(api, export))
    assert api.delete(f"{export}/", key=DEFAULT_API_KEY).status_code == 204
    log = of(api, export)
    assert len(log) == before + 1
    assert log[0]["detail"]["changes"] == [
        {"type": "BatchExport", "action": "changed", "field": "deleted", "before": False, "after": True}
    ]


def test_changes_carry_no_secret(sandbox: Api) -> None:
    gen = sandbox.sandbox.config.generation
    export = sandbox.export_named("Hourly events to S3")["id"]
    destination: dict[str, Any] = {"type": "AwsS3" if gen >= 3 else "S3", "config": {"prefix": "x/"}}
    if gen < 3:
        destination["config"]["aws_secret_access_key"] = "sandbox-canary-rotated-secret"
    body = {"name": "Renamed with a secret", "destination": destination}
    assert sandbox.patch(f"{export}/", json=body, key=DEFAULT_API_KEY).status_code == 200
    text = json.dumps(entries(sandbox))
    assert "Renamed with a secret" in text and "sandbox-canary" not in text


def test_filters(start: Callable[..., Api]) -> None:
    api = start(3, key="phx_activity", keys=ACTIVITY_KEYS)
    everything = entries(api)
    by_user = entries(api, "user=1")
    assert by_user and {e["user"]["id"] for e in by_user} == {1}
    assert (
        len(entries(api, "scopes=BatchExport,Integration")) == len(everything) == len(entries(api, "scope=BatchExport"))
    )
    assert entries(api, "scope=FeatureFlag") == [] and entries(api, "item_id=nope") == []
    assert api.get(f"{LOG}?user=alex").status_code == 500  # Django refuses a non-numeric pk
    created = [e["created_at"] for e in everything]
    assert created == sorted(created, reverse=True)


def test_both_page_styles_lose_nothing(start: Callable[..., Api]) -> None:
    api = start(3, key="phx_activity", keys=ACTIVITY_KEYS, exports=150, throttle=False)
    first = api.get(LOG).json()
    assert set(first) == {"next", "previous", "results"} and len(first["results"]) == 100
    cursor = entries(api)
    assert len(cursor) == len({e["id"] for e in cursor}) > 150
    numbered = api.get(f"{LOG}?page=2&page_size=50").json()
    assert numbered["count"] == len(cursor)
    assert [e["id"] for e in numbered["results"]] == [e["id"] for e in cursor[50:100]]
    assert "page=3" in numbered["next"] and "page=" not in numbered["previous"]
    last = api.get(f"{LOG}?page=last&page_size=1000").json()
    assert last["next"] is None and len(last["results"]) == len(cursor)
    assert_error(api.get(f"{LOG}?page=99"), 404, "invalid_request", "not_found", "Invalid page.")


def test_large_seed_history(start: Callable[..., Api]) -> None:
    api = start(3, key="phx_activity", keys=ACTIVITY_KEYS, exports=120, throttle=False)
    state = {e["id"]: e for e in api.state()["exports"] if e["team_id"] == 1}
    log = entries(api)
    made = {e["item_id"] for e in log if e["activity"] == "created"}
    assert made == set(state)
    pauses = [e for e in log if e["activity"] == "updated"]
    assert {e["item_id"] for e in pauses} == {i for i, e in state.items() if e["paused"]}
    by_workers = [e for e in pauses if e["user"] is None]
    assert by_workers and all(e["is_system"] for e in by_workers)  # failing, then paused by the workers
    assert any(e["user"] is not None for e in pauses)
    # The log agrees with the scenes' oracle on who paused each export: PostHog (no user) or a person.
    paused_by = {p["id"]: p["by"] for p in api.controls.scenes()["paused"] if p["id"] in state}
    assert paused_by and set(paused_by.values()) == {"posthog", "person"}
    assert {e["item_id"]: ("posthog" if e["user"] is None else "person") for e in pauses} == paused_by
