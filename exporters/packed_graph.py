"""Step: a bi-encoder traced as a packed graph, several texts per row (the runtime side: runtime/packing.py).

Within a row, tokens attend only to their own text (a block-diagonal mask, built in the graph from
``segment_ids``), positions restart at each text, and each text is pooled on its own; the Dense layers and
normalization follow, as in the padded graph. So each text gets the vector it gets alone, and no token the
graph computes is padding.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from edgesbert.errors import ExportError
from edgesbert.exporters.context import ExportContext
from edgesbert.exporters.layout import onnx_file
from edgesbert.exporters.onnx_graph import export_onnx
from edgesbert.reference import BiEncoder, CrossEncoder
from edgesbert.reference.bi_encoder import EmbeddingNetwork
from edgesbert.runtime.manifest import GraphVariant, Pooling, Precision
from edgesbert.runtime.packing import SEGMENT_OUTPUT, pack, unpadded
from edgesbert.runtime.verify import sha256_of

#: tokens per row the runtime packs texts into (a longer text gets a row of its own length)
ROW_LENGTH = 128
#: transformers whose attention takes a per-row block mask and whose positions come from position_ids,
#: checked equal to the padded graph (tests/test_packing.py). DeBERTa-v2 builds its relative-position mask
#: from a 2-D one, ModernBERT its local-attention window; decoders (Qwen3) need a causal block mask.
PACKABLE = ("bert", "distilbert", "roberta", "xlm-roberta", "camembert", "mpnet", "electra")


def check_packable(reference: BiEncoder | CrossEncoder) -> None:
    """Raise ExportError, before any work, unless ``reference`` can be packed."""
    if not isinstance(reference, BiEncoder):
        raise ExportError("--packed is for bi-encoders for now; export a cross-encoder without it")
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


class PackedEmbeddings(nn.Module):
    """A bi-encoder network over packed rows: (rows, tokens) in, (rows, texts, dim) out."""

    def __init__(self, network: EmbeddingNetwork, token_types: bool) -> None:
        super().__init__()
        self.network = network
        self.token_types = token_types  # the transformer takes token_type_ids (all 0 for one text)
        padding = getattr(getattr(network.transformer, "embeddings", None), "padding_idx", None)
        self.position_offset = 0 if padding is None else padding + 1  # RoBERTa's positions start there

    def forward(
        self, input_ids: torch.Tensor, position_ids: torch.Tensor, segment_ids: torch.Tensor
    ) -> torch.Tensor:
        """One embedding per text of each row (a row with fewer texts than the fullest has unused slots)."""
        allowed = (segment_ids[:, :, None] == segment_ids[:, None, :]) & (segment_ids > 0)[:, None, :]
        mask = (~allowed)[:, None].to(torch.float32) * torch.finfo(torch.float32).min
        extra = {"token_type_ids": torch.zeros_like(input_ids)} if self.token_types else {}
        positions = position_ids + self.position_offset
        tokens = self.network.transformer(
            input_ids=input_ids, attention_mask=mask, position_ids=positions, **extra
        )[0]
        last = segment_ids.max() + 1  # a tensor: traced into the graph, so the text count stays dynamic
        texts = torch.arange(1, last, device=segment_ids.device)  # type: ignore[call-overload]
        members = segment_ids[:, None, :] == texts[None, :, None]
        embeddings = self.network.dense(pool_segments(tokens, members, segment_ids, self.network.pool.mode))
        if self.network.normalize:
            embeddings = nn.functional.normalize(embeddings, p=2, dim=-1)
        return embeddings


@dataclass(frozen=True)
class PackedGraph:
    """Trace the reference into ``onnx/model_packed.onnx``, run with texts packed into rows."""

    row_length: int = ROW_LENGTH

    def __call__(self, ctx: ExportContext) -> GraphVariant:
        """Write the packed fp32 graph and describe it."""
        reference = ctx.reference
        check_packable(reference)
        assert isinstance(reference, BiEncoder)  # checked: narrows the type
        if not ctx.pooling_in_graph:
            raise ExportError("a packed graph pools inside the graph; drop --no-pooling-in-graph")
        sample = ["A short one.", "Two.", "A somewhat longer sentence, packed beside the others."]
        features = {name: values.numpy() for name, values in reference.tokenize(sample).items()}
        batch = pack(unpadded(features), row_length=16, pad_token_id=0)  # rows of one and of two texts
        inputs = {name: torch.from_numpy(values) for name, values in batch.inputs.items()}
        network = PackedEmbeddings(reference.network, "token_type_ids" in reference.input_names)
        file = onnx_file("model_packed")
        path = ctx.path(file)
        names = export_onnx(network, inputs, (SEGMENT_OUTPUT,), path)
        ctx.traced()
        return GraphVariant(
            name="packed",
            file=file,
            backend="onnxruntime",
            precision=Precision.FP32,
            inputs=names,
            outputs=(SEGMENT_OUTPUT,),
            sha256=sha256_of(path),
            row_length=self.row_length,
            recipe={"packed": True, "row_length": self.row_length},
        )
