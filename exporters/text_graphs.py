"""Step: string-in twins of the folder's graphs (``--with-tokenizer``), the tokenizer merged in front.

An ONNX graph gets the tokenizer graph of ``onnx_tokenizer`` (onnxruntime-extensions ops), an OpenVINO IR the
tokenizer openvino-tokenizers converts. A twin takes ``text`` (and ``text_pair`` for a cross-encoder) and
outputs the sentence embedding or the logits, so an app in any language goes from text to vector with the
inference runtime and the folder alone. Each twin is a file of its own beside its source graph.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from edgesbert.errors import ExportError, require
from edgesbert.exporters.context import ExportContext
from edgesbert.exporters.layout import LOGITS_OUTPUT, TOKEN_OUTPUT
from edgesbert.exporters.onnx_graph import export_onnx
from edgesbert.reference import BiEncoder
from edgesbert.reference.bi_encoder import EmbeddingNetwork
from edgesbert.runtime.manifest import SENTENCE_OUTPUT, TEXT_INPUTS, GraphVariant
from edgesbert.runtime.verify import sha256_of

SUFFIX = "_with_tokenizer"


def twin_file(file: str) -> str:
    """``onnx/model_quantized.onnx`` -> ``onnx/model_quantized_with_tokenizer.onnx`` (``.xml`` alike)."""
    path = Path(file)
    return path.with_name(path.stem + SUFFIX + path.suffix).as_posix()


@dataclass(frozen=True)
class WithTokenizer:
    """The string-in twin of the variant the ``source``-th step wrote."""

    source: int

    def __call__(self, ctx: ExportContext) -> GraphVariant:
        """Merge the tokenizer in front of the source graph, save and describe the twin."""
        source = ctx.step_variant(self.source)
        pairs = not isinstance(ctx.reference, BiEncoder)
        output = LOGITS_OUTPUT if pairs else SENTENCE_OUTPUT
        file = twin_file(source.file)
        if source.backend == "onnxruntime":
            _onnx_twin(ctx, source, file, output, pairs)
            tool = "onnxruntime-extensions"
        else:
            _openvino_twin(ctx, source, file, output, pairs)
            tool = "openvino-tokenizers"
        return replace(
            source,
            name=f"{source.name}-with-tokenizer",
            file=file,
            inputs=TEXT_INPUTS[: 1 + pairs],
            outputs=(output,),
            sha256=sha256_of(ctx.folder / file),
            validation={},
            recipe={**source.recipe, "tokenizer_in_graph": tool},
        )


def _onnx_twin(ctx: ExportContext, source: GraphVariant, file: str, output: str, pairs: bool) -> None:
    import onnx
    from onnx import compose

    from edgesbert.exporters.onnx_files import save_onnx
    from edgesbert.exporters.onnx_tokenizer import tokenizer_graph

    if output not in source.outputs:
        raise ExportError("--with-tokenizer needs pooling inside the graph; drop --no-pooling-in-graph")
    model = onnx.load(str(ctx.folder / source.file))
    tokenizer = tokenizer_graph(ctx.tokenizer_path(), ctx.reference.max_seq_length, pairs)
    # the merge wants one opset per domain and one IR version: the model's
    default = next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))
    for opset in tokenizer.opset_import:
        if opset.domain == "":
            opset.version = default
    tokenizer.ir_version = model.ir_version
    tokenizer = compose.add_prefix(tokenizer, "tokenizer/", rename_inputs=False)  # its outputs are the
    inputs = [i.name for i in model.graph.input]  # model's input names, which its graph may also declare
    io_map = [(f"tokenizer/{name}", name) for name in inputs]
    merged = compose.merge_models(tokenizer, model, io_map=io_map, outputs=[output])
    save_onnx(merged, ctx.path(file))


def _openvino_twin(ctx: ExportContext, source: GraphVariant, file: str, output: str, pairs: bool) -> None:
    require("openvino_tokenizers", "openvino")
    import openvino as ov
    from openvino_tokenizers import convert_tokenizer

    core = ov.Core()
    tokenizer = convert_tokenizer(
        ctx.reference.tokenizer,
        with_detokenizer=False,
        truncation=True,
        max_length=ctx.reference.max_seq_length,
        number_of_inputs=1 + pairs,
    )
    model = core.read_model(str(ctx.folder / source.file))
    features = {port.get_any_name(): _produced(port) for port in tokenizer.outputs}
    for parameter in model.get_parameters():
        _feed(parameter, features[parameter.output(0).get_any_name()])
    if output in source.outputs:
        result = _produced(model.output(output))
    else:  # token embeddings only (GenAI's layout): pool and normalize as the reference does
        assert isinstance(ctx.reference, BiEncoder)
        pooling = _pooling_graph(core, ctx, ctx.reference.network)
        parameters = {p.output(0).get_any_name(): p for p in pooling.get_parameters()}
        _feed(parameters[TOKEN_OUTPUT], _produced(model.output(TOKEN_OUTPUT)))
        _feed(parameters["attention_mask"], features["attention_mask"])
        result = _produced(pooling.output(SENTENCE_OUTPUT))
    for port, name in zip(tokenizer.inputs, TEXT_INPUTS, strict=False):
        port.get_tensor().set_names({name})
    # the tokenizer keeps runtime options (max length, ...) in variables: keep its sinks and variables
    merged = ov.Model(
        results=[result],
        sinks=tokenizer.get_sinks(),
        parameters=tokenizer.get_parameters(),
        variables=tokenizer.get_variables(),
        name="text",
    )
    merged.outputs[0].get_tensor().set_names({output})
    ov.save_model(merged, str(ctx.path(file)), compress_to_fp16=False)


def _produced(port: Any) -> Any:
    """What a graph output port holds: the output of the node feeding its Result (a Result feeds nothing)."""
    node = port.get_node()
    return node.input_value(0) if node.get_type_name() == "Result" else port


def _feed(parameter: object, value: object) -> None:
    """Replace the graph input ``parameter`` by ``value`` (an output of another graph) wherever it is read."""
    for target in parameter.output(0).get_target_inputs():  # type: ignore[attr-defined]
        target.replace_source_output(value)


class _Pooling(nn.Module):
    """The reference's pooling, dense layers and normalization alone: token embeddings in."""

    def __init__(self, network: EmbeddingNetwork) -> None:
        super().__init__()
        self.network = network

    def forward(self, tokens: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(batch, seq, hidden) and (batch, seq) -> (batch, dim)."""
        return self.network.pooled(tokens, attention_mask)


def _pooling_graph(core: Any, ctx: ExportContext, network: EmbeddingNetwork) -> Any:
    """The reference's pooling as an OpenVINO model (traced to ONNX in the staging folder, read, removed)."""
    hidden = network.transformer.config.hidden_size
    mask = torch.tensor([[1] * 5, [1, 1, 0, 0, 0]])
    path = ctx.folder / "pooling.onnx"
    try:
        export_onnx(
            _Pooling(network),
            {TOKEN_OUTPUT: torch.randn(2, 5, hidden), "attention_mask": mask},
            (SENTENCE_OUTPUT,),
            path,
        )
        return core.read_model(str(path))
    finally:
        path.unlink(missing_ok=True)
