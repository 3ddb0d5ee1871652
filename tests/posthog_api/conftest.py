"""PostHog's own batch-exports API tests, replayed against the sandbox over loopback HTTP.

One sandbox per generation and seed serves the whole session (a start costs a second or more); every case
starts from the reset, seeded state with the clock frozen at NOW, so cases never see each other's exports.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from posthog_sandbox import DEFAULT_API_KEY, RunningSandbox, SandboxConfig, SandboxKey, start_sandbox
from posthog_sandbox.control import SandboxControl

# After every date PostHog's tests backfill (the weekly ones end on 2026-01-14), a Monday.
NOW = datetime(2026, 3, 16, 12, 0, 0, tzinfo=UTC)
KEYS = [
    SandboxKey(DEFAULT_API_KEY, ["batch_export:read", "batch_export:write"]),
    SandboxKey("phx_read", ["batch_export:read"]),
    SandboxKey("phx_flags", ["feature_flag:read"]),
]


class PostHog:
    """The API of one sandbox as PostHog's tests call it: `/api/projects/{project}/batch_exports/{path}`."""

    def __init__(self, sandbox: RunningSandbox) -> None:
        self.sandbox = sandbox
        self.http = httpx.Client(base_url=sandbox.base_url, timeout=10.0)
        self.control = SandboxControl(sandbox.base_url)

    def close(self) -> None:
        self.http.close()
        self.control.close()

    def request(
        self, method: str, path: str = "", project: int | str = 1, key: str = DEFAULT_API_KEY, **kwargs: Any
    ) -> httpx.Response:
        url = f"/api/projects/{project}/batch_exports/{path}"
        return self.http.request(method, url, headers={"Authorization": f"Bearer {key}"}, **kwargs)

    def get(self, path: str = "", **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str = "", json: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, json=json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, json=json, **kwargs)

    def put(self, path: str, json: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def create(self, body: dict[str, Any], project: int = 1) -> dict[str, Any]:
        """`create_batch_export_ok`: a 201 and its export."""
        response = self.post("", json=body, project=project)
        assert response.status_code == 201, response.text
        result: dict[str, Any] = response.json()
        return result

    def export(self, export_id: str, project: int = 1) -> dict[str, Any]:
        """`get_batch_export_ok`."""
        response = self.get(f"{export_id}/", project=project)
        assert response.status_code == 200, response.text
        result: dict[str, Any] = response.json()
        return result

    def advance(self, seconds: float) -> None:
        self.control.advance(seconds)


@pytest.fixture(scope="session")
def clients() -> Iterator[dict[tuple[int, bool], PostHog]]:
    """One sandbox and one client per generation and seed for the whole session (an httpx client costs
    about 70 ms to make, a sandbox a second or more)."""
    started: dict[tuple[int, bool], PostHog] = {}
    yield started
    for client in started.values():
        client.close()
        client.sandbox.close()


@pytest.fixture
def posthog(request: pytest.FixtureRequest, clients: dict[tuple[int, bool], PostHog]) -> PostHog:
    """A reset sandbox of the module's `GENERATION` (3 by default), seeded only if the module sets
    `SEED = True` (PostHog's tests start from an empty project)."""
    key = (getattr(request.module, "GENERATION", 3), getattr(request.module, "SEED", False))
    if key not in clients:
        clients[key] = PostHog(start_sandbox(SandboxConfig(generation=key[0], seed=key[1], now=NOW, keys=KEYS)))
    client = clients[key]
    client.control.reset()
    return client
