"""What a host shows a person beside the tools: prompts, resources and the MCP Apps views."""
