"""The desktop app's bundle and its figures (``python -m benchmarks.desktop``; `make desktop`).

``bundle`` builds it (and the same app on torch, from ``torch_app``), ``measure`` starts it and reads its
figures, ``__main__`` writes the report.
"""
