"""The MCP Bundle: manifest in sync with the catalog, valid for the pinned mcpb, packed lean, and runnable."""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mcp import Client, StdioServerParameters

from posthog_sandbox import SandboxKey
from server.cli.bundle import MANIFEST_PATH, build_manifest, render
from tests.npm_tools import ROOT, require, run_npx
from tests.support import data
from tools.catalog import CATALOG, DEFAULT_TOOLSETS, TOOLSET_OF

MCPB = "@anthropic-ai/mcpb"
BUNDLE_KEY = "phx_bundle_canary_key_0123456789"


def test_manifest_json_is_generated_from_the_catalog() -> None:
    assert MANIFEST_PATH.read_text() == render(), (
        "manifest.json is stale: run 'uv run python -m server.cli.bundle --write'"
    )
    manifest = json.loads(MANIFEST_PATH.read_text())
    listed = [t["name"] for t in manifest["tools"]]
    assert listed == [s.name for s in CATALOG if not s.deprecated]
    assert "batch-export-backfill-legacy" not in listed  # deprecated tools are hidden by default


def test_user_config_covers_key_host_project_read_only_and_confirm() -> None:
    manifest = build_manifest()
    config = manifest["user_config"]
    assert config["api_key"]["sensitive"] is True and config["api_key"]["required"] is True
    assert {"host", "project_id", "read_only", "confirm", "api_route"} <= set(config)
    env = manifest["server"]["mcp_config"]["env"]
    used = set(re.findall(r"\$\{user_config\.(\w+)\}", json.dumps(env)))
    assert used == set(config), "every user_config option reaches the server, and nothing else is referenced"
    config_source = (ROOT / "server" / "config.py").read_text()
    for name in env:
        assert f'"{name}"' in config_source, f"{name} is not read by server/config.py"


def test_pinned_mcpb_validates_the_manifest() -> None:
    done = run_npx(MCPB, "validate", str(MANIFEST_PATH), timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "validation passes" in done.stdout


def test_validator_is_not_a_rubber_stamp(tmp_path: Path) -> None:
    broken = build_manifest()
    broken["user_config"]["api_key"]["secret"] = True  # not a field mcpb knows
    path = tmp_path / "manifest.json"
    path.write_text(json.dumps(broken))
    done = run_npx(MCPB, "validate", str(path), timeout=180)
    assert done.returncode != 0
    assert "secret" in done.stdout + done.stderr


def _pack(out: Path) -> zipfile.ZipFile:
    done = run_npx(MCPB, "pack", str(ROOT), str(out), timeout=180)
    assert done.returncode == 0, done.stdout + done.stderr
    return zipfile.ZipFile(out)


def test_pack_keeps_tests_caches_and_venvs_out(tmp_path: Path) -> None:
    assert (ROOT / ".venv").is_dir(), "the checkout should have a virtual environment to leave out"
    # A byte-code cache to leave out, made here when Python writes none (PYTHONDONTWRITEBYTECODE).
    cache = ROOT / "tools" / "__pycache__"
    made = not cache.exists()
    probe = cache / "pack-probe.cpython-311.pyc"
    cache.mkdir(exist_ok=True)
    probe.write_bytes(b"")
    try:
        names = _pack(tmp_path / "bundle.mcpb").namelist()
    finally:
        probe.unlink()
        if made:
            cache.rmdir()
    for needed in ("manifest.json", "pyproject.toml", "uv.lock", "README.md", "server/__main__.py", "tools/catalog.py"):
        assert needed in names
    for name in names:
        parts = name.split("/")
        assert not {"tests", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", "benchmarks", ".ci", ".git"} & set(
            parts
        ), name
        assert not name.endswith((".pyc", ".db", ".sqlite", ".mcpb")), name


async def test_packed_bundle_runs_as_the_host_would_start_it(make_sandbox: Callable[..., Any], tmp_path: Path) -> None:
    """Unpack, then run manifest.server.mcp_config exactly, with ${__dirname} and ${user_config.*} filled in."""
    uv = require("uv")
    sandbox = make_sandbox(keys=[SandboxKey(BUNDLE_KEY, ["batch_export:read"])])
    unpacked = tmp_path / "unpacked"
    _pack(tmp_path / "bundle.mcpb").extractall(unpacked)
    manifest = json.loads((unpacked / "manifest.json").read_text())
    answers = {"api_key": BUNDLE_KEY, "host": sandbox.base_url, "project_id": "1", "read_only": "true"}
    defaults = {
        k: str(v["default"]).lower() if isinstance(v["default"], bool) else str(v["default"])
        for k, v in manifest["user_config"].items()
        if "default" in v
    }

    def fill(value: str) -> str:
        value = value.replace("${__dirname}", str(unpacked))
        return re.sub(r"\$\{user_config\.(\w+)\}", lambda m: {**defaults, **answers}[m.group(1)], value)

    config = manifest["server"]["mcp_config"]
    assert config["command"] == "uv"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTHOG_", "VIRTUAL_ENV"))}
    env.update({k: fill(v) for k, v in config["env"].items()})
    env["POSTHOG_MCP_AUDIT_LOG"] = str(tmp_path / "audit.jsonl")
    params = StdioServerParameters(command=uv, args=[fill(a) for a in config["args"]], env=env, cwd=str(tmp_path))
    async with Client(params, read_timeout_seconds=120) as client:
        tools = {t.name for t in (await client.list_tools()).tools}
        # read_only answered true, toolsets left at their default
        # (and a key with batch_export:read only: the integration tools need their own scope)
        assert tools == {
            s.name
            for s in CATALOG
            if s.read_only
            and not s.deprecated
            and TOOLSET_OF[s.name] in DEFAULT_TOOLSETS
            and s.scope.startswith("batch_export:")
        }
        exports = data(await client.call_tool("batch-export-list", {}))  # project pinned to 1
        assert exports["count"] == 4
