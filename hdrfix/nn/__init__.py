"""Standalone torch modules for the patched log-domain path."""
