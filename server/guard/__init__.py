"""The confirmation guard: its decision, its answer, its sealed tokens, the ledger it shares between
replicas and its audit trail (docs/guard.md). Nothing here imports from `server/http/`."""
