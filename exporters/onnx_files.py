"""Saving ONNX graphs over protobuf's 2 GB limit: their weights in one file beside the graph.

A graph file is one protobuf message, which cannot pass 2 GB. Every step saves through ``save_onnx``: a
graph whose weights fit stays one file, as the other runtimes expect; a larger one keeps its weights in
``<graph>_data`` beside it (``onnx/model.onnx_data``: the name optimum, sentence-transformers and
transformers.js look for), which onnxruntime reads from the graph's folder. torch writes a large model's
weights as one file per tensor; ``gather_weights`` moves them into that one file.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx.external_data_helper import ExternalDataInfo, uses_external_data

from edgesbert.exporters.memory import release_memory
from edgesbert.runtime.verify import weights_file

#: protobuf's limit on one message: a graph this heavy keeps its weights apart
PROTOBUF_LIMIT = 2**31 - 1
#: room for the graph's nodes and names beside its weights
_GRAPH_ROOM = 64 << 20


def weights_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the model's initializers, held in the message or in files."""
    total = 0
    for tensor in model.graph.initializer:
        if uses_external_data(tensor):
            total += int(ExternalDataInfo(tensor).length or 0)
        else:
            total += len(tensor.raw_data) or tensor.ByteSize()
    return total


def save_onnx(model: onnx.ModelProto, path: Path) -> None:
    """Write ``model`` at ``path``: one file, or the graph and ``<name>_data`` when it would pass 2 GB.

    Declares the operator domains its nodes use (onnxruntime's fused operators: ``com.microsoft``).

    Saving apart moves each weight out of ``model`` (the caller's copy is left without them).
    """
    declared = {opset.domain for opset in model.opset_import}
    for domain in sorted({node.domain for node in model.graph.node} - declared - {"", "ai.onnx"}):
        model.opset_import.append(onnx.helper.make_opsetid(domain, 1))  # as onnxruntime's optimizer does
    data = path.with_name(weights_file(path.name))
    data.unlink(missing_ok=True)  # the writer appends to an existing data file
    if weights_bytes(model) + _GRAPH_ROOM < PROTOBUF_LIMIT:
        onnx.save_model(model, str(path))
        return
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=data.name,
        size_threshold=1024,
    )
    data.chmod(path.stat().st_mode & 0o777)  # onnx writes it private; readable as the graph is


def external_files(path: Path) -> set[Path]:
    """The files the graph at ``path`` reads its weights from."""
    model = onnx.load(str(path), load_external_data=False)
    tensors = [t for t in model.graph.initializer if uses_external_data(t)]
    return {path.parent / ExternalDataInfo(t).location for t in tensors}


def gather_weights(path: Path) -> None:
    """The graph at ``path`` as ``save_onnx`` writes it: torch wrote a large model's weights a file each."""
    scattered = external_files(path)
    if scattered == {path.with_name(weights_file(path.name))} or (
        not scattered and path.stat().st_size < PROTOBUF_LIMIT
    ):
        return
    model = onnx.load(str(path))  # every weight read back into the message
    for file in scattered:
        file.unlink()
    save_onnx(model, path)
    del model
    release_memory()
