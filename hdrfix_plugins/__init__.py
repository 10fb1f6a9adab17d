"""Built-in hdrfix phases, installed as the `hdrfix_plugins` package."""
