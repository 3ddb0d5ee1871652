"""The README's "Several replicas" recipe, followed as written: its commands, with loopback ports
of our choosing, against the sandbox instead of PostHog; then one write through the proxy."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from posthog_sandbox import DEFAULT_API_KEY
from tests.edge_support import LIST_TOOLS, MCP_HEADERS, mcp_client
from tests.redis_server import free_port
from tests.replica_cluster import sandbox_process
from tests.support import SandboxControl, text

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
CONFIG = "docs/replicas/nginx.conf"
PORTS = ("6379", "8000", "8001", "8002", "8003")
READY_SECONDS = 150.0
CLIENT_TOKEN = "recipe-client-token-" + "r" * 44


def recipe() -> str:
    section = README.split("## Several replicas", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```sh\n(.*?)```", section, re.S)
    assert found, "README's 'Several replicas' section has no sh block"
    return found.group(1)


def test_the_recipe_names_the_proxy_config_the_repository_ships() -> None:
    assert CONFIG in recipe()
    config = (ROOT / CONFIG).read_text()
    for port in PORTS[1:]:
        assert f"127.0.0.1:{port}" in config


def _on_ports(text: str, ports: dict[str, int]) -> str:
    return re.sub(r"\b(" + "|".join(PORTS) + r")\b", lambda m: str(ports[m.group(1)]), text)


def _stop_group(process: subprocess.Popen[Any]) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(5)


def _wait_up(url: str, process: subprocess.Popen[Any], log: Path) -> None:
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the recipe stopped: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url} did not answer within {READY_SECONDS} s: {log.read_text()[-2000:]}")


@dataclass
class Recipe:
    proxy: str
    """http://127.0.0.1:<port>, nginx in front of the three replicas."""
    control: SandboxControl


@pytest.fixture(scope="module")
def following_the_recipe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Recipe]:
    tmp_path = tmp_path_factory.mktemp("recipe")
    ports = {port: free_port() for port in PORTS}
    config = tmp_path / "nginx.conf"
    config.write_text(_on_ports((ROOT / CONFIG).read_text(), ports))
    lines = []
    for line in recipe().splitlines():
        if line.startswith("uv sync"):
            continue  # the test environment is already synced (CI: uv sync --locked), with the redis extra's package
        if line.startswith("export POSTHOG_PERSONAL_API_KEY="):
            line = f"export POSTHOG_PERSONAL_API_KEY={DEFAULT_API_KEY}"
        if line.startswith("export POSTHOG_MCP_AUTH_TOKEN="):
            line = f"export POSTHOG_MCP_AUTH_TOKEN={CLIENT_TOKEN}"
        lines.append(line.replace(f"$PWD/{CONFIG}", str(config)))
    log = tmp_path / "recipe.log"
    with sandbox_process() as sandbox_url:
        script = "\n".join(
            [
                f"export POSTHOG_HOST={sandbox_url}",
                f"export POSTHOG_MCP_AUDIT_LOG={tmp_path / 'audit.jsonl'}",
                _on_ports("\n".join(lines), ports),
                "wait",
            ]
        )
        with log.open("wb") as out:
            process = subprocess.Popen(["bash", "-c", script], cwd=ROOT, stdout=out, stderr=out, start_new_session=True)
        control = SandboxControl(sandbox_url, DEFAULT_API_KEY)
        try:
            for port in PORTS[2:]:
                _wait_up(f"http://127.0.0.1:{ports[port]}/healthz", process, log)
            proxy = f"http://127.0.0.1:{ports['8000']}"
            _wait_up(f"{proxy}/healthz", process, log)
            yield Recipe(proxy, control)
        finally:
            control.close()
            _stop_group(process)


def test_the_recipe_sets_a_client_token() -> None:
    assert any(line.startswith("export POSTHOG_MCP_AUTH_TOKEN=") for line in recipe().splitlines())


async def test_the_several_replicas_recipe_works_as_written(following_the_recipe: Recipe) -> None:
    url, control = f"{following_the_recipe.proxy}/mcp", following_the_recipe.control
    hourly = control.export_id("Hourly events to S3")
    arguments = {
        "project_id": 1,
        "batch_export_id": hourly,
        "start_at": "2026-11-02T00:00:00+00:00",
        "end_at": "2026-11-02T02:00:00+00:00",
    }
    async with mcp_client(url, CLIENT_TOKEN) as one, mcp_client(url, CLIENT_TOKEN, mode="legacy") as two:
        listed = {tool.name for tool in (await one.list_tools()).tools}
        assert "batch-export-backfill-create" in listed
        first = await one.call_tool("batch-export-backfill-create", arguments)
        token = first.structured_content["confirmation_token"]
        control.clear_requests()
        confirmed = {**arguments, "confirmation_token": token}
        # The proxy spreads the two copies over the replicas; Redis lets only one of them write.
        both = await asyncio.gather(
            one.call_tool("batch-export-backfill-create", confirmed),
            two.call_tool("batch-export-backfill-create", confirmed),
        )
    executed = [r for r in both if not r.is_error and r.structured_content["status"] == "executed"]
    assert len(executed) == 1, [text(r) for r in both]
    assert len(control.writes()) == 1, control.writes()


async def test_n1_behind_the_recipes_proxy_a_spoofed_forwarded_for_does_not_dodge_the_lock_out(
    following_the_recipe: Recipe,
) -> None:
    """A client that makes up `X-Forwarded-For` for every guess would be a new address each time, and never
    locked out, if the proxy passed the header on: the recipe's proxy sets it from the real peer. And the
    guesser's lock-out keeps out guesses, not the clients behind the same address already in."""
    url = f"{following_the_recipe.proxy}/mcp"

    async def post(token: str, forwarded_for: str | None = None) -> httpx.Response:
        headers = {**MCP_HEADERS, "Authorization": f"Bearer {token}"}
        if forwarded_for:
            headers["X-Forwarded-For"] = forwarded_for
        async with httpx.AsyncClient(timeout=30.0) as http:
            return await http.post(url, json=LIST_TOOLS, headers=headers)

    assert (await post(CLIENT_TOKEN)).status_code == 200  # a colleague behind the same address, already in
    answers = [(await post(f"guess-{n}-" + "g" * 40, f"203.0.113.{n}")).status_code for n in range(12)]
    assert answers[:10] == [401] * 10, answers
    assert answers[10:] == [429, 429], answers
    locked = await post("guess-x-" + "g" * 40, "198.51.100.77, 203.0.113.99")
    assert locked.status_code == 429 and locked.json()["error"] == "locked_out"
    # The client already in is still served, whatever it claims to be forwarded for.
    assert (await post(CLIENT_TOKEN)).status_code == 200
    assert (await post(CLIENT_TOKEN, "203.0.113.200")).status_code == 200
