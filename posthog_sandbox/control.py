"""The one client for a running sandbox's `/_sandbox/` controls, plus a plain view of its API.

Tests, the demo and the benchmarks drive the sandbox through this class only, over real HTTP, so a change to
a control route is made here once. Synchronous on purpose: async callers run it in a worker thread
(`anyio.to_thread.run_sync`), which keeps one implementation.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from .config import DEFAULT_API_KEY


class ControlError(RuntimeError):
    """A control request was refused; the message carries the sandbox's answer."""


class SandboxControl:
    """Controls of the sandbox at `base_url` (no trailing slash); `api_key` authenticates `api()` calls."""

    def __init__(self, base_url: str, api_key: str = DEFAULT_API_KEY, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.http = httpx.Client(
            base_url=self.base_url, timeout=timeout, headers={"Authorization": f"Bearer {api_key}"}
        )

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> SandboxControl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -------------------------------------------------------------------------------------- raw access

    def control(self, method: str, path: str, json: Any = None) -> Any:
        """Any control route (`path` relative to `/_sandbox/`); its JSON answer, or ControlError."""
        response = self.http.request(method, f"/_sandbox/{path.lstrip('/')}", json=json)
        if response.status_code not in (200, 201):
            raise ControlError(f"{method} /_sandbox/{path} answered {response.status_code}: {response.text}")
        return response.json()

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """A request to `/api/projects/{path}` with the key (the answer is returned whatever its status)."""
        return self.http.request(method, f"/api/projects/{path.lstrip('/')}", **kwargs)

    # -------------------------------------------------------------------------------------- clock

    def now(self) -> datetime:
        return datetime.fromisoformat(self.clock().replace("Z", "+00:00"))

    def clock(self) -> str:
        """The sandbox's now, as the API writes datetimes."""
        return str(self.control("GET", "clock")["now"])

    def advance(self, seconds: float) -> str:
        """Move the clock forward and run the simulation; the new now."""
        return str(self.control("POST", "clock/advance", {"seconds": seconds})["now"])

    def set_clock(self, now: str) -> str:
        return str(self.control("POST", "clock/set", {"now": now})["now"])

    # -------------------------------------------------------------------------------------- state

    def state(self) -> dict[str, Any]:
        result: dict[str, Any] = self.control("GET", "state")
        return result

    def reset(self) -> str:
        return str(self.control("POST", "reset")["now"])

    def export_id(self, name: str, project: int = 1) -> str:
        """The id of the export called `name` in `project`, read through the API list (every page)."""
        url: str | None = f"/api/projects/{project}/batch_exports/?limit=100"
        while url:
            page = self.http.get(url).raise_for_status().json()
            for export in page["results"]:
                if export["name"] == name:
                    return str(export["id"])
            url = page.get("next")
        raise AssertionError(f"no export named {name!r} in project {project}")

    def set_outcome(self, export_id: str, outcome: str, **extra: Any) -> dict[str, Any]:
        """How this export's runs finish from now on: `succeed`, `fail` or `fail_retryable`."""
        result: dict[str, Any] = self.control("POST", f"exports/{export_id}/outcome", {"outcome": outcome, **extra})
        return result

    def add_integration(
        self,
        kind: str,
        integration_id: str,
        config: dict[str, Any] | None = None,
        sensitive_config: dict[str, Any] | None = None,
        team_id: int = 1,
    ) -> dict[str, Any]:
        """A new integration of any kind (even one PostHog's API cannot create); as the API shows it."""
        body = {
            "kind": kind,
            "integration_id": integration_id,
            "config": config or {},
            "sensitive_config": sensitive_config or {},
            "team_id": team_id,
        }
        result: dict[str, Any] = self.control("POST", "integrations", body)
        return result

    # -------------------------------------------------------------------------------------- faults, log

    def fault(self, **rule: Any) -> None:
        self.control("POST", "faults", rule)

    def clear_faults(self) -> None:
        self.control("DELETE", "faults")

    def requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.control("GET", "requests")["requests"]
        return result

    def clear_requests(self) -> None:
        self.control("DELETE", "requests")

    def writes(self) -> list[dict[str, Any]]:
        return [r for r in self.requests() if r["method"] not in ("GET", "HEAD", "OPTIONS")]

    def throttle(self, enabled: bool) -> None:
        self.control("POST", "throttle", {"enabled": enabled})

    # -------------------------------------------------------------------------------------- scenes

    def scenes(self) -> dict[str, Any]:
        """Which exports play which scene of the large seed (silent, never exported, failing since when,
        long failures, FailedBilling window, paused by PostHog or a person, outages, running backfills)."""
        result: dict[str, Any] = self.control("GET", "scenes")
        return result

    def outage(
        self,
        destination: str,
        start: str,
        end: str,
        match: dict[str, Any] | None = None,
        error: str | None = None,
        project: int | None = None,
    ) -> dict[str, Any]:
        """Make `destination` (narrowed by config values in `match`) fail every run that starts in [start, end)."""
        body = {"destination": destination, "start": start, "end": end, "match": match, "error": error}
        result: dict[str, Any] = self.control("POST", "outages", {**body, "project": project})["outage"]
        return result

    def outages(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.control("GET", "outages")["outages"]
        return result

    def clear_outages(self) -> None:
        self.control("DELETE", "outages")

    def hostile(self) -> dict[str, Any]:
        """The hostile strings the seed wrote (and the ordinary non-Latin ones), with their kinds."""
        result: dict[str, Any] = self.control("GET", "hostile")
        return result

    def run_backfills(self, count: int, project: int = 1) -> dict[str, Any]:
        """Start backfills until `count` are active in `project` (PostHog's cap counts them at once)."""
        result: dict[str, Any] = self.control("POST", "backfills/running", {"count": count, "project": project})
        return result
