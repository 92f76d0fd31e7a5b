"""Step: a model traced as a packed graph, several texts per row (the runtime side: runtime/packing.py).

Within a row, tokens attend only to their own text (a block-diagonal mask, built in the graph from
``segment_ids``), positions restart at each text, and each text is pooled on its own: a bi-encoder's
pooling, Dense layers and normalization, or a cross-encoder's classification head on each pair's first
token. So each text gets the output it gets alone, and no token the graph computes is padding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from transformers import PreTrainedModel

from edgesbert.errors import ExportError
from edgesbert.exporters.context import ExportContext
from edgesbert.exporters.layout import onnx_file
from edgesbert.exporters.onnx_graph import export_onnx
from edgesbert.reference import BiEncoder, CrossEncoder
from edgesbert.reference.bi_encoder import EmbeddingNetwork
from edgesbert.runtime.manifest import GraphVariant, Pooling, Precision
from edgesbert.runtime.packing import PACKABLE, SEGMENT_LOGITS, SEGMENT_OUTPUT, TOKEN_TYPES, pack_features
from edgesbert.runtime.verify import sha256_of

#: what the attention mask adds to scores across texts: exp() of it is 0 in float32, as BERT's -10000 is.
#: float32's lowest, as transformers uses, overflows OpenVINO's int8 attention on CPU (all-MiniLM-L6-v2's
#: packed int8: mean cosine 0.39 to the reference, against 0.99 with this)
MASKED = -10000.0


def check_packable(reference: BiEncoder | CrossEncoder) -> None:
    """Raise ExportError, before any work, unless ``reference`` can be packed."""
    model_type = getattr(reference.transformer_config, "model_type", "unknown")
    if model_type not in PACKABLE:
        raise ExportError(
            f"--packed: {model_type} models cannot be packed yet (packable: {', '.join(PACKABLE)}); "
            "export without --packed"
        )


def pool_segments(
    tokens: torch.Tensor, members: torch.Tensor, segment_ids: torch.Tensor, pooling: Pooling
) -> torch.Tensor:
    """Pool (rows, tokens, hidden) per text: ``members`` (rows, texts, tokens) says which tokens are whose."""
    weights = members.to(tokens.dtype)
    if pooling is Pooling.MAX:
        hidden = torch.where(members[..., None], tokens[:, None], torch.finfo(tokens.dtype).min)
        return hidden.max(dim=2).values
    if pooling in (Pooling.CLS, Pooling.LAST_TOKEN):
        if pooling is Pooling.CLS:  # a text's first token: the one before it belongs to another text
            edge = segment_ids != torch.nn.functional.pad(segment_ids, (1, 0))[:, :-1]
        else:  # its last token: the one after it belongs to another text (or to none)
            edge = segment_ids != torch.nn.functional.pad(segment_ids, (0, 1))[:, 1:]
        return (weights * edge[:, None, :].to(tokens.dtype)) @ tokens
    counts = weights.sum(dim=-1, keepdim=True).clamp(min=1e-9)
    summed = weights @ tokens
    return summed / (counts if pooling is Pooling.MEAN else torch.sqrt(counts))


class PackedRows(nn.Module):
    """A transformer over packed rows: each token attends only within its text, positions restart at each."""

    def __init__(self, transformer: nn.Module, token_types: bool) -> None:
        super().__init__()
        self.transformer = transformer
        self.token_types = token_types  # the transformer takes token_type_ids
        padding = getattr(getattr(transformer, "embeddings", None), "padding_idx", None)
        self.position_offset = 0 if padding is None else padding + 1  # RoBERTa's positions start there
        config: Any = getattr(transformer, "config", None)
        self.model_type = getattr(config, "model_type", "")
        self.window: int = (
            getattr(config, "sliding_window", None) or 0
        )  # ModernBERT's local layers: half theirs

    def forward(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        segment_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The token vectors (rows, tokens, hidden) and which text each token is (rows, texts, tokens)."""
        allowed = (segment_ids[:, :, None] == segment_ids[:, None, :]) & (segment_ids > 0)[:, None, :]
        extra = {}
        if self.token_types:  # one text's are all 0; a pair's come from the tokenizer
            extra[TOKEN_TYPES] = torch.zeros_like(input_ids) if token_type_ids is None else token_type_ids
        positions = position_ids + self.position_offset
        tokens = self.encode(input_ids, positions, allowed, segment_ids > 0, extra)
        last = segment_ids.max() + 1  # a tensor: traced into the graph, so the text count stays dynamic
        texts = torch.arange(1, last, device=segment_ids.device)  # type: ignore[call-overload]
        return tokens, segment_ids[:, None, :] == texts[None, :, None]

    def encode(
        self,
        input_ids: torch.Tensor,
        positions: torch.Tensor,
        allowed: torch.Tensor,
        real: torch.Tensor,
        extra: dict[str, torch.Tensor],
    ) -> torch.Tensor:
        """The token vectors, ``allowed`` (rows, tokens, tokens) given as each architecture takes a mask."""
        model: Any = self.transformer
        if self.model_type == "deberta-v2":  # 0/1 masks: its embeddings take the tokens', its encoder pairs'
            embedded = model.embeddings(
                input_ids=input_ids, position_ids=positions, mask=real.long(), **extra
            )
            return model.encoder(embedded, allowed.long(), output_hidden_states=False)[0]
        if self.model_type == "qwen3":  # a decoder: each token also attends only to those before it
            allowed = allowed & torch.ones_like(allowed[0]).tril()[None]
        mask: Any = _additive(allowed)
        if self.model_type == "modernbert":  # its local layers see tokens within the window only
            places = torch.arange(allowed.shape[-1], device=allowed.device)
            near = (places[:, None] - places[None, :]).abs() <= self.window
            mask = {"full_attention": mask, "sliding_attention": _additive(allowed & near[None])}
        return model(input_ids=input_ids, attention_mask=mask, position_ids=positions, **extra)[0]


