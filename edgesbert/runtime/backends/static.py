"""The static backend: a distilled token table, looked up and averaged with numpy; no graph runtime at all.

A static variant (``edgesbert export --static``) is a safetensors file in model2vec's layout: ``embeddings``,
one row per token id (float32, or int8 with one float32 scale per row in ``weights``). The rows are already
weighted by token frequency and the rows of special tokens are zero, so the padded batch the runtime's
tokenizer makes ([CLS] text [SEP] padding) sums to what model2vec's ``StaticModel`` and sentence-transformers'
``StaticEmbedding`` compute from the text's tokens alone; the embedding is that sum at unit length. Neither
onnxruntime nor OpenVINO is imported.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from edgesbert.errors import DeviceNotAvailableError, ModelLoadError
from edgesbert.runtime.backends import Backend, Device, RunOptions
from edgesbert.runtime.safetensors_numpy import read_safetensors
from edgesbert.runtime.similarity import normalize

#: model2vec's tensor names: the token vectors, and a per-row factor (here the int8 rows' scales)
TABLE, SCALES = "embeddings", "weights"


class StaticTableBackend(Backend):
    """Embeds token ids as the unit-length sum of their rows in a token table."""

    input_names = ("input_ids", "attention_mask")
    padding_costs = False

    def __init__(self, graph: Path, options: RunOptions) -> None:
        if options.device not in (Device.CPU, Device.AUTO):
            raise DeviceNotAvailableError(
                f"a static variant runs on the CPU (numpy table lookups), not on {options.device.value!r}; "
                "use device='cpu' or 'auto'"
            )
        tensors = read_safetensors(graph)
        table = tensors.get(TABLE)
        if table is None or table.ndim != 2 or table.dtype not in (np.float32, np.int8):
            raise ModelLoadError(f"{graph} holds no float32 or int8 token table called {TABLE!r}")
        scales = tensors.get(SCALES)
        if scales is not None and (scales.shape != (len(table),) or scales.dtype != np.float32):
            raise ModelLoadError(f"{graph}: {SCALES!r} must hold one float32 per row of {TABLE!r}")
        if table.dtype == np.int8 and scales is None:
            scales = np.ones(len(table), dtype=np.float32)  # model2vec's int8: one scale for all rows
        self._table, self._scales = table, scales

    def run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """(batch, dimension) float32 embeddings of the padded ``input_ids``, at unit length."""
        mask = inputs["attention_mask"].astype(bool)
        ids = inputs["input_ids"][mask]  # the real tokens, text after text
        counts = mask.sum(axis=1)
        rows = self._table[ids].astype(np.float32, copy=False)
        if self._scales is not None:
            rows = rows * self._scales[ids][:, None]
        sums = np.zeros((len(counts), rows.shape[1]), dtype=np.float32)
        filled = counts > 0  # an empty text (a tokenizer without special tokens) stays a zero vector
        if filled.any():
            starts = np.cumsum(counts) - counts
            sums[filled] = np.add.reduceat(rows, starts[filled], axis=0)
        return normalize(sums)


BACKEND = StaticTableBackend
