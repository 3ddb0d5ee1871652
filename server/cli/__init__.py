"""The command line (`posthog-batch-exports-mcp`, `python -m server`), the Quickstart's demo and the bundle's
manifest."""

from server.cli.commands import main

__all__ = ["main"]
