"""The package as people install it: `uv build` makes the sdist and the wheel, and a fresh virtual
environment with only the wheel (and what it depends on) runs `tools`, `serve --sandbox` and `demo`,
away from this checkout. No optional extra is installed, so this is what a plain `pip install` gets."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from tests.npm_tools import ROOT, require
from tests.support import BATCH_EXPORT_SCOPES, data, listed_by_a_default_server
from tools.catalog import CATALOG

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
TIMEOUT = 300
KEY = "phx_package_test_key_0123456789"  # every scope, query:read included


def run(*command: str | Path, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True, timeout=TIMEOUT, check=False
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, dict[str, str]]]:
    """(the venv's bin folder, the wheel, the environment to run it in), built and installed once."""
    uv = require("uv")
    work = tmp_path_factory.mktemp("package")
    # Nothing of this checkout's environment leaks in; uv keeps the user's cache, so installs stay offline.
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POSTHOG_", "VIRTUAL_ENV", "PYTHONPATH"))}
    env["UV_PYTHON_DOWNLOADS"] = "never"
    built = run(uv, "build", "--out-dir", work / "dist", ROOT, cwd=work, env=env)
    assert built.returncode == 0, built.stderr
    wheels = list((work / "dist").glob("*.whl"))
    sdists = list((work / "dist").glob("*.tar.gz"))
    assert len(wheels) == 1 and len(sdists) == 1, built.stderr
    venv = work / "venv"
    made = run(uv, "venv", "--quiet", "--python", sys.executable, venv, cwd=work, env=env)
    assert made.returncode == 0, made.stderr
    install = (uv, "pip", "install", "--quiet", "--python", venv / "bin" / "python", wheels[0])
    done = run(*install, "--offline", cwd=work, env=env)  # from uv's cache, which `uv sync` filled
    if done.returncode != 0:
        done = run(*install, cwd=work, env=env)  # a cache that lacks something: the index has it
    assert done.returncode == 0, done.stderr
    home = work / "home"  # the server's audit trail and state go here, not into the user's home
    home.mkdir()
    yield venv / "bin", wheels[0], {**env, "HOME": str(home), "XDG_STATE_HOME": str(home / "state")}


def test_the_wheel_carries_the_package_and_its_data(installed: tuple[Path, Path, dict[str, str]]) -> None:
    _, wheel, _ = installed
    assert wheel.name == f"{PROJECT['name'].replace('-', '_')}-{PROJECT['version']}-py3-none-any.whl"
    names = zipfile.ZipFile(wheel).namelist()
    for needed in (
        "server/cli/commands.py",
        "server/host/ui/health.html",
        "tools/catalog.py",
        "posthog_sandbox/app.py",
    ):
        assert needed in names
    assert not [n for n in names if n.startswith(("tests/", "benchmarks/", "docs/"))]


def test_a_plain_install_has_no_optional_extra(installed: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> None:
    bin_dir, _, env = installed
    probe = run(
        bin_dir / "python", "-c", "import importlib.util as u; print(u.find_spec('sqlglot'))", cwd=tmp_path, env=env
    )
    assert probe.stdout.strip() == "None", probe.stdout + probe.stderr
    version = run(bin_dir / "posthog-batch-exports-mcp", "--version", cwd=tmp_path, env=env)
    assert version.stdout.strip() == f"posthog-batch-exports-mcp {PROJECT['version']}", version.stderr


def test_tools_json(installed: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> None:
    bin_dir, _, env = installed
    done = run(bin_dir / "posthog-batch-exports-mcp", "tools", "--json", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert [row["name"] for row in json.loads(done.stdout)] == [spec.name for spec in CATALOG]


async def test_serve_sandbox_answers_a_real_client(
    installed: tuple[Path, Path, dict[str, str]], tmp_path: Path
) -> None:
    bin_dir, _, env = installed
    params = StdioServerParameters(
        command=str(bin_dir / "posthog-batch-exports-mcp"), args=["serve", "--sandbox"], cwd=str(tmp_path), env=env
    )
    async with Client(params, read_timeout_seconds=60) as client:
        assert len((await client.list_tools()).tools) == listed_by_a_default_server(BATCH_EXPORT_SCOPES)
        # The sandbox's Query API needs the `sandbox` extra; without it batch-export-errors reads the logs route.
        errors = data(await client.call_tool("batch-export-errors", {"project_id": 1, "after": "-7d"}))
        assert "logs route" in errors["source"] and errors["exports"]


def test_sandbox_command(installed: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> None:
    """The sandbox on its own: it serves, and its Query API says which extra it needs, never a traceback."""
    import httpx

    from posthog_sandbox.routes import QUERY_NEEDS_SQLGLOT
    from tests.redis_server import free_port

    bin_dir, _, env = installed
    port = free_port()
    process = subprocess.Popen(
        [str(bin_dir / "posthog-batch-exports-mcp"), "sandbox", "--port", str(port), "--key", f"{KEY}=*"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}/api/projects/1"
    headers = {"Authorization": f"Bearer {KEY}"}
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.stderr.read() if process.stderr else ""
            try:
                exports = httpx.get(f"{base}/batch_exports/", headers=headers, timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the sandbox did not answer within 60 s"
                time.sleep(0.1)
        assert exports.status_code == 200 and exports.json()["count"] == 4
        query = {"query": {"kind": "HogQLQuery", "query": "SELECT count() FROM batch_export_log_entries"}}
        refused = httpx.post(f"{base}/query/", headers=headers, json=query, timeout=5)
        assert refused.status_code == 404 and refused.json()["detail"] == QUERY_NEEDS_SQLGLOT
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert "Traceback" not in stderr


def test_demo(installed: tuple[Path, Path, dict[str, str]], tmp_path: Path) -> None:
    bin_dir, _, env = installed
    done = run(bin_dir / "posthog-batch-exports-mcp", "demo", cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "Traceback" not in done.stderr
