"""Run graphs compiled for fixed (batch, sequence) shapes, as NPUs need: pad to the nearest, then trim."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np


def pick_shape(shapes: Sequence[tuple[int, int]], length: int) -> tuple[int, int]:
    """The shape with the shortest sequence that holds ``length`` tokens (else the longest one)."""
    fitting = [shape for shape in shapes if shape[1] >= length]
    return min(fitting, key=lambda s: s[1]) if fitting else max(shapes, key=lambda s: s[1])


def run_static(
    run: Callable[[Mapping[str, np.ndarray]], np.ndarray],
    features: Mapping[str, np.ndarray],
    shapes: Sequence[tuple[int, int]],
    pad_token_id: int,
) -> np.ndarray:
    """Run ``features`` in chunks padded to one of ``shapes``; return the rows (and positions) asked for."""
    rows, length = features["input_ids"].shape
    batch, sequence = pick_shape(shapes, length)
    if length > sequence:
        raise ValueError(f"inputs of {length} tokens do not fit the longest static shape ({sequence})")
    outputs = []
    for start in range(0, rows, batch):
        chunk = {}
        for name, values in features.items():
            part = values[start : start + batch]
            fill = pad_token_id if name == "input_ids" else 0
            padded = np.full((batch, sequence), fill, dtype=values.dtype)
            padded[: len(part), :length] = part
            chunk[name] = padded
        output = run(chunk)[: min(batch, rows - start)]
        outputs.append(output[:, :length] if output.ndim == 3 else output)  # token outputs: drop padding
    return np.concatenate(outputs)
