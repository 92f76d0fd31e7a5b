"""Step: trace a reference network into an fp32 ONNX graph with dynamic batch and sequence axes."""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from edgesbert.exporters import onnx_files
from edgesbert.exporters.context import ExportContext
from edgesbert.exporters.layout import LOGITS_OUTPUT, TOKEN_OUTPUT, onnx_file
from edgesbert.exporters.onnx_weights import weights_apart, write_weights
from edgesbert.reference import BiEncoder
from edgesbert.reference.bi_encoder import EmbeddingNetwork
from edgesbert.runtime.manifest import SENTENCE_OUTPUT, GraphVariant, Precision
from edgesbert.runtime.packing import SEGMENT_LOGITS, SEGMENT_OUTPUT
from edgesbert.runtime.verify import sha256_of

#: Dynamic axes of each graph output, declared once.
OUTPUT_AXES: dict[str, dict[int, str]] = {
    SENTENCE_OUTPUT: {0: "batch"},
    TOKEN_OUTPUT: {0: "batch", 1: "sequence"},
    LOGITS_OUTPUT: {0: "batch"},
    SEGMENT_OUTPUT: {0: "batch", 1: "texts"},
    SEGMENT_LOGITS: {0: "batch", 1: "texts"},
}
OPSET = 17


class TokenEmbeddings(nn.Module):
    """A bi-encoder network's token embeddings, then (``pooled``) its sentence embedding.

    Token embeddings are what the other runtimes read; the pooled embedding is what TEI and edgesbert read.
    """

    def __init__(self, network: EmbeddingNetwork, pooled: bool) -> None:
        super().__init__()
        self.network = network
        self.with_pooled = pooled

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Return (batch, seq, hidden) token embeddings, and (batch, dim) sentence embeddings."""
        tokens = self.network.token_embeddings(*inputs)
        return (tokens, self.network.pooled(tokens, inputs[1])) if self.with_pooled else (tokens,)


def export_onnx(
    network: nn.Module, features: dict[str, torch.Tensor], outputs: tuple[str, ...], path: Path
) -> tuple[str, ...]:
    """Trace ``network`` on ``features`` (a padded batch, inputs in forward order) into ``path``.

    Returns the inputs the graph declares (see ``graph_inputs``).

    Uses torch's TorchScript-based exporter: it is fast, and its graphs are the ones onnxruntime's
    transformer optimizer knows how to fuse. The weights go into the file from their tensors afterwards
    (``onnx_weights``), not through torch's three copies of them.
    """
    input_names = list(features)
    axes = {name: {0: "batch", 1: "sequence"} for name in input_names}
    axes |= {name: OUTPUT_AXES[name] for name in outputs}
    network = network.eval()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad(), weights_apart() as weights:
        warnings.simplefilter("ignore")  # tracer and deprecation chatter; validation checks the result
        torch.onnx.export(
            network,
            tuple(features.values()),
            str(path),
            input_names=input_names,
            output_names=list(outputs),
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )
    inputs = graph_inputs(path)  # read while the file holds no weights
    if weights:
        write_weights(path, weights)
        weights.clear()
    else:  # over the limit torch wrote them, a file each: into one beside the graph
        onnx_files.gather_weights(path)
    return inputs


def graph_inputs(path: Path) -> tuple[str, ...]:
    """The inputs the graph at ``path`` declares.

    The tracer drops an input the network never reads (DeBERTa-v3 takes ``token_type_ids`` but, with no
    token type embeddings, ignores them), so the graph's inputs can be fewer than the features traced.
    """
    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {tensor.name for tensor in graph.initializer}
    return tuple(value.name for value in graph.input if value.name not in initializers)


def onnx_fp32(ctx: ExportContext) -> GraphVariant:
    """Trace the reference into ``onnx/model.onnx``.

    Bi-encoders: token embeddings, then (pooling in the graph) the pooled, normalized sentence embedding;
    cross-encoders: logits.
    """
    reference = ctx.reference
    network: nn.Module
    if isinstance(reference, BiEncoder):
        sample: list = ["A short one.", "A somewhat longer sentence, so that the batch has padding."]
        network = TokenEmbeddings(reference.network, pooled=ctx.pooling_in_graph)
        outputs = (TOKEN_OUTPUT, SENTENCE_OUTPUT) if ctx.pooling_in_graph else (TOKEN_OUTPUT,)
    else:
        sample = [("A query.", "A short answer."), ("A longer query here?", "An answer with more words.")]
        network, outputs = reference.network, (LOGITS_OUTPUT,)
    features = reference.tokenize(sample)
    file = onnx_file("model")
    path = ctx.path(file)
    inputs = export_onnx(network, features, outputs, path)
    ctx.traced()
    return GraphVariant(
        name="fp32",
        file=file,
        backend="onnxruntime",
        precision=Precision.FP32,
        inputs=inputs,
        outputs=outputs,
        sha256=sha256_of(path),
    )
