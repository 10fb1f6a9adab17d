"""``hdrfix validate``: train the untouched and the patched fixture side by side, measure overflow
and error per variant, and report them (JSON, table, report.png)."""
