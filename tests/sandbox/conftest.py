"""Fixtures for the sandbox's own HTTP-level tests: real sandboxes on loopback, real httpx clients."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from posthog_sandbox import DEFAULT_API_KEY, SandboxConfig, SandboxKey, start_sandbox
from posthog_sandbox.control import SandboxControl

NOW = datetime(2025, 6, 15, 12, 0, 0, tzinfo=UTC)
KEYS = [
    SandboxKey(DEFAULT_API_KEY, ["batch_export:read", "batch_export:write"]),
    SandboxKey("phx_read", ["batch_export:read"]),
    SandboxKey("phx_write", ["batch_export:write"]),
    SandboxKey("phx_star", ["*"]),
    SandboxKey("phx_legacy", []),
    SandboxKey("phx_other", ["feature_flag:read"]),
    SandboxKey("phx_team2", ["batch_export:read", "batch_export:write"], [2]),
]


class Api:
    """A tiny client for one sandbox: `api.get("exports/")` → `/api/projects/1/batch_exports/`."""

    def __init__(
        self, sandbox: Any, key: str | None = DEFAULT_API_KEY, project: int | str = 1, family: str = "projects"
    ):
        self.sandbox = sandbox
        self.base_url = sandbox.base_url
        self.key = key
        self.project = project
        self.family = family
        self.http = httpx.Client(timeout=10.0)
        self.controls = SandboxControl(sandbox.base_url, DEFAULT_API_KEY)

    def url(self, path: str) -> str:
        if path.startswith("/"):
            return self.base_url + path
        return f"{self.base_url}/api/{self.family}/{self.project}/batch_exports/{path}"

    def request(self, method: str, path: str, key: str | None | bool = True, **kwargs: Any) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        key = self.key if key is True else key
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return self.http.request(method, self.url(path), headers=headers, **kwargs)

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.request("POST", path, json=json, **kw)

    def patch(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.request("PATCH", path, json=json, **kw)

    def put(self, path: str, json: Any = None, **kw: Any) -> httpx.Response:
        return self.request("PUT", path, json=json, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.request("DELETE", path, **kw)

    # controls, through the one control client
    def control(self, method: str, path: str, json: Any = None) -> Any:
        return self.controls.control(method, path, json)

    def advance(self, seconds: float) -> str:
        return self.controls.advance(seconds)

    def state(self) -> dict[str, Any]:
        return self.controls.state()

    def export_named(self, name: str) -> dict[str, Any]:
        for export in self.state()["exports"]:
            if export["name"] == name:
                return export
        raise AssertionError(f"no export named {name!r}")

    def close(self) -> None:
        self.controls.close()
        self.http.close()


def logs_key(api: Api) -> str:
    """A key the logs route serves: Gen-1 serves only legacy keys, Gen-3 a batch_export:read key (and no
    legacy key at all)."""
    return "phx_legacy" if api.sandbox.config.generation < 3 else "phx_read"


def assert_error(
    response: httpx.Response, status: int, type_: str, code: str, detail: str, attr: str | None = None
) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    if "error_event_id" in body:  # an unhandled error names the event PostHog reported it under
        assert status == 500 and re.fullmatch(r"[0-9a-f]{32}", body.pop("error_event_id")), body
    assert body == {"type": type_, "code": code, "detail": detail, "attr": attr}


def assert_validation(
    response: httpx.Response, detail: str, attr: str | None = None, code: str = "invalid_input"
) -> None:
    assert_error(response, 400, "validation_error", code, detail, attr)


@pytest.fixture
def start() -> Iterator[Callable[..., Api]]:
    """Start a sandbox (fresh state) and return an Api for it; everything is closed after the test."""
    opened: list[tuple[Any, Api]] = []

    def _start(generation: int = 3, key: str | None = DEFAULT_API_KEY, **config: Any) -> Api:
        config.setdefault("keys", KEYS)
        config.setdefault("now", NOW)
        sandbox = start_sandbox(SandboxConfig(generation=generation, **config))
        api = Api(sandbox, key)
        opened.append((sandbox, api))
        return api

    yield _start
    for sandbox, api in opened:
        api.close()
        sandbox.close()


@pytest.fixture(params=[3, 1], ids=["gen3", "gen1"])
def gen(request: pytest.FixtureRequest) -> int:
    return request.param


@pytest.fixture(scope="session")
def shared() -> Iterator[Callable[[int], Any]]:
    """One long-lived sandbox per generation, reset (wiped and reseeded) before each test that uses it."""
    sandboxes: dict[int, Any] = {}

    def get(generation: int) -> Any:
        if generation not in sandboxes:
            sandboxes[generation] = start_sandbox(SandboxConfig(generation=generation, keys=KEYS, now=NOW))
        return sandboxes[generation]

    yield get
    for sandbox in sandboxes.values():
        sandbox.close()


def _fresh(shared: Callable[[int], Any], generation: int) -> Iterator[Api]:
    sandbox = shared(generation)
    api = Api(sandbox)
    api.control("POST", "reset")
    yield api
    api.close()


@pytest.fixture
def api(shared: Callable[[int], Any], gen: int) -> Iterator[Api]:
    """A freshly reset, seeded sandbox of each generation (clock frozen at NOW)."""
    yield from _fresh(shared, gen)


@pytest.fixture
def api3(shared: Callable[[int], Any]) -> Iterator[Api]:
    yield from _fresh(shared, 3)


@pytest.fixture
def api1(shared: Callable[[int], Any]) -> Iterator[Api]:
    yield from _fresh(shared, 1)


def s3_body(generation: int, **overrides: Any) -> dict[str, Any]:
    """A valid create body for an S3 export in either generation."""
    if generation >= 3:
        destination = {
            "type": "AwsS3",
            "integration": 101,
            "config": {"bucket_name": "b", "region": "us-east-1", "prefix": "p/"},
        }
    else:
        destination = {
            "type": "S3",
            "config": {
                "bucket_name": "b",
                "region": "us-east-1",
                "prefix": "p/",
                "aws_access_key_id": "AKIA-sandbox-canary",
                "aws_secret_access_key": "sandbox-canary-secret",
            },
        }
    body = {"name": "New export", "interval": "hour", "destination": destination}
    body.update(overrides)
    return body
