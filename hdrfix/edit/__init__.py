"""Reusable editing: YAML values with minimal diffs, Python files indexed once, data flow, the
field's log-domain sites, and where the field keeps its configs, trainer and network."""
