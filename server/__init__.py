"""posthog-batch-exports-mcp: the machinery that turns the catalog in `tools/` into an MCP server."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

DISTRIBUTION = "posthog-batch-exports-mcp"


def _version() -> str:
    """The version pyproject.toml declares: from the installed package's metadata, or, in a source
    checkout that was never installed, from pyproject.toml itself. It is written nowhere else."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        pass
    import tomllib

    pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
    try:
        return str(tomllib.loads(pyproject.read_text())["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "0+unknown"


__version__ = _version()
