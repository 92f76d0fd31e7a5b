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
#: texts summed at once (see ``StaticTableBackend.embed``)
GROUP = 64


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
        self._table, self._scales = (
            table.view(np.ndarray),
            scales,
        )  # a plain view: memmap's indexing is slower

    def run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """(batch, dimension) float32 embeddings of the padded ``input_ids``, at unit length."""
        mask = inputs["attention_mask"].astype(bool)
        return self.embed(inputs["input_ids"][mask], mask.sum(axis=1))  # the real tokens, text after text

    def embed(self, ids: np.ndarray, counts: np.ndarray) -> np.ndarray:
        """(texts, dimension) float32 embeddings at unit length.

        ``ids`` holds every text's token ids, one text after another; ``counts[i]`` how many are text i's.
        Texts of similar length are summed together, GROUP at a time, as a weighted product of their rows:
        small arrays that stay in cache (``np.add.reduceat`` over all rows ran 4x slower here).
        """
        sums = np.zeros((len(counts), self._table.shape[1]), dtype=np.float32)
        starts = np.cumsum(counts) - counts
        order = np.argsort(counts, kind="stable")
        for group in (order[i : i + GROUP] for i in range(0, len(order), GROUP)):
            longest = int(counts[group[-1]])
            if longest == 0:  # empty texts (a tokenizer without special tokens) stay zero vectors
                continue
            positions = np.arange(longest)
            real = positions < counts[group][:, None]
            padded = ids[np.where(real, starts[group][:, None] + positions, 0)]
            weights = real.astype(np.float32)
            if self._scales is not None:
                weights *= self._scales[padded]
            rows = self._table[padded].astype(np.float32, copy=False)
            sums[group] = np.matmul(weights[:, None, :], rows)[:, 0]
        return normalize(sums)


BACKEND = StaticTableBackend
