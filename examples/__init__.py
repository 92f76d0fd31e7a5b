"""Runnable programs on edgesbert (not installed with the package)."""
