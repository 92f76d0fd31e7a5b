"""The ``edgesbert`` command: one module per command group, ``commands.py`` the dispatcher.

``commands`` (the parser; encode, rank, info, verify, serve), ``export`` (export, tune), ``bulk`` (embed,
score), ``ray_serve`` (serve --ray); ``files`` reads texts and writes embeddings, ``text`` prints tables.
"""

from edgesbert.cli.commands import main

__all__ = ["main"]
