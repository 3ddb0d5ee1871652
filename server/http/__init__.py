"""The HTTP edge: the streamable HTTP transport and what stands in front of it (Host and Origin allow-lists,
connection bounds, callers, OAuth, per-caller limits). Nothing in `server/guard/` imports from here."""
