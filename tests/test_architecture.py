"""The walls docs/architecture.md describes, held by tests: who may import whom, no import cycle,
and a document that names every module there is."""

from __future__ import annotations

import ast
import re
from collections.abc import Collection
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("server", "tools", "posthog_sandbox")
ARCHITECTURE = ROOT / "docs" / "architecture.md"
# Written by another engineer in parallel; the page names it before it lands.
PRODUCED_ELSEWHERE = {"docs/posthog-api.md"}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def project_modules() -> dict[str, Path]:
    return {module_name(path): path for package in PACKAGES for path in sorted((ROOT / package).rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(path: Path, module: str, modules: Collection[str] = (), *, type_only: bool = False) -> set[str]:
    """Every module `path` imports when it runs (anywhere in it, functions included), by absolute
    name; imports only for type checkers (`if TYPE_CHECKING:`) are left out, as Python does, unless
    `type_only` asks for them too (a type-only circle is still a circle to a reader).

    `from package import name` counts as importing `package.name` when that is one of `modules`
    (a submodule), and `package` otherwise.
    """
    names: set[str] = set()
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node) and not type_only:
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, *([node.module] if node.module else [])])
            else:
                source = node.module or ""
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                names.add(submodule if submodule in modules else source)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text()))
    return names


def import_graph(*, type_only: bool = False) -> dict[str, set[str]]:
    """Project module -> the project modules it imports (with `type_only`, those it imports for type
    checkers too)."""
    modules = project_modules()
    return {
        module: {
            name
            for name in imported_names(path, module, modules, type_only=type_only)
            if name in modules and name != module
        }
        for module, path in modules.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def walk(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state:
                found = walk(target)
                if found:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = walk(node)
            if found:
                return found
    return None


def test_no_import_cycle_among_project_modules() -> None:
    cycle = find_cycle(import_graph(type_only=True))
    assert cycle is None, "import cycle (type-only imports included): " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_cycles() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None
    graph = import_graph()
    assert "tools.declaration" in graph["tools.request"]  # the graph sees `from tools.declaration import ...`
    assert "tools.secrets" in graph["server.results"]  # and `from tools import secrets`
    assert "tools.upstream" in graph["tools.declaration"]


def test_type_only_imports_are_seen_when_asked(tmp_path: Path) -> None:
    module = tmp_path / "typed.py"
    module.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from tools.request import Request\n")
    assert "tools.request" not in imported_names(module, "typed")  # Python never runs it
    assert "tools.request" in imported_names(module, "typed", type_only=True)


def test_tools_describe_the_api_and_nothing_else() -> None:
    for module, path in project_modules().items():
        if module.startswith("tools"):
            bad = {
                n
                for n in imported_names(path, module)
                if n.split(".")[0] in ("mcp", "mcp_types", "httpx", "server", "posthog_sandbox")
            }
            assert not bad, f"{module} imports {sorted(bad)}: tools/ describes the API, server/ talks MCP and HTTP"


def test_the_guard_and_the_http_edge_stand_apart() -> None:
    """The guard decides about a write whatever transport carried it; the HTTP edge decides who may call
    whatever the call is. Neither folder imports the other (type-only imports included)."""
    for module, path in project_modules().items():
        names = imported_names(path, module, type_only=True)
        for here, there in (("server.guard", "server.http"), ("server.http", "server.guard")):
            if module == here or module.startswith(here + "."):
                bad = sorted(n for n in names if n == there or n.startswith(there + "."))
                assert not bad, (
                    f"{module} imports {bad}: {here.replace('.', '/')}/ and {there.replace('.', '/')}/ stand apart"
                )


def test_the_top_of_server_holds_the_core_of_one_call() -> None:
    """Machines live in folders (http, guard, host, cli); the top keeps the core of one call."""
    top = sorted(p.name for p in (ROOT / "server").glob("*.py") if p.name not in ("__init__.py", "__main__.py"))
    assert len(top) <= 12, f"server/ has {len(top)} modules at its top; put a machine's modules in its folder: {top}"
    folders = {p.name for p in (ROOT / "server").iterdir() if (p / "__init__.py").exists()}
    assert {"http", "guard", "host", "cli"} <= folders
    assert (ROOT / "tools" / "answers" / "__init__.py").exists()


def test_the_sandbox_wall_holds_both_ways() -> None:
    for module, path in project_modules().items():
        roots = {n.split(".")[0] for n in imported_names(path, module)}
        if module.startswith("posthog_sandbox"):
            assert not roots & {"server", "tools"}, f"{module} imports our side of the wire"
        elif module not in ("server.cli.commands", "server.cli.demo"):
            assert "posthog_sandbox" not in roots, f"{module} imports the sandbox: only the CLI and its demo start it"


def test_the_architecture_document_names_every_module() -> None:
    text = ARCHITECTURE.read_text()
    named = set(re.findall(r"`((?:server|tools|posthog_sandbox)/[\w/]+\.py)`", text))
    existing = {str(path.relative_to(ROOT)) for path in project_modules().values()}
    missing = sorted(p for p in existing - named if not p.endswith(("__init__.py", "__main__.py")))
    assert not missing, f"docs/architecture.md does not say what these modules are for: {missing}"
    gone = sorted(named - existing)
    assert not gone, f"docs/architecture.md names modules that do not exist: {gone}"
    for path in re.findall(r"`((?:tests|docs|benchmarks)/[\w/.-]+)`", text):
        exists = (ROOT / path).exists() or path in PRODUCED_ELSEWHERE or path.startswith("benchmarks/")
        assert exists, f"docs/architecture.md names {path}, which does not exist"


def test_the_budget_and_the_cleaner_stand_below_the_machines() -> None:
    """One PostHog request budget and one cleaner of untrusted text: both sit under the core of one call, so
    the HTTP client, the guard, the edge and what a host shows may use them, and neither reaches up into a
    machine (the guard, the edge, the host, the command line) or into the client that uses it."""
    machines = ("server.guard", "server.http", "server.host", "server.cli", "server.app", "server.posthog")
    for module, path in project_modules().items():
        if not (module.startswith("server.budget") or module == "server.untrusted"):
            continue
        names = imported_names(path, module, type_only=True)
        bad = sorted(n for n in names if any(n == m or n.startswith(m + ".") for m in machines))
        assert not bad, f"{module} imports {bad}"
