"""Offline semantic search over your own files: a Qt app on the edgesbert runtime (no torch).

Modules: ``chunker`` (files to paragraphs), ``store`` (the index on disk), ``indexer`` (what changed,
embedded), ``search`` (query, optional rerank), ``engine`` (the models), ``worker`` (Qt threads),
``window`` (the widgets) and ``app`` (command line, self-test).
"""
