"""The engine, which names no phase: plugins and their order, the repository as one run reads it,
plans turned into one change set, the one write path (commit), the journal and revert."""
