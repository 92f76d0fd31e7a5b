"""The PyTorch reference cross-encoder, loaded from a Hugging Face sequence-classification folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from transformers import AutoModelForSequenceClassification, PreTrainedModel

from edgesbert.errors import ModelLoadError
from edgesbert.reference.bi_encoder import load_transformer, model_input_names, model_max_length
from edgesbert.resolve import resolve_model
from edgesbert.runtime.manifest import Activation
from edgesbert.runtime.ranking import PairScorer

#: Activations sentence-transformers saves as import paths, by their class name.
_ACTIVATIONS = {
    "Sigmoid": Activation.SIGMOID,
    "Identity": Activation.IDENTITY,
    "Tanh": Activation.TANH,
    "Softmax": Activation.SOFTMAX,
}


class ClassifierNetwork(nn.Module):
    """Token ids of a text pair in, (batch, num_labels) logits out; the module the exporter traces."""

    def __init__(self, classifier: PreTrainedModel) -> None:
        super().__init__()
        self.classifier = classifier

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Return the logits."""
        extra = {} if token_type_ids is None else {"token_type_ids": token_type_ids}
        return self.classifier(input_ids=input_ids, attention_mask=attention_mask, **extra).logits


def default_activation(config: object, num_labels: int) -> Activation:
    """The activation sentence-transformers would apply: saved in the config, else by label count."""
    saved = (getattr(config, "sentence_transformers", None) or {}).get("activation_fn") or getattr(
        config, "sbert_ce_default_activation_function", None
    )
    if saved:
        name = str(saved).rsplit(".", 1)[-1]
        if name not in _ACTIVATIONS:
            raise ModelLoadError(f"activation {saved!r} is not one of {sorted(_ACTIVATIONS)}")
        return _ACTIVATIONS[name]
    return Activation.SIGMOID if num_labels == 1 else Activation.IDENTITY


class CrossEncoder(PairScorer):
    """A Hugging Face cross-encoder in PyTorch, with the runtime's ``predict``/``rank`` semantics."""

    def __init__(
        self,
        model: str | Path,
        *,
        device: str = "cpu",
        max_length: int | None = None,
        activation: Activation | str | None = None,
        attn_implementation: str | None = None,
        num_labels: int | None = None,
    ) -> None:
        """Load ``model``: a local folder or a Hugging Face id (resolved offline first).

        Args:
            model: folder or hub id of a sequence-classification model.
            device: torch device, e.g. "cpu" or "cuda".
            max_length: maximum tokens of a pair; None takes the tokenizer's limit.
            activation: override the activation applied to the logits.
            attn_implementation: transformers' attention kernel ("eager", "sdpa"); None picks its default.
            num_labels: give the classifier this many outputs, e.g. to start training from a model
                without a head (the new head is random: seed torch first); None keeps the folder's.
        """
        self.source = str(model)
        self.folder = resolve_model(model)
        classifier, self.tokenizer = load_transformer(
            self.folder, AutoModelForSequenceClassification, attn_implementation, num_labels
        )
        self.input_names = model_input_names(classifier, self.tokenizer)
        self.transformer_config = classifier.config
        self.network = ClassifierNetwork(classifier).to(device).eval()
        self.device = torch.device(device)
        config: Any = classifier.config
        self.num_labels = int(config.num_labels)
        self.labels = tuple(str(config.id2label[i]) for i in range(self.num_labels))
        self.activation = (
            Activation(activation) if activation else default_activation(config, self.num_labels)
        )
        self.max_seq_length = max_length or model_max_length(classifier, self.tokenizer)

    def tokenize(self, pairs: list[tuple[str, str]]) -> dict[str, torch.Tensor]:
        """Tokenize pairs: pad to the longest, truncate the longer text first."""
        first, second = [a for a, _ in pairs], [b for _, b in pairs]
        features = self.tokenizer(
            first,
            second,
            padding=True,
            truncation="longest_first",
            max_length=self.max_seq_length,
            return_tensors="pt",
        )
        return {name: features[name].to(self.device) for name in self.input_names}

    @torch.inference_mode()
    def _logits(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        return self.network(**self.tokenize(pairs)).float().cpu().numpy()
