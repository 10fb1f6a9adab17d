"""``hdrfix trial``: the user's own trainer, patched per variant, trained in every mode."""
