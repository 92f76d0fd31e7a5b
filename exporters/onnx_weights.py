"""Write a traced graph's weights into its ONNX file straight from the torch tensors.

torch's TorchScript exporter encodes the whole model with a copy of every weight, serializes that into a
second copy and hands Python a third: three times the weights on top of the model's own (all-mpnet-base-v2,
438 MB: 2.4 GB peak). Here the encoder gets empty placeholders for the weights instead, so the file torch
writes is only the graph, and ``write_weights`` then rewrites it with each weight's bytes taken from its
tensor: the same file, byte for byte, at 1.4 GB peak. Models whose weights pass protobuf's 2 GB limit are
left to torch, which writes their weights as external data files (``onnx_files.gather_weights`` then makes
them one).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import onnx
import torch

from edgesbert.exporters.onnx_files import PROTOBUF_LIMIT  # above it torch writes the weights apart itself

#: field numbers (onnx.proto) of ModelProto.graph, GraphProto.initializer and TensorProto.raw_data
_GRAPH, _INITIALIZER, _RAW_DATA = 7, 5, 9
_encoding = threading.Lock()


@contextmanager
def weights_apart() -> Iterator[dict[str, torch.Tensor]]:
    """While the block runs ``torch.onnx.export`` (TorchScript), weights are collected, not encoded.

    Yields the dict that receives them, by initializer name; it stays empty when torch wrote them itself
    (over ``PROTOBUF_LIMIT``). Hooks the one call that sees them, ``torch._C.Graph._export_onnx``.
    """
    weights: dict[str, torch.Tensor] = {}
    encode = getattr(torch._C.Graph, "_export_onnx", None)
    if encode is None:  # a torch without that call: it writes the weights itself
        yield weights
        return

    def encode_without_weights(graph: Any, initializers: Any, *args: Any) -> Any:
        if (
            not isinstance(initializers, dict)
            or sum(t.numel() * t.element_size() for t in initializers.values()) > PROTOBUF_LIMIT
        ):
            return encode(graph, initializers, *args)
        weights.update(initializers)
        return encode(graph, {name: torch.empty(0, dtype=t.dtype) for name, t in initializers.items()}, *args)

    with _encoding:  # the hook is process-wide: one export at a time
        setattr(torch._C.Graph, "_export_onnx", encode_without_weights)  # noqa: B010
        try:
            yield weights
        finally:
            setattr(torch._C.Graph, "_export_onnx", encode)  # noqa: B010


def write_weights(path: Path, weights: Mapping[str, torch.Tensor]) -> None:
    """Rewrite ``path``, whose initializers are empty placeholders, with the bytes of ``weights``.

    Protobuf writes a message's fields in the order of their numbers, so the file is the model's fields
    before the graph, the graph's before its initializers, each initializer (its fields, then its raw data),
    and what follows: written piece by piece, never holding more than one weight's encoding.
    """
    model = onnx.load(str(path), load_external_data=False)
    tensors = list(model.graph.initializer)
    model.graph.ClearField("initializer")
    before, after = _split(model, _GRAPH)
    graph_before, graph_after = _split(model.graph, _INITIALIZER)
    graph = graph_before + graph_after
    if before + _key(_GRAPH) + _varint(len(graph)) + graph + after != model.SerializeToString() or any(
        field.number > _RAW_DATA for tensor in tensors for field, _ in tensor.ListFields()
    ):
        raise ValueError(f"{path}: protobuf did not write the fields in order; cannot add the weights")
    written = [(_without_data(tensor, weights[tensor.name]), weights[tensor.name]) for tensor in tensors]
    graph_size = len(graph) + sum(_field_size(len(head) + _size(weight)) for head, weight in written)
    with open(path, "wb") as f:
        f.write(before + _key(_GRAPH) + _varint(graph_size) + graph_before)
        for head, weight in written:
            f.write(_key(_INITIALIZER) + _varint(len(head) + _size(weight)) + head)
            f.write(weight.detach().contiguous().reshape(-1).view(torch.uint8).numpy().data)
        f.write(graph_after + after)


def _split(message: Any, number: int) -> tuple[bytes, bytes]:
    """The encoding of ``message``'s fields numbered below ``number``, and of those above it."""
    below, above = type(message)(), type(message)()
    below.CopyFrom(message)
    above.CopyFrom(message)
    for field, _ in message.ListFields():
        if field.number <= number:
            above.ClearField(field.name)
        if field.number >= number:
            below.ClearField(field.name)
    return below.SerializeToString(), above.SerializeToString()


def _without_data(tensor: onnx.TensorProto, weight: torch.Tensor) -> bytes:
    """``tensor``'s fields, with the weight's shape, then its raw data's key and length, encoded."""
    del tensor.dims[:]
    tensor.dims.extend(weight.shape)
    tensor.ClearField("raw_data")
    return tensor.SerializeToString() + _key(_RAW_DATA) + _varint(_size(weight))


def _size(weight: torch.Tensor) -> int:
    return weight.numel() * weight.element_size()


def _field_size(length: int) -> int:
    """Bytes of an initializer field whose message is ``length`` bytes long."""
    return len(_key(_INITIALIZER)) + len(_varint(length)) + length


def _key(number: int) -> bytes:
    return _varint(number << 3 | 2)  # wire type 2: length-delimited


def _varint(value: int) -> bytes:
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)
