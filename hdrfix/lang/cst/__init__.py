"""libcst helpers, used only for the functions a phase changes: pairing ast and libcst nodes,
matching and editing statements, the network class and the trainer's settings."""
