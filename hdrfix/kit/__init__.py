"""The phase kit: what the phases share on top of the language layer and the core. The
field's log-domain sites (``logdomain``), patching every site the same way (``sitepatch``),
setting config values (``configedit``), reading a new setting in a trainer
(``trainersetting``), where the field keeps its configs, trainer and network (``targets``) and
how a path setting is read (``readpath``). See docs/design.md, "Layers"."""
