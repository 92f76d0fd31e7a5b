"""The transformer architectures the tiny test models come in, declared as data.

Each entry names the ``transformers`` classes of one architecture and the config fields that make it
tiny (hidden size 32, two layers) and match the shared WordPiece tokenizer (``[PAD]`` is id 0,
``[CLS]`` 2, ``[SEP]`` 3), plus what its tokenizer emits and on which side it pads.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from transformers import (
    BertConfig,
    BertForSequenceClassification,
    BertModel,
    DebertaV2Config,
    DebertaV2ForSequenceClassification,
    DebertaV2Model,
    DistilBertConfig,
    DistilBertForSequenceClassification,
    DistilBertModel,
    ElectraConfig,
    ElectraForSequenceClassification,
    ElectraModel,
    ModernBertConfig,
    ModernBertForSequenceClassification,
    ModernBertModel,
    MPNetConfig,
    MPNetForSequenceClassification,
    MPNetModel,
    PretrainedConfig,
    PreTrainedModel,
    Qwen3Config,
    Qwen3ForSequenceClassification,
    Qwen3Model,
    RobertaConfig,
    RobertaForSequenceClassification,
    RobertaModel,
    XLMRobertaConfig,
    XLMRobertaForSequenceClassification,
    XLMRobertaModel,
)

HIDDEN_SIZE = 32
NUM_LAYERS = 2
NUM_HEADS = 2
INTERMEDIATE_SIZE = 64
MAX_POSITION_EMBEDDINGS = 128

WITH_TOKEN_TYPES = ("input_ids", "token_type_ids", "attention_mask")
WITHOUT_TOKEN_TYPES = ("input_ids", "attention_mask")

#: The BERT-style size fields most configs share.
_SIZES: dict[str, Any] = {
    "hidden_size": HIDDEN_SIZE,
    "num_hidden_layers": NUM_LAYERS,
    "num_attention_heads": NUM_HEADS,
    "intermediate_size": INTERMEDIATE_SIZE,
    "max_position_embeddings": MAX_POSITION_EMBEDDINGS,
}
#: RoBERTa-style position ids start after the padding id, so they need two more positions.
_ROBERTA_POSITIONS: dict[str, Any] = {"max_position_embeddings": MAX_POSITION_EMBEDDINGS + 2}


@dataclass(frozen=True)
class TinyArchitecture:
    """One architecture: its config, base model and classifier classes, and what makes it tiny."""

    config_class: type[PretrainedConfig]
    model_class: type[PreTrainedModel]
    classifier_class: type[PreTrainedModel]
    config_kwargs: Mapping[str, Any] = field(default_factory=dict)
    input_names: tuple[str, ...] = WITHOUT_TOKEN_TYPES  # the tokenizer's model_input_names
    padding_side: str = "right"


TINY_ARCHITECTURES: dict[str, TinyArchitecture] = {
    "bert": TinyArchitecture(BertConfig, BertModel, BertForSequenceClassification, _SIZES, WITH_TOKEN_TYPES),
    "distilbert": TinyArchitecture(
        DistilBertConfig,
        DistilBertModel,
        DistilBertForSequenceClassification,
        {
            "dim": HIDDEN_SIZE,
            "n_layers": NUM_LAYERS,
            "n_heads": NUM_HEADS,
            "hidden_dim": INTERMEDIATE_SIZE,
            "max_position_embeddings": MAX_POSITION_EMBEDDINGS,
        },
    ),
    "roberta": TinyArchitecture(
        RobertaConfig,
        RobertaModel,
        RobertaForSequenceClassification,
        {**_SIZES, **_ROBERTA_POSITIONS, "type_vocab_size": 1},
    ),
    "xlm-roberta": TinyArchitecture(
        XLMRobertaConfig,
        XLMRobertaModel,
        XLMRobertaForSequenceClassification,
        {**_SIZES, **_ROBERTA_POSITIONS, "type_vocab_size": 1},
    ),
    "mpnet": TinyArchitecture(
        MPNetConfig, MPNetModel, MPNetForSequenceClassification, {**_SIZES, **_ROBERTA_POSITIONS}
    ),
    "electra": TinyArchitecture(
        ElectraConfig,
        ElectraModel,
        ElectraForSequenceClassification,
        {**_SIZES, "embedding_size": 16},  # smaller than hidden: the embeddings get a projection
        WITH_TOKEN_TYPES,
    ),
    "deberta-v2": TinyArchitecture(  # DeBERTa-v3's settings: relative positions only, no token type table
        DebertaV2Config,
        DebertaV2Model,
        DebertaV2ForSequenceClassification,
        {
            **_SIZES,
            "type_vocab_size": 0,
            "relative_attention": True,
            "position_buckets": 16,
            "max_relative_positions": -1,
            "pos_att_type": ["p2c", "c2p"],
            "position_biased_input": False,
            "norm_rel_ebd": "layer_norm",
            "share_att_key": True,
        },
        WITH_TOKEN_TYPES,
    ),
    "modernbert": TinyArchitecture(
        ModernBertConfig,
        ModernBertModel,
        ModernBertForSequenceClassification,
        {
            **_SIZES,
            "local_attention": 16,  # a window real sentences exceed: the sliding-window layer matters
            "layer_types": ["full_attention", "sliding_attention"],
            "bos_token_id": 2,
            "eos_token_id": 3,
            "cls_token_id": 2,
            "sep_token_id": 3,
        },
    ),
    "qwen3": TinyArchitecture(  # a decoder: causal attention, pooled at the last token, padded on the left
        Qwen3Config,
        Qwen3Model,
        Qwen3ForSequenceClassification,
        {**_SIZES, "num_key_value_heads": 1, "head_dim": 16, "bos_token_id": 2, "eos_token_id": 3},
        padding_side="left",
    ),
}
ARCHITECTURES = tuple(TINY_ARCHITECTURES)


def tiny_config(architecture: str, vocab_size: int, **kwargs: Any) -> PretrainedConfig:
    """The tiny config of ``architecture`` for a vocabulary of ``vocab_size`` with ``[PAD]`` at id 0.

    Args:
        architecture: a key of ``TINY_ARCHITECTURES``.
        vocab_size: the tokenizer's vocabulary size.
        **kwargs: extra config fields (e.g. ``num_labels``, ``id2label``).

    Returns:
        The architecture's config.
    """
    spec = TINY_ARCHITECTURES[architecture]
    fields = {"vocab_size": vocab_size, "pad_token_id": 0, **spec.config_kwargs, **kwargs}  # kwargs win
    return spec.config_class(**fields)
