"""What int8 keeps and what it buys: ``accuracy`` (held-out STSb test of the accuracy-aware int8 variants),
``presets`` (onnxruntime's dynamic int8 settings, which the shipped presets were chosen from) and ``profile``
(where each graph's time goes, by operator). Each runs as ``python -m benchmarks.int8.NAME``.
"""
