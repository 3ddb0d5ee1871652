"""The pinned npm command-line tools (`.ci/npm-tools`) and how tests run them through npx.

In CI (`CI` set) a missing npx is a failure, never a skip: the checks these tools make must run there.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NPM_TOOLS_FILE = ROOT / ".ci" / "npm-tools"


def pinned(package: str) -> str:
    """`package@version` as pinned in .ci/npm-tools (the file CI warms the npx cache from)."""
    specs = re.findall(r'"([^"\s]+@[^"\s]+)"', NPM_TOOLS_FILE.read_text())
    for spec in specs:
        name, _, version = spec.rpartition("@")
        if name == package and version:
            return spec
    raise AssertionError(f"{package} is not pinned in {NPM_TOOLS_FILE}; pinned: {specs}")


def require(command: str) -> str:
    """The command's path; fails in CI when it is missing, skips elsewhere."""
    found = shutil.which(command)
    if found:
        return found
    message = f"{command} is not on PATH (install Node.js 20+ / uv); .ci/run installs what the tests need"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def run_npx(package: str, *args: str, timeout: float, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    npx = require("npx")
    return subprocess.run(
        [npx, "-y", pinned(package), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=cwd or ROOT,
        check=False,
    )


def pinned_group(group: str) -> list[str]:
    """The `name@version` entries of one array in .ci/npm-tools, e.g. AI_SDK_LIBRARIES."""
    found = re.search(rf"^{group}=\((.*?)^\)", NPM_TOOLS_FILE.read_text(), re.S | re.M)
    assert found, f"{group} is not defined in {NPM_TOOLS_FILE}"
    return re.findall(r'"([^"\s]+@[^"\s]+)"', found.group(1))


def library_dir(group: str, *, timeout: float = 600) -> Path:
    """A folder with the pinned npm packages of `group` installed (node_modules/), made once and kept in
    the user's cache; a half-made one is never used (it is built aside, then renamed into place)."""
    specs = pinned_group(group)
    npm = require("npm")
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "posthog-batch-exports-mcp" / "npm"
    target = cache / f"{group.lower()}-{hashlib.sha256(' '.join(specs).encode()).hexdigest()[:12]}"
    if (target / "installed").exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=f"{target.name}-", dir=cache))
    done = subprocess.run(
        [npm, "install", "--prefix", str(building), "--no-audit", "--no-fund", "--loglevel=error", *specs],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        shutil.rmtree(building, ignore_errors=True)
        raise AssertionError(f"npm install {' '.join(specs)} failed: {done.stderr[-2000:]}")
    (building / "installed").write_text("\n".join(specs) + "\n")
    try:
        building.rename(target)
    except OSError:  # another run made it first
        shutil.rmtree(building, ignore_errors=True)
    return target


if __name__ == "__main__":
    # .ci/run: `python -m tests.npm_tools AI_SDK_LIBRARIES` installs a group before the tests need it.
    for name in sys.argv[1:]:
        print(library_dir(name))
