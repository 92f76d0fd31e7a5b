"""Check a model folder's files against the checksums its manifest recorded at export time.

A graph or tokenizer file damaged after export (a bad copy, a partial download, a disk error) can load
without a word and give wrong numbers, so the runtime checks the files it is about to use before it
loads them (``check_files``). Hashing reads each file once, which also warms the page cache for the load
that follows. ``edgesbert verify`` checks every file the export recorded (``check_folder``): the
sentence-transformers configs and vocabularies beside the graphs too, which other runtimes read.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

from edgesbert.runtime.manifest import GraphVariant, Manifest


class FileState(str, Enum):
    """What a check found for one file."""

    OK = "ok"
    MISSING = "missing"
    DAMAGED = "damaged"  # its checksum differs from the manifest's
    UNCHECKED = "unchecked"  # the manifest records no checksum for it


@dataclass(frozen=True)
class FileCheck:
    """One file of the folder and what its check found."""

    file: str
    state: FileState

    @property
    def failed(self) -> bool:
        """Missing or damaged."""
        return self.state in (FileState.MISSING, FileState.DAMAGED)


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def weights_file(graph: str) -> str:
    """Where an ONNX graph over 2 GB keeps its weights: ``model.onnx`` -> ``model.onnx_data``."""
    return graph + "_data"


def files_of(manifest: Manifest, variant: GraphVariant) -> list[str]:
    """The files ``variant`` needs: its graph (and its weights file, if apart) and the tokenizer."""
    files = [variant.file]
    if variant.file.endswith(".xml"):
        files.append(variant.file.removesuffix(".xml") + ".bin")
    elif weights_file(variant.file) in manifest.provenance.checksums:
        files.append(weights_file(variant.file))
    return [*files, manifest.tokenizer.file]


def recorded_checksums(manifest: Manifest) -> dict[str, str]:
    """Every file the manifest records a SHA-256 for: each variant's graph and the export's checksums."""
    return {v.file: v.sha256 for v in manifest.variants} | dict(manifest.provenance.checksums)


def check_files(
    folder: Path, manifest: Manifest, variants: Sequence[GraphVariant] | None = None
) -> list[FileCheck]:
    """Check the files of ``variants`` (default: every variant) against the manifest's checksums."""
    wanted = dict.fromkeys(f for v in (variants or manifest.variants) for f in files_of(manifest, v))
    return _check(folder, wanted, recorded_checksums(manifest))


def check_folder(folder: Path, manifest: Manifest) -> list[FileCheck]:
    """Check every file the manifest records, and every variant's files; the variants' files first.

    Files in the folder that the export did not write (``edgesbert tune``'s choice, caches) are not
    checked: they are no part of the model.
    """
    recorded = recorded_checksums(manifest)
    wanted = dict.fromkeys(f for v in manifest.variants for f in files_of(manifest, v))
    return _check(folder, wanted | dict.fromkeys(sorted(recorded)), recorded)


def _check(folder: Path, files: Iterable[str], recorded: Mapping[str, str]) -> list[FileCheck]:
    checks = []
    for file in files:
        path = folder / file
        if not path.is_file():
            state = FileState.MISSING
        elif file not in recorded:
            state = FileState.UNCHECKED
        else:
            state = FileState.OK if sha256_of(path) == recorded[file] else FileState.DAMAGED
        checks.append(FileCheck(file, state))
    return checks


def problems_message(folder: Path, manifest: Manifest, failed: list[FileCheck]) -> str:
    """One message that lists every missing or damaged file and says what to do."""
    listed = "; ".join(f"{c.file} is {c.state.value}" for c in failed)
    return (
        f"{folder}: {listed} (checked against the checksums in its manifest). The folder was changed or "
        f"damaged after export: copy it again or re-export it ({export_command(manifest, folder)})"
    )


#: a variant's recipe "quantize" -> the ``--quantize`` value that makes it, per backend
_QUANTIZE_OPTION = {
    "onnxruntime": {
        "int8-dynamic": "int8",
        "int8-static": "int8-static",
        "int4-weights": "int4-weights",
        "fp16": "fp16",
    },
    "openvino": {
        "int8-static": "int8",
        "int8-weights": "int8-weights",
        "int4-weights": "int4-weights",
        "fp16": "fp16",
    },
}


def export_command(manifest: Manifest, folder: Path) -> str:
    """The `edgesbert export` command that writes `folder`'s variants again (calibration options aside)."""
    variants = manifest.variants
    backend = "openvino" if any(v.backend == "openvino" for v in variants) else "onnxruntime"
    quantize = [_QUANTIZE_OPTION[backend].get(str(v.recipe.get("quantize")), "") for v in variants]
    quantize += ["bf16"] if any(v.name.endswith("-bf16") for v in variants) else []
    optimize = {str(v.recipe["optimize"]) for v in variants if "optimize" in v.recipe}
    shapes = {shape for v in variants for shape in v.static_shapes}
    words = ["edgesbert export", manifest.provenance.source_model, "--output", str(folder)]
    words += ["--backend openvino"] if backend == "openvino" else []
    words += [f"--optimize {min(optimize)}"] if optimize else []
    words += [f"--quantize {q}" for q in dict.fromkeys(quantize) if q]
    int4 = next((v.recipe for v in variants if v.recipe.get("quantize") == "int4-weights"), None)
    if int4 is not None:
        words += [f"--int4-group-size {int4.get('group_size', 128)}"]
        words += ["--int4-symmetric"] if int4.get("symmetric") else []
    words += ["--static-shapes " + ",".join(f"{b}x{s}" for b, s in sorted(shapes))] if shapes else []
    words += ["--with-tokenizer"] if any(v.takes_text for v in variants) else []
    return " ".join(words)
