"""The pure parts of the catalog: the request a declaration builds, page following, the secrets walker."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from tools import secrets
from tools.catalog import BY_NAME
from tools.paging import next_query, pages
from tools.request import build_request
from tools.upstream import HttpMethod, Request

E = "0190f4b2-6c1e-7c3a-9a51-2b1f0e7a1d11"
R = "11111111-2222-4333-8444-555555555555"


def params(tool: str, **arguments: Any) -> Any:
    return BY_NAME[tool].params.model_validate({"project_id": 1, **arguments})


def test_a_get_sends_its_declared_query_and_nothing_else() -> None:
    spec = BY_NAME["batch-export-runs-list"]
    built = build_request(spec, params("batch-export-runs-list", batch_export_id=E, status=["Failed"], limit=5))
    assert built == Request("GET", f"batch_exports/{E}/runs/", {"status": ["Failed"]}, None)  # limit is cut locally


def test_fixed_query_is_added_and_path_segments_are_escaped() -> None:
    built = build_request(
        BY_NAME["batch-export-run-retry"], params("batch-export-run-retry", batch_export_id=E, run_id=R)
    )
    assert built == Request("POST", f"batch_exports/{E}/runs/{R}/retry/", {"after": "2000-01-01T00:00:00Z"}, {})
    cursor = build_request(
        BY_NAME["batch-export-backfills-list"], params("batch-export-backfills-list", batch_export_id=E, cursor="a/b?c")
    )
    assert cursor.query == {"cursor": "a/b?c"} and "?" not in cursor.path


def test_writes_send_the_rest_as_body_and_delete_sends_none() -> None:
    update = build_request(BY_NAME["batch-export-update"], params("batch-export-update", batch_export_id=E, name="n"))
    assert (update.method, update.path, update.query, update.body) == (
        "PATCH",
        f"batch_exports/{E}/",
        {},
        {"name": "n"},
    )
    delete = build_request(BY_NAME["batch-export-delete"], params("batch-export-delete", batch_export_id=E))
    assert (delete.method, delete.body) == ("DELETE", None)


def test_the_same_declaration_and_parameters_build_the_same_request() -> None:
    spec = BY_NAME["batch-export-logs"]
    arguments = {"batch_export_id": E, "level": ["ERROR"], "search": "x", "run_id": R}
    one, two = build_request(spec, params(spec.name, **arguments)), build_request(spec, params(spec.name, **arguments))
    assert one == two and "run_id" not in one.query  # run_id is for the handler, never sent as is


class FakeUpstream:
    """Answers pages of three from a list of ten, following `?offset=`."""

    def __init__(self) -> None:
        self.sent: list[Request] = []

    async def send(self, request: Request) -> Any:
        self.sent.append(request)
        offset = int(request.query.get("offset", 0))
        more = offset + 3 < 10
        return {
            "results": list(range(offset, min(offset + 3, 10))),
            "next": f"https://posthog.test/api/x/?limit=3&offset={offset + 3}" if more else None,
        }

    async def request(
        self, method: HttpMethod, path: str, *, query: Mapping[str, Any] | None = None, json: Any = None
    ) -> Any:
        return await self.send(Request(method, path, dict(query or {}), json))


async def test_pages_follow_next_and_stop_at_the_last_or_the_cap() -> None:
    upstream = FakeUpstream()
    start = Request("GET", "batch_exports/", {"limit": 3})
    seen = [item async for page in pages(upstream, start, max_pages=10) for item in page["results"]]
    assert seen == list(range(10)) and len(upstream.sent) == 4
    assert upstream.sent[-1].query == {"limit": "3", "offset": "9"}
    capped = [page async for page in pages(FakeUpstream(), start, max_pages=2)]
    assert len(capped) == 2
    assert next_query({"next": None}) is None
    assert dataclasses.replace(start) == start


CONFIG = {
    "database": "d",
    "password": "pw-secret",
    "copy_inputs": {"authorization": {"aws_secret_access_key": "nested-secret"}, "region": "r"},
}


def test_the_secrets_walker_strips_collects_and_masks_at_any_depth() -> None:
    export = {"name": "n", "password": "not-a-config-key", "destination": {"type": "Redshift", "config": CONFIG}}
    stripped = secrets.strip(export)
    assert stripped["password"] == "not-a-config-key"  # only keys under a config are secret
    assert stripped["destination"]["config"] == {"database": "d", "copy_inputs": {"authorization": {}, "region": "r"}}
    assert secrets.collect({"destination": {"config": CONFIG}}) == {"pw-secret", "nested-secret"}
    masked = secrets.mask(CONFIG, "(secret)")
    assert (
        masked["password"] == "(secret)"
        and masked["copy_inputs"]["authorization"]["aws_secret_access_key"] == "(secret)"
    )
    assert CONFIG["password"] == "pw-secret"  # the input is not changed
    assert secrets.redact({"m": ["say pw-secret twice: pw-secret"]}, {"pw-secret", "ab"}) == {
        "m": ["say [redacted] twice: [redacted]"]
    }
