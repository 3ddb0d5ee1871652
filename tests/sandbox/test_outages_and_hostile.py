"""Destination outages and hostile text over real HTTP (docs/sandbox.md, "Outages", "Hostile text"): an outage
fails every run that starts in its window across the exports of one destination, in the computed past and in
the runs the simulation makes; the hostile seed writes invisible and control characters, escape sequences and
injected instructions where PostHog keeps free text, and its oracle tells them from ordinary non-Latin names."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from posthog_sandbox import SandboxConfig
from posthog_sandbox.cli import main as sandbox_main
from posthog_sandbox.control import ControlError
from posthog_sandbox.hostile import kinds

from .conftest import Api

YESTERDAY_10 = "2025-06-14T10:00:00Z"
YESTERDAY_16 = "2025-06-14T16:00:00Z"


def _when(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _runs(api: Api, export_id: str, **params: str) -> list[dict[str, Any]]:
    page = api.get(f"{export_id}/runs/", params=params).json()
    runs: list[dict[str, Any]] = page["results"]
    while page["next"]:
        page = api.get(page["next"].removeprefix(api.base_url)).json()
        runs += page["results"]
    return runs


def test_a_snowflake_outage_fails_every_snowflake_export_in_its_window(start: Callable[..., Api]) -> None:
    api = start(3, exports=500, throttle=False)
    outage = api.controls.outage("Snowflake", YESTERDAY_10, YESTERDAY_16)
    exports = {e["id"]: e for e in api.state()["exports"]}
    snowflake = {i for i, e in exports.items() if e["destination"]["type"] == "Snowflake"}
    assert set(outage["exports"]) == snowflake and len(snowflake) >= 40
    assert outage["start"] == YESTERDAY_10 and outage["end"] == YESTERDAY_16
    start, end = _when(YESTERDAY_10), _when(YESTERDAY_16)
    hit = 0
    for export_id in sorted(snowflake):
        if exports[export_id]["paused"] or exports[export_id]["interval"] not in ("hour", "every 15 minutes"):
            continue
        runs = _runs(api, export_id, after="2025-06-14T08:00:00Z", before="2025-06-14T18:00:00Z")
        inside = [r for r in runs if start <= _when(r["created_at"]) < end]
        outside = [r for r in runs if not start <= _when(r["created_at"]) < end]
        assert inside and all(r["status"] == "Failed" for r in inside)
        assert {r["latest_error"] for r in inside} == {
            "SnowflakeConnectionError: Could not connect to Snowflake - 250001: Could not connect to Snowflake "
            "backend after 2 attempt(s).Aborting"
        }
        assert any(r["status"] == "Completed" for r in outside) or exports[export_id]["outcome"]["outcome"] == "fail"
        errors = api.get(
            f"{export_id}/logs/",
            params={"level": "ERROR", "after": YESTERDAY_10, "before": YESTERDAY_16, "limit": 500},
            key="phx_read",
        ).json()["results"]
        assert len([e for e in errors if "Could not connect to Snowflake" in e["message"]]) == len(inside)
        hit += 1
        if hit == 5:
            break
    assert hit == 5
    failed_exports = [
        i
        for i in snowflake
        if any(
            (r["latest_error"] or "").startswith("SnowflakeConnectionError: Could not connect")
            for r in _runs(api, i, after=YESTERDAY_10, before="2025-06-14T15:59:59Z")
        )
    ]
    assert len(failed_exports) >= 40  # every Snowflake export that ran between 10:00 and 16:00, daily ones too
    # another destination is untouched
    s3 = next(
        i for i, e in exports.items() if e["destination"]["type"] == "AwsS3" and e["outcome"]["outcome"] == "succeed"
    )
    assert all(
        not (r["latest_error"] or "").startswith("SnowflakeConnectionError")
        for r in _runs(api, s3, after=YESTERDAY_10, before=YESTERDAY_16)
    )
    assert [o["id"] for o in api.controls.outages()] == [outage["id"]]
    assert {o["id"] for o in api.controls.scenes()["outages"]} == snowflake
    api.controls.clear_outages()
    one = sorted(snowflake)[0]
    assert not any(
        (r["latest_error"] or "").startswith("SnowflakeConnectionError: Could not connect")
        for r in _runs(api, one, after=YESTERDAY_10, before=YESTERDAY_16)
    )


def test_an_outage_narrowed_by_config_and_one_the_simulation_meets(start: Callable[..., Api]) -> None:
    api = start(3, exports=60, throttle=False)
    exports = api.state()["exports"]
    target = next(
        e for e in exports if e["destination"]["type"] == "AwsS3" and e["interval"] == "hour" and not e["paused"]
    )
    table = {"prefix": target["destination"]["config"]["prefix"]}
    now = api.controls.now()
    outage = api.controls.outage(
        "AwsS3", now.isoformat(), "2025-06-15T14:00:00+00:00", match=table, error="ClientError: custom outage"
    )
    assert outage["exports"] == [target["id"]] and outage["match"] == table
    api.advance(3600 + 150)  # the 13:00 run starts inside the window and finishes
    runs = api.get(f"{target['id']}/runs/").json()["results"]
    new = [r for r in runs if _when(r["created_at"]) > now]
    assert len(new) == 1 and new[0]["status"] == "Failed" and new[0]["latest_error"] == "ClientError: custom outage"
    api.advance(3600)  # the 14:00 run starts as the window ends
    newest = api.get(f"{target['id']}/runs/").json()["results"][0]
    assert newest["created_at"] == "2025-06-15T14:00:00Z"
    assert newest["status"] == "Completed" or target["outcome"]["outcome"] != "succeed"


@pytest.mark.parametrize(
    ("body", "attr"),
    [
        ({"destination": "Oracle", "start": YESTERDAY_10, "end": YESTERDAY_16}, "destination"),
        ({"destination": "Snowflake", "start": "yesterday", "end": YESTERDAY_16}, "start"),
        ({"destination": "Snowflake", "start": "2025-06-14T10:00:00", "end": YESTERDAY_16}, "start"),
        ({"destination": "Snowflake", "start": YESTERDAY_16, "end": YESTERDAY_10}, "start"),
        ({"destination": "Snowflake", "start": YESTERDAY_10, "end": YESTERDAY_16, "match": ["x"]}, "match"),
        ({"destination": "Snowflake", "start": YESTERDAY_10, "end": YESTERDAY_16, "error": ""}, "error"),
    ],
)
def test_a_bad_outage_is_refused_naming_the_field(start: Callable[..., Api], body: dict[str, Any], attr: str) -> None:
    api = start(3)
    with pytest.raises(ControlError) as refused:
        api.controls.control("POST", "outages", body)
    assert "400" in str(refused.value) and f'"attr":"{attr}"' in str(refused.value).replace(" ", "")
    assert api.controls.outages() == []


# ---------------------------------------------------------------------------------------------- hostile text


def test_the_hostile_seed_and_its_oracle(start: Callable[..., Api]) -> None:
    api = start(3, exports=120, hostile=True, throttle=False)
    oracle = api.controls.hostile()
    assert oracle["enabled"] is True
    hostile, benign = oracle["hostile"], oracle["benign"]
    assert {k for entry in hostile for k in entry["kinds"]} == {
        "zero_width",
        "bidi",
        "tag",
        "ansi",
        "control",
        "injection",
    }
    names = {e["id"]: e["name"] for e in api.get("?limit=100").json()["results"]}
    names |= {e["id"]: e["name"] for e in api.get("?limit=100&offset=100").json()["results"]}
    for entry in hostile:
        assert entry["kinds"] == kinds(entry["value"])
        if entry["field"] == "name":
            assert names[entry["export"]] == entry["value"]  # served byte for byte
    errors = [e for e in hostile if e["field"] == "latest_error"]
    assert errors
    for entry in errors[:3]:
        failed = [r for r in _runs(api, entry["export"], after="-30d") if r["status"] == "Failed"]
        assert failed and {r["latest_error"] for r in failed} == {entry["value"]}
        lines = api.get(f"{entry['export']}/logs/", params={"level": "ERROR", "limit": 5}, key="phx_read").json()
        assert all(line["message"].endswith(entry["value"]) for line in lines["results"])
    assert benign and all(kinds(e["value"]) == [] and names[e["export"]] == e["value"] for e in benign)
    scripts = "".join(e["value"] for e in benign)
    assert "マーケティング" in scripts and "التسويق" in scripts
    assert "\x00" not in "".join(e["value"] for e in hostile)  # PostHog stores no NUL


def test_no_hostile_text_unless_asked(start: Callable[..., Api]) -> None:
    api = start(3, exports=120)
    oracle = api.controls.hostile()
    assert oracle == {"enabled": False, "hostile": [], "benign": []}


def test_hostile_needs_the_large_seed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match="exports"):
        SandboxConfig(hostile=True)
    assert sandbox_main(["--hostile", "--port", "0"]) == 2
    assert "--exports" in capsys.readouterr().err
