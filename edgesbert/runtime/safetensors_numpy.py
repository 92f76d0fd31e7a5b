"""Read and write safetensors files with numpy alone (the runtime needs no `safetensors` package).

The format: an 8-byte little-endian header length, a JSON header that maps each tensor's name to its dtype,
shape and byte range, then the tensors' bytes. Reading maps the file into memory, so a large table costs
resident memory only for the rows a process touches.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from edgesbert.errors import ModelLoadError

#: safetensors' dtype names and numpy's (bf16 has no numpy dtype; no file edgesbert writes holds it)
DTYPES: dict[str, np.dtype] = {
    "F64": np.dtype("<f8"),
    "F32": np.dtype("<f4"),
    "F16": np.dtype("<f2"),
    "I64": np.dtype("<i8"),
    "I32": np.dtype("<i4"),
    "I16": np.dtype("<i2"),
    "I8": np.dtype("i1"),
    "U8": np.dtype("u1"),
}
_NAMES = {dtype: name for name, dtype in DTYPES.items()}
_LARGEST_HEADER = 100_000_000


def read_header(path: Path) -> tuple[dict[str, Any], int]:
    """The JSON header of ``path`` (tensor name -> dtype, shape, data_offsets) and its length in bytes.

    Raises ModelLoadError for a file that is not safetensors.
    """
    try:
        with path.open("rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            if length > _LARGEST_HEADER:
                raise ValueError(f"a header of {length} bytes")
            header = json.loads(f.read(length))
    except (OSError, ValueError, struct.error) as e:  # JSONDecodeError is a ValueError
        raise ModelLoadError(f"{path} is not a readable safetensors file ({e}); re-export the model") from e
    return {k: v for k, v in header.items() if k != "__metadata__"}, length


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The tensors of ``path`` as read-only numpy arrays mapped from the file.

    Raises ModelLoadError for a file that is not safetensors or holds a dtype numpy cannot represent.
    """
    header, length = read_header(path)
    try:
        data = (
            np.memmap(path, dtype=np.uint8, mode="r", offset=8 + length)
            if path.stat().st_size > 8 + length
            else None
        )
    except (OSError, ValueError, struct.error) as e:  # JSONDecodeError is a ValueError
        raise ModelLoadError(f"{path} is not a readable safetensors file ({e}); re-export the model") from e
    tensors = {}
    for name, info in header.items():
        dtype = DTYPES.get(info.get("dtype"))
        if dtype is None:
            raise ModelLoadError(
                f"{path}: tensor {name!r} has dtype {info.get('dtype')!r}, which numpy cannot read"
            )
        begin, end = info["data_offsets"]
        shape = tuple(info["shape"])
        if data is None or end - begin != dtype.itemsize * int(np.prod(shape)) or end > len(data):
            raise ModelLoadError(f"{path}: tensor {name!r} does not fit the file; re-export the model")
        tensors[name] = data[begin:end].view(dtype).reshape(shape)
    return tensors


def write_safetensors(
    path: Path, tensors: Mapping[str, np.ndarray], metadata: Mapping[str, str] | None = None
) -> None:
    """Write ``tensors`` to ``path``, byte for byte the same for the same input.

    Tensors go in order of descending item size, then name, so every tensor starts aligned to its item size.
    """
    order = sorted(tensors, key=lambda name: (-tensors[name].dtype.itemsize, name))
    header: dict[str, object] = {"__metadata__": dict(metadata)} if metadata else {}
    offset = 0
    arrays = []
    for name in order:
        array = np.ascontiguousarray(tensors[name])
        dtype = array.dtype.newbyteorder("<") if array.dtype.itemsize > 1 else array.dtype
        if dtype not in _NAMES:
            raise ValueError(f"tensor {name!r}: safetensors has no dtype for {array.dtype}")
        array = array.astype(dtype, copy=False)
        header[name] = {
            "dtype": _NAMES[dtype],
            "shape": list(array.shape),
            "data_offsets": [offset, offset + array.nbytes],
        }
        offset += array.nbytes
        arrays.append(array)
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # the tensors start 8-byte aligned
    with path.open("wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for array in arrays:
            f.write(array.tobytes())
