"""Answer tools: one question an operator asks per module, each a declaration plus the small function that
makes the several requests it needs."""
