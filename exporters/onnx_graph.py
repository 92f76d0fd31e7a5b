"""Step: trace a reference network into an fp32 ONNX graph with dynamic batch and sequence axes."""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from edgesbert.exporters.context import ExportContext
from edgesbert.reference import BiEncoder
from edgesbert.runtime.manifest import GraphVariant, Precision
from edgesbert.runtime.verify import sha256_of

#: Dynamic axes of each graph output, declared once.
OUTPUT_AXES: dict[str, dict[int, str]] = {
    "sentence_embedding": {0: "batch"},
    "token_embeddings": {0: "batch", 1: "sequence"},
    "logits": {0: "batch"},
}
OPSET = 17


class TokenEmbeddings(nn.Module):
    """Expose a bi-encoder network's token embeddings, for graphs that leave pooling to the runtime."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Return (batch, seq, hidden) token embeddings."""
        return self.network.token_embeddings(*inputs)  # type: ignore[operator]


def export_onnx(network: nn.Module, features: dict[str, torch.Tensor], output_name: str, path: Path) -> None:
    """Trace ``network`` on ``features`` (a padded batch, inputs in forward order) into ``path``.

    Uses torch's TorchScript-based exporter: it is fast, and its graphs are the ones onnxruntime's
    transformer optimizer knows how to fuse.
    """
    input_names = list(features)
    axes = {name: {0: "batch", 1: "sequence"} for name in input_names}
    axes[output_name] = OUTPUT_AXES[output_name]
    network = network.eval()
    with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer and deprecation chatter; validation checks the result
        torch.onnx.export(
            network,
            tuple(features.values()),
            str(path),
            input_names=input_names,
            output_names=[output_name],
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


def graph_inputs(path: Path) -> tuple[str, ...]:
    """The inputs the graph at ``path`` declares.

    The tracer drops an input the network never reads (DeBERTa-v3 takes ``token_type_ids`` but, with no
    token type embeddings, ignores them), so the graph's inputs can be fewer than the features traced.
    """
    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {tensor.name for tensor in graph.initializer}
    return tuple(value.name for value in graph.input if value.name not in initializers)


def onnx_fp32(ctx: ExportContext) -> GraphVariant:
    """Trace the reference into ``model.onnx``: pooling and normalization inside for bi-encoders."""
    reference = ctx.reference
    if isinstance(reference, BiEncoder):
        sample: list = ["A short one.", "A somewhat longer sentence, so that the batch has padding."]
        network = reference.network if ctx.pooling_in_graph else TokenEmbeddings(reference.network)
        output = "sentence_embedding" if ctx.pooling_in_graph else "token_embeddings"
    else:
        sample = [("A query.", "A short answer."), ("A longer query here?", "An answer with more words.")]
        network, output = reference.network, "logits"
    features = reference.tokenize(sample)
    path = ctx.folder / "model.onnx"
    export_onnx(network, features, output, path)
    return GraphVariant(
        name="fp32",
        file=path.name,
        backend="onnxruntime",
        precision=Precision.FP32,
        inputs=graph_inputs(path),
        outputs=(output,),
        sha256=sha256_of(path),
    )
