"""A folder's numbers on the CPU it runs on: every variant against the folder's fp32 graph, here.

The validation figures in a manifest were measured where the folder was exported; int8 arithmetic (and
OpenVINO's bf16 on AMX or AVX-512 BF16 CPUs) differs between CPUs, so a variant steady there may depend on
its batch here. ``measure_numbers`` runs every variant of a folder on shipped probe texts (the packaged
English sentences, or pairs of them for a cross-encoder) beside the folder's fp32 graph on this CPU: how
close each comes to it, and how much a text's output moves when a longer text shares its batch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgesbert.errors import EdgesbertError
from edgesbert.runtime.manifest import (
    BATCH_MAX_SCORE_DIFF,
    BATCH_MIN_COSINE,
    GraphVariant,
    Manifest,
    Precision,
)
from edgesbert.runtime.models import BiEncoder, CrossEncoder

#: probe texts (or pairs) per variant
PROBES = 32
#: how far below its validated mean cosine a variant's mean cosine to fp32 here may fall, and how far above
#: its validated largest score difference a cross-encoder's may rise
COSINE_SLACK = 1e-3
SCORE_SLACK = 1e-3


@dataclass(frozen=True)
class VariantNumbers:
    """One variant on this CPU: agreement with the fp32 graph here and its batch effect.

    ``error`` says why it could not run here (its figures are then NaN).
    """

    variant: str
    mean_agreement: float  # bi-encoders: mean cosine to fp32; cross-encoders: largest score difference
    batch_effect: float  # bi-encoders: lowest cosine alone/beside a longer text; cross: largest score change
    steady: bool  # its output does not depend on its batch here
    as_validated: bool  # agrees with fp32 here as well as it agreed with PyTorch at export
    error: str | None = None


def reference_variant(manifest: Manifest, folder: Path) -> GraphVariant:
    """The folder's plain fp32 graph: what every variant is compared with on this CPU."""
    plain = [
        v
        for v in manifest.variants
        if v.precision is Precision.FP32 and not v.packed and not v.takes_text and "optimize" not in v.recipe
    ]
    if not plain:
        raise EdgesbertError(f"{folder} has no plain fp32 graph to compare the other variants with")
    return plain[0]


def measure_numbers(folder: Path, probes: tuple[str, ...] | None = None) -> list[VariantNumbers]:
    """Every variant of ``folder`` measured against its fp32 graph on this CPU (see the module docstring)."""
    from edgesbert.data import english_sentences
    from edgesbert.runtime import load

    manifest = Manifest.load(folder)
    texts = list(probes or english_sentences()[:PROBES])
    with load(folder, variant=reference_variant(manifest, folder).name) as reference:
        expected = _outputs(reference, texts)
    found = []
    for variant in manifest.variants:
        try:
            model = load(folder, variant=variant.name)
        except EdgesbertError as e:  # a backend not installed here, a device this machine lacks
            nan = float("nan")
            found.append(VariantNumbers(variant.name, nan, nan, False, False, str(e).splitlines()[0]))
            continue
        with model:
            found.append(_numbers(model, variant, texts, expected))
    return found


def _pairs(texts: list[str]) -> list[tuple[str, str]]:
    return list(zip(texts, texts[1:] + texts[:1], strict=True))


def _outputs(model: BiEncoder | CrossEncoder, texts: list[str]) -> np.ndarray:
    """Unit embeddings of ``texts``, or the scores of pairs of them, each computed alone."""
    if isinstance(model, CrossEncoder):
        return model.predict(_pairs(texts), batch_size=1)
    return model.encode(texts, batch_size=1, normalize_embeddings=True)


def _numbers(
    model: BiEncoder | CrossEncoder, variant: GraphVariant, texts: list[str], expected: np.ndarray
) -> VariantNumbers:
    alone = _outputs(model, texts)
    longest = max(texts, key=len)
    if isinstance(model, CrossEncoder):
        beside = np.array([model.predict([pair, (longest, longest)])[0] for pair in _pairs(texts)])
        effect = float(np.abs(alone - beside).max())
        agreement = float(np.abs(alone - expected).max())
        validated = variant.validation.get("max_abs_diff")
        close = validated is None or agreement <= float(validated) + SCORE_SLACK
        return VariantNumbers(variant.name, agreement, effect, effect <= BATCH_MAX_SCORE_DIFF, close)
    beside = np.stack([model.encode([t, longest], normalize_embeddings=True)[0] for t in texts])
    effect = float((alone * beside).sum(axis=1).min())
    if alone.shape != expected.shape:  # another space (a static table): nothing to compare with
        return VariantNumbers(variant.name, float("nan"), effect, effect >= BATCH_MIN_COSINE, True)
    agreement = float((alone * expected).sum(axis=1).mean())
    validated = variant.validation.get("mean_cosine")
    close = validated is None or agreement >= float(validated) - COSINE_SLACK
    return VariantNumbers(variant.name, agreement, effect, effect >= BATCH_MIN_COSINE, close)
