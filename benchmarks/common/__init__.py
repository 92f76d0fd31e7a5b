"""What the benchmarks share, one module per concern, each imported by name (this file imports nothing).

- ``paths``: where they read and write (the repository, benchmarks/results, build/bench, .venv-peers);
- ``timing``: the clock, percentiles and a process's memory, and the log; standard library only, so that a
  timed worker imports nothing it does not measure, in either environment;
- ``cache``: folders built once and keyed by a model's files (exports, peer exports, references);
- ``exports``: the exports the benchmarks time (cached) and the PyTorch reference's outputs (cached);
- ``data``: STSb test, the corpus texts, Spearman against gold;
- ``machine``: the CPU the figures hold for;
- ``interleaved``: several encoders in one process, timed in interleaved rounds.
"""
