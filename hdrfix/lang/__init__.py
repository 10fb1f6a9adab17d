"""The language layer: Python and YAML files read, indexed and edited, with nothing known of
phases, plans or repositories. Python: ``pyfile`` (a file parsed once), ``flow``
(definite assignment and data flow), ``assigned``, ``astmatch``, ``readfirst``, ``cst/``
(libcst edits); YAML: ``yamledit``; both: ``sourcefile`` (bytes, encoding, newlines),
``lines`` and ``errors`` (the one-line error naming file and line). See docs/design.md,
"Layers"."""
