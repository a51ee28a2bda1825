"""Pure state-machine models of cache-stampede mitigations (no engine, solver or test imports)."""