def _additive(allowed: torch.Tensor) -> torch.Tensor:
    """(rows, 1, tokens, tokens) float mask: 0 where ``allowed``, MASKED elsewhere."""
    return (~allowed)[:, None].to(torch.float32) * MASKED


class PackedEmbeddings(nn.Module):
    """A bi-encoder network over packed rows: (rows, tokens) in, (rows, texts, dim) out."""

    def __init__(self, network: EmbeddingNetwork, token_types: bool) -> None:
        super().__init__()
        self.network = network
        self.rows = PackedRows(network.transformer, token_types)

    def forward(
        self, input_ids: torch.Tensor, position_ids: torch.Tensor, segment_ids: torch.Tensor
    ) -> torch.Tensor:
        """One embedding per text of each row (a row with fewer texts than the fullest has unused slots)."""
        tokens, members = self.rows(input_ids, position_ids, segment_ids)
        embeddings = self.network.dense(pool_segments(tokens, members, segment_ids, self.network.pool.mode))
        if self.network.normalize:
            embeddings = nn.functional.normalize(embeddings, p=2, dim=-1)
        return embeddings


class PackedScores(nn.Module):
    """A cross-encoder over packed rows of pairs: (rows, tokens) in, (rows, pairs, labels) logits out.

    Its classification head runs on each pair's first token, as the padded model's runs on each row's.
    """

    def __init__(self, classifier: PreTrainedModel, token_types: bool) -> None:
        super().__init__()
        self.classifier = classifier
        self.rows = PackedRows(classifier.base_model, token_types)

    def forward(
        self,
        input_ids: torch.Tensor,
        position_ids: torch.Tensor,
        segment_ids: torch.Tensor,
        token_type_ids: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The logits of each pair of each row."""
        tokens, members = self.rows(input_ids, position_ids, segment_ids, token_type_ids)
        pooled = pool_segments(tokens, members, segment_ids, self.pooling())  # (rows, pairs, hidden)
        logits = self.head(pooled.reshape(-1, 1, pooled.shape[-1]))  # each as a sequence of one token
        return logits.reshape(pooled.shape[0], pooled.shape[1], -1)

    def pooling(self) -> Pooling:
        """Which of a pair's tokens the head reads: its first, its last (decoders) or their mean."""
        config = self.classifier.config
        if config.model_type == "qwen3":
            return Pooling.LAST_TOKEN
        return Pooling.MEAN if getattr(config, "classifier_pooling", "cls") == "mean" else Pooling.CLS

    def head(self, pooled: torch.Tensor) -> torch.Tensor:
        """The model's classification head on (pairs, 1, hidden): what follows its transformer."""
        model: Any = self.classifier  # its head's modules are named per architecture
        model_type = model.config.model_type
        if model_type == "bert":
            return model.classifier(model.bert.pooler(pooled))  # dropout: none in eval
        if model_type == "distilbert":
            return model.classifier(nn.functional.relu(model.pre_classifier(pooled[:, 0])))
        if model_type == "deberta-v2":
            return model.classifier(model.pooler(pooled))
        if model_type == "modernbert":
            return model.classifier(model.head(pooled[:, 0]))
        if model_type == "qwen3":
            return model.score(pooled[:, 0])
        return model.classifier(pooled)  # the RoBERTa family, ELECTRA, MPNet: their heads read token 0


@dataclass(frozen=True)
class PackedGraph:
    """Trace the reference into ``onnx/model_packed.onnx``, run with texts packed into rows."""

    def __call__(self, ctx: ExportContext) -> GraphVariant:
        """Write the packed fp32 graph and describe it."""
        reference = ctx.reference
        check_packable(reference)
        token_types = TOKEN_TYPES in reference.input_names
        network: nn.Module
        if isinstance(reference, BiEncoder):
            if not ctx.pooling_in_graph:
                raise ExportError("a packed graph pools inside the graph; drop --no-pooling-in-graph")
            sample: list = ["A short one.", "Two.", "A somewhat longer sentence, packed beside the others."]
            network, output, pairs = PackedEmbeddings(reference.network, token_types), SEGMENT_OUTPUT, False
        else:
            sample = [("A query?", "Short."), ("Who?", "Me."), ("A longer query here?", "A longer answer.")]
            network, output = PackedScores(reference.network.classifier, token_types), SEGMENT_LOGITS
            pairs = token_types  # a pair's token types reach the graph
        features = {name: values.numpy() for name, values in reference.tokenize(sample).items()}
        batch = pack_features(features, 0, pairs, row_length=16)  # 1 and 2 texts per row
        inputs = {name: torch.from_numpy(values) for name, values in batch.inputs.items()}
        file = onnx_file("model_packed")
        path = ctx.path(file)
        names = export_onnx(network, inputs, (output,), path)
        ctx.traced()
        return GraphVariant(
            name="packed",
            file=file,
            backend="onnxruntime",
            precision=Precision.FP32,
            inputs=names,
            outputs=(output,),
            sha256=sha256_of(path),
            row_length=reference.max_seq_length,  # its longest row (the runtime fills Backend.row_tokens)
            recipe={"packed": True},
        )
