"""The benchmark suite (``python -m benchmarks.suite``): every system, every figure, one run.

``__main__`` runs it; ``systems`` says what it measures (edgesbert variants, and the peers of ``peers``);
``worker`` times one system in one fresh process; ``accuracy`` and ``install`` add the figures no worker
times; ``tables``, ``plots`` and ``report`` write them out. Nothing is imported here: a worker's cold start
times its own imports only.
"""
