"""The pinned npm command-line tools (`.ci/npm-tools`) and how tests run them through npx.

In CI (`CI` set) a missing npx is a failure, never a skip: the checks these tools make must run there.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
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
