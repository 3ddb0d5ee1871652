"""Persistence across restarts, concurrent writers, the import wall and the CLI."""

from __future__ import annotations

import ast
import subprocess
import sys
import threading
from pathlib import Path

import httpx

from posthog_sandbox import DEFAULT_API_KEY, SandboxConfig, SandboxKey, start_sandbox
from posthog_sandbox.cli import parse_key

from .conftest import KEYS, NOW, Api, s3_body

SANDBOX = Path(__file__).resolve().parents[2] / "posthog_sandbox"


def test_restart_with_db_path_loses_nothing(tmp_path: Path) -> None:
    db = str(tmp_path / "sandbox.db")
    first = start_sandbox(SandboxConfig(db_path=db, keys=KEYS, now=NOW))
    api = Api(first)
    try:
        created = api.post("", json=s3_body(3, name="Survivor")).json()
        export = api.export_named("Hourly events to S3")["id"]
        api.post(f"{export}/pause/")
        api.post(
            f"{export}/backfills/",
            json={"start_at": "2025-06-14T00:00:00+00:00", "end_at": "2025-06-14T02:00:00+00:00"},
        )
        api.advance(3600)
        before = api.state()
    finally:
        api.close()
        first.close()
    # A new sandbox on the same file: no reseed, same clock, same everything (even with another `now`).
    second = start_sandbox(SandboxConfig(db_path=db, keys=KEYS, now=NOW.replace(year=2030)))
    api = Api(second)
    try:
        after = api.state()
        assert after == before
        assert api.get(f"{created['id']}/").json()["name"] == "Survivor"
        assert api.control("GET", "clock")["now"] == "2025-06-15T13:00:00Z"
        assert [e["name"] for e in after["exports"]].count("Hourly events to S3") == 1
    finally:
        api.close()
        second.close()


def test_concurrent_writers_lose_nothing(start) -> None:  # noqa: ANN001
    api = start(3, seed=False, throttle=False)
    export = api.post("", json=s3_body(3, name="Shared")).json()["id"]
    errors: list[str] = []

    def worker(index: int) -> None:
        with httpx.Client(timeout=10) as client:
            headers = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
            response = client.post(api.url(""), json=s3_body(3, name=f"Export {index}"), headers=headers)
            if response.status_code != 201:
                errors.append(response.text)
            patch = {"destination": {"type": "AwsS3", "config": {"include_events": [f"event-{index}"]}}}
            # every writer patches the same export: each PATCH is atomic, the last one wins
            response = client.patch(api.url(f"{export}/"), json=patch, headers=headers)
            if response.status_code != 200:
                errors.append(response.text)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert errors == []
    names = {e["name"] for e in api.get("?limit=100").json()["results"]}
    assert names == {"Shared"} | {f"Export {i}" for i in range(20)}
    shared = api.get(f"{export}/").json()
    assert shared["destination"]["config"]["include_events"][0].startswith("event-")
    assert shared["destination"]["config"]["bucket_name"] == "b"  # never half-written


def test_sandbox_imports_nothing_from_the_rest_of_the_project() -> None:
    offenders = []
    for path in SANDBOX.rglob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    # relative imports must stay inside posthog_sandbox
                    depth = len(path.relative_to(SANDBOX).parts) - 1
                    if node.level > depth + 1:
                        offenders.append(f"{path.name}: relative import beyond posthog_sandbox")
                    continue
                names = [node.module or ""]
            for name in names:
                top = name.split(".")
                if top[0] in ("tools", "server"):
                    offenders.append(f"{path.name}: {name}")
    assert offenders == []


def _imported_modules(path: Path) -> set[str]:
    """Absolute names of the modules `path` imports (relative imports resolved inside its package)."""
    package = path.parent.relative_to(SANDBOX.parent).parts
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(package[: len(package) - node.level + 1]) if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            names.add(module)
            if node.module is None:
                names |= {f"{module}.{alias.name}" for alias in node.names}
    return names


def test_the_rest_of_the_project_imports_the_sandbox_only_where_it_starts_it() -> None:
    root = SANDBOX.parent
    offenders = []
    for folder in ("server", "tools"):
        for path in (root / folder).rglob("*.py"):
            uses = {n for n in _imported_modules(path) if n.split(".")[0] == "posthog_sandbox"}
            if uses and path.relative_to(root).as_posix() not in ("server/cli/commands.py", "server/cli/demo.py"):
                offenders.append(f"{path.relative_to(root)}: {sorted(uses)}")
    assert offenders == []


def test_the_sandbox_has_no_import_cycle() -> None:
    modules = {f"posthog_sandbox.{p.stem}": p for p in SANDBOX.glob("*.py") if p.stem != "__init__"}
    graph = {name: {m for m in _imported_modules(path) if m in modules} for name, path in modules.items()}
    cycles = []

    def visit(name: str, trail: list[str]) -> None:
        for dep in sorted(graph[name]):
            if dep in trail:
                cycles.append(" -> ".join([*trail[trail.index(dep) :], dep]))
            elif dep not in done:
                visit(dep, [*trail, dep])
        done.add(name)

    done: set[str] = set()
    for name in sorted(graph):
        if name not in done:
            visit(name, [name])
    assert cycles == []


def test_parse_key() -> None:
    assert parse_key("phx_ro=batch_export:read") == SandboxKey("phx_ro", ["batch_export:read"], [])
    assert parse_key("phx_all=*@1,2") == SandboxKey("phx_all", ["*"], [1, 2])
    assert parse_key("phx_legacy=") == SandboxKey("phx_legacy", [], [])


def test_cli_prints_url_projects_and_keys() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "posthog_sandbox", "--port", "0", "--empty", "--key", "phx_ro=batch_export:read@2"],
        cwd=SANDBOX.parents[1],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lines = [process.stdout.readline() for _ in range(5)]  # type: ignore[union-attr]
    finally:
        process.terminate()
        process.wait(10)
    text = "".join(lines)
    assert "http://127.0.0.1:" in lines[0] and "generation 3" in lines[0]
    assert "projects: 1" in text and "phx_ro  batch_export:read @2" in text
    url = lines[0].split(" at ")[1].strip()
    assert url.startswith("http://127.0.0.1:") and not url.endswith("/")


def test_start_sandbox_is_silent_on_stdout(tmp_path: Path) -> None:
    code = (
        "from posthog_sandbox import start_sandbox\n"
        "import httpx\n"
        "s = start_sandbox()\n"
        "httpx.get(s.base_url + '/api/projects/1/batch_exports/')\n"
        "httpx.get(s.base_url + '/api/projects/1/batch_exports/', headers={'Authorization': 'Bearer phx_sandbox_default_key'})\n"
        "s.close()\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=SANDBOX.parents[1], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
