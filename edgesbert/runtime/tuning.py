"""The tuned choice: which variant ran fastest on which CPU, kept beside the manifest (``edgesbert tune``).

``edgesbert.tuned.json`` never changes the validated graphs or the manifest. It holds, per CPU kind (its
architecture and speed flags, ``cpu.Cpu.key``), what ``edgesbert tune`` measured there: every candidate
variant's figures and the fastest one (with the OpenVINO performance hint it ran best under). ``load()``
without a variant takes that choice when this CPU's kind is in the file and the manifest is the one that
was tuned (its SHA-256 is recorded), else the manifest's ``default_variant``. Format::

    {"format": 1, "manifest_sha256": "...",
     "machines": {"x86_64 avx2 fma ...": {"cpu": "AMD EPYC", "cores": 2, "measured_at": "...",
                                          "choice": {"variant": "openvino-int8", "performance_hint": null},
                                          "figures": [{"variant": ..., "performance_hint": ...,
                                                       "sentences_per_s": ..., "short_per_s": ...,
                                                       "long_per_s": ..., "unsorted_per_s": ...,
                                                       "one_p50_ms": ...}, ...]}}}
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgesbert.runtime.cpu import Cpu, this_cpu
from edgesbert.runtime.manifest import MANIFEST_FILE, GraphVariant, Manifest, Precision

TUNED_FILE = "edgesbert.tuned.json"
TUNED_FORMAT = 1


@dataclass(frozen=True)
class TunedChoice:
    """The variant (and OpenVINO hint, or None) that ran fastest on a CPU kind, and where it was measured."""

    variant: str
    performance_hint: str | None
    cpu: str
    measured_at: str


def tunable(variant: GraphVariant) -> bool:
    """Whether a variant may be the default on a CPU: the exporter's rules, less the static preference.

    Not a batch-dependent one (dynamic int8), nor one with the tokenizer inside (its ops are extra
    packages), nor fp16 (a GPU format), nor bf16 (an opt-in: its numbers follow the CPU), nor one of
    static shapes (for NPUs), nor a static token table (far faster, but less accurate by design).
    """
    return not (
        variant.static
        or variant.batch_dependent
        or variant.takes_text
        or variant.precision in (Precision.FP16, Precision.BF16)
        or variant.static_shapes
    )


def manifest_sha256(folder: Path) -> str:
    """The SHA-256 of the folder's manifest file, which a tuned file is bound to."""
    return hashlib.sha256((folder / MANIFEST_FILE).read_bytes()).hexdigest()


def read_tuned(folder: Path) -> dict[str, Any] | None:
    """The tuned file of ``folder`` as JSON, None if there is none; a file that cannot be read warns."""
    path = folder / TUNED_FILE
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("format") != TUNED_FORMAT or not isinstance(data.get("machines"), dict):
            raise ValueError(f"not format {TUNED_FORMAT}")
        return dict(data)
    except (OSError, ValueError, AttributeError) as e:
        warnings.warn(
            f"{path} is unreadable ({e}); using the manifest's default variant. Run `edgesbert tune "
            f"{folder}` again to rewrite it",
            stacklevel=3,
        )
        return None


def tuned_choice(folder: Path, manifest: Manifest, cpu: Cpu | None = None) -> TunedChoice | None:
    """The choice tuned on this CPU's kind for this manifest, if there is one and it is still valid."""
    data = read_tuned(folder)
    if data is None or data.get("manifest_sha256") != manifest_sha256(folder):
        return None
    entry = data["machines"].get((cpu or this_cpu()).key)
    if not isinstance(entry, dict) or not isinstance(entry.get("choice"), dict):
        return None
    name = entry["choice"].get("variant")
    if not any(v.name == name and tunable(v) for v in manifest.variants):
        return None
    hint = entry["choice"].get("performance_hint")
    return TunedChoice(name, hint, str(entry.get("cpu", "")), str(entry.get("measured_at", "")))
