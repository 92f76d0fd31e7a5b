"""The tuned choice: which variant ran fastest on which CPU, kept beside the manifest (``edgesbert tune``).

``edgesbert.tuned.json`` never changes the validated graphs or the manifest. It holds, per CPU kind (its
architecture and speed flags, ``cpu.Cpu.key``), what ``edgesbert tune`` measured there: every candidate
variant's figures and the fastest one (with the OpenVINO performance hint it ran best under, and for a
packed variant the row length). ``load()`` without a variant takes that choice when this CPU's kind is in
the file and the manifest is the one that was tuned (its SHA-256 is recorded). Without such a record, the
manifest's ``default_variant`` holds where the folder was exported (``provenance.cpu``, the same CPU kind);
on any other CPU kind ``load()`` runs the best ``portable`` variant instead, whose batch independence does
not depend on the CPU, and says so once (``portable_default``). Format::

    {"format": 1, "manifest_sha256": "...",
     "machines": {"x86_64 avx2 fma ...": {"cpu": "AMD EPYC", "cores": 2, "measured_at": "...",
                                          "choice": {"variant": "openvino-packed-int8",
                                                     "performance_hint": null, "row_tokens": 64},
                                          "numbers": [{"variant": ..., "mean_agreement": ...,
                                                       "batch_effect": ..., "steady": ...,
                                                       "as_validated": ...}, ...],
                                          "figures": [{"variant": ..., "performance_hint": ...,
                                                       "sentences_per_s": ..., "short_per_s": ...,
                                                       "long_per_s": ..., "unsorted_per_s": ...,
                                                       "one_p50_ms": ..., "row_tokens": ...}, ...]}}}
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgesbert.runtime.cpu import Cpu, this_cpu
from edgesbert.runtime.manifest import MANIFEST_FILE, GraphVariant, Manifest, Precision

TUNED_FILE = "edgesbert.tuned.json"
TUNED_FORMAT = 1
log = logging.getLogger("edgesbert")


@dataclass(frozen=True)
class TunedChoice:
    """The variant (and OpenVINO hint, or None) that ran fastest on a CPU kind, and where it was measured.

    ``row_tokens``: a packed variant's row length that ran fastest (None: the backend's own).
    """

    variant: str
    performance_hint: str | None
    cpu: str
    measured_at: str
    row_tokens: int | None = None


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
    rows = entry["choice"].get("row_tokens")
    rows = rows if isinstance(rows, int) and not isinstance(rows, bool) and rows >= 0 else None
    return TunedChoice(name, hint, str(entry.get("cpu", "")), str(entry.get("measured_at", "")), rows)


def portable(variant: GraphVariant) -> bool:
    """Whether a candidate's output is independent of its batch on any CPU, not only where it was validated.

    fp32 graphs (OpenVINO is told f32, so no bf16 where the CPU has it) and onnxruntime's static int8
    (fixed activation scales, integer arithmetic). Not OpenVINO's int8: the TREC QA reranker's moved its
    scores with the batch on an AMD EPYC with VNNI (3.6e-4) while steady on an Intel Xeon with AMX.
    """
    if not tunable(variant):
        return False
    static_int8 = variant.backend == "onnxruntime" and variant.recipe.get("quantize") == "int8-static"
    return variant.precision is Precision.FP32 or static_int8


def portable_default(
    folder: Path, manifest: Manifest, cpu: Cpu | None = None, say: Callable[[str], None] = log.warning
) -> str | None:
    """The variant ``load()`` runs instead of the manifest's default on this CPU, None to keep the default.

    The default was chosen on the CPU kind in ``provenance.cpu``; on another kind, without a tuned record
    for it, a default that is not ``portable`` gives way to the portable candidate the exporter would
    prefer (int8 first, a packed one where the default is packed), with a one-line notice on the
    ``edgesbert`` logger (``say``) that ``edgesbert tune`` can measure the faster ones here.
    """
    cpu = cpu or this_cpu()
    default = manifest.variant()
    if manifest.provenance.cpu == cpu.key or portable(default):
        return None
    candidates = [v for v in manifest.variants if portable(v)]
    if not candidates:
        return None

    def preference(v: GraphVariant) -> tuple[bool, bool, bool]:
        return v.precision is Precision.INT8, v.packed == default.packed, v.backend == default.backend

    chosen = max(candidates, key=preference).name  # max keeps the first of equals: manifest order
    say(
        f"{folder}: its default {default.name!r} was validated on {_where(manifest)}, another CPU kind; "
        f"running {chosen!r}, whose numbers hold on any CPU. `edgesbert tune {folder}` measures the "
        "variants here and records the fastest that is steady here"
    )
    return chosen


def why_loaded(manifest: Manifest, variant: str, tuned: TunedChoice | None, cpu: Cpu | None = None) -> str:
    """Why ``load()`` without a variant runs ``variant`` on this CPU, in a few words."""
    if tuned is not None:
        return f"the fastest variant steady on this CPU kind (edgesbert tune, {tuned.measured_at})"
    if manifest.provenance.cpu == (cpu or this_cpu()).key:
        return "the folder's default, validated on this CPU kind"
    if variant == manifest.default_variant:
        return f"the folder's default (validated on {_where(manifest)}); its numbers hold on any CPU"
    return (
        f"not the folder's default {manifest.default_variant!r} (validated on {_where(manifest)}): "
        "its numbers hold on any CPU"
    )


def _where(manifest: Manifest) -> str:
    return manifest.provenance.cpu_name or "a CPU the export did not record"
