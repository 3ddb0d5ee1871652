"""posthog-batch-exports-mcp: the machinery that turns the catalog in `tools/` into an MCP server."""

__version__ = "0.1.0"
