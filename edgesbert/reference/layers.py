"""Torch layers after the transformer: pooling and dense, with sentence-transformers' semantics."""

from __future__ import annotations

import torch
from torch import nn

from edgesbert.runtime.manifest import Pooling

#: Dense activations sentence-transformers saves as import paths, by their class name.
ACTIVATIONS: dict[str, type[nn.Module]] = {
    "Identity": nn.Identity,
    "Tanh": nn.Tanh,
    "ReLU": nn.ReLU,
    "GELU": nn.GELU,
    "Sigmoid": nn.Sigmoid,
}


class Pool(nn.Module):
    """Pools (batch, seq, dim) token embeddings over the attended positions."""

    def __init__(self, mode: Pooling) -> None:
        super().__init__()
        self.mode = mode

    def forward(self, tokens: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Return (batch, dim) sentence embeddings."""
        if self.mode is Pooling.CLS:  # the first attended position, which left padding moves
            first = attention_mask.to(torch.int32).argmax(dim=1)
            return tokens[torch.arange(tokens.shape[0], device=tokens.device), first]
        mask = attention_mask.unsqueeze(-1).to(tokens.dtype)
        if self.mode is Pooling.MAX:
            return tokens.masked_fill(mask == 0, float("-inf")).max(dim=1).values
        if self.mode is Pooling.LAST_TOKEN:
            seq_len = tokens.shape[1]
            values, flipped = attention_mask.to(torch.int32).flip(1).max(1)
            last = torch.where(values == 0, seq_len - 1, seq_len - 1 - flipped)
            index = last.view(-1, 1, 1).expand(-1, 1, tokens.shape[-1])
            return torch.gather(tokens * mask, 1, index).squeeze(1)
        counts = torch.clamp(mask.sum(dim=1), min=1e-9)
        summed = (tokens * mask).sum(dim=1)
        return summed / (counts if self.mode is Pooling.MEAN else torch.sqrt(counts))


class Dense(nn.Module):
    """A linear layer and an activation, as sentence-transformers' Dense module."""

    def __init__(self, in_features: int, out_features: int, bias: bool, activation: str) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features, bias=bias)
        self.activation = ACTIVATIONS[activation]()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Project ``x`` and apply the activation."""
        return self.activation(self.linear(x))
