"""Memory: ``export`` (the peak of an export, phase by phase), ``search`` (semantic search over a million
stored embeddings) and ``soak`` (resident memory over a million encode calls). Each runs as
``python -m benchmarks.memory.NAME``.
"""
