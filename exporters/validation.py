"""Step: check a written graph variant against the PyTorch reference, through the runtime itself."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar, cast

import numpy as np

from edgesbert.errors import ValidationFailedError
from edgesbert.evaluation import spearman
from edgesbert.exporters.data_sets import RankingGroups, SentencePairs
from edgesbert.runtime.inputs import Text
from edgesbert.runtime.manifest import GraphVariant, Precision
from edgesbert.runtime.models import BiEncoder, CrossEncoder
from edgesbert.runtime.similarity import normalize

#: texts measured alone and beside the longest one, for the batch effect
BATCH_PROBES = 32
#: texts a packed variant is measured alone and behind a filler text in its row
PACKED_PROBES = 256
T = TypeVar("T", bound=Text)


@dataclass(frozen=True)
class Tolerance:
    """How far a variant may drift from the reference before the export fails.

    Lossless variants (fp32 graphs with exact rewrites) must reproduce the reference's numbers; lossy
    ones (approximate GELU, fp16, int8) must keep its quality on real labeled data.
    """

    max_abs_diff: float = 1e-4  # lossless variants: largest difference of normalized embeddings / scores
    max_spearman_drop: float = 0.01  # bi-encoders: STSb-dev Spearman lost against the reference's
    min_mean_cosine: float = 0.9  # lossy bi-encoders: catches broken graphs; Spearman decides the rest
    min_score_spearman: float = 0.98  # lossy cross-encoders: rank correlation with the reference's scores
    #: static tables (``--static``): lower by design (all-MiniLM-L6-v2: about 0.1); this catches broken ones
    static_max_spearman_drop: float = 0.3

    def __post_init__(self) -> None:
        correlations = (self.min_mean_cosine, self.min_score_spearman)
        if (
            self.max_abs_diff < 0
            or not 0 <= self.max_spearman_drop <= 2
            or not 0 <= self.static_max_spearman_drop <= 2
            or not all(-1 <= c <= 1 for c in correlations)
        ):
            raise ValueError(f"tolerance values out of range: {self}")


def is_lossless(variant: GraphVariant) -> bool:
    """Whether ``variant`` should reproduce the reference's numbers, not only its quality."""
    return variant.precision is Precision.FP32 and variant.recipe.get("optimize") in (None, "O1", "O2")


def embedding_figures(
    expected: np.ndarray,
    actual: np.ndarray,
    data: SentencePairs,
    project: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, float]:
    """Agreement of two embedding matrices at unit length, and the Spearman of both on labeled pairs.

    ``project`` maps the reference's embeddings into the space of ``actual`` where that differs (a static
    table's principal axes); the reference's Spearman is measured on its own embeddings.
    """

    def stsb_spearman(unit: np.ndarray) -> float:
        return spearman((unit[data.first] * unit[data.second]).sum(axis=1), data.gold)

    reference_spearman = stsb_spearman(normalize(expected))
    expected, actual = normalize(project(expected) if project else expected), normalize(actual)
    cosines = (expected * actual).sum(axis=1)
    return {
        "max_abs_diff": float(np.abs(expected - actual).max()),
        "mean_cosine": float(cosines.mean()),
        "min_cosine": float(cosines.min()),
        "spearman": stsb_spearman(actual),
        "reference_spearman": reference_spearman,
        "samples": float(len(data.gold)),
    }


def score_figures(expected: np.ndarray, actual: np.ndarray, data: RankingGroups) -> dict[str, float]:
    """Agreement of two cross-encoder score arrays: values, rank correlation, and best answer per query."""
    if expected.ndim == 1:
        ends = np.r_[data.starts[1:], len(expected)]
        same = [
            np.argmax(expected[a:b]) == np.argmax(actual[a:b]) for a, b in zip(data.starts, ends, strict=True)
        ]
        agreement = {"top1_agreement": float(np.mean(same))}
    else:
        agreement = {"label_agreement": float(np.mean(expected.argmax(1) == actual.argmax(1)))}
    return {
        "max_abs_diff": float(np.abs(expected - actual).max()),
        "score_spearman": spearman(expected.ravel(), actual.ravel()),
        **agreement,
        "samples": float(len(expected)),
    }


def batch_figures(model: BiEncoder | CrossEncoder, data: SentencePairs | RankingGroups) -> dict[str, float]:
    """How much an output depends on the rest of its batch: each text alone, then beside the longest text.

    Bi-encoders: the lowest cosine between the two embeddings of a text; cross-encoders: the largest
    change of a pair's score. A packed variant's texts are also measured behind another in their row.
    """
    packed = model.variant.packed
    count = PACKED_PROBES if packed else BATCH_PROBES  # each measured alone once
    if isinstance(model, BiEncoder) and isinstance(data, SentencePairs):
        texts = data.sentences[:count]
        longest = max(data.sentences, key=len)
        alone = model.encode(texts, batch_size=1, normalize_embeddings=True)
        beside = np.stack(
            [model.encode([t, longest], normalize_embeddings=True)[0] for t in texts[:BATCH_PROBES]]
        )
        worst = float((alone[: len(beside)] * beside).sum(axis=1).min())
        if packed:
            behind, index = _behind_fillers(
                model, texts, lambda t: model.encode(t, normalize_embeddings=True)
            )
            worst = min(worst, float((alone[index] * behind).sum(axis=1).min(initial=1.0)))
        return {"batch_min_cosine": worst}
    if isinstance(model, CrossEncoder) and isinstance(data, RankingGroups):
        pairs = data.pairs[:count]
        longest_pair = max(data.pairs, key=lambda pair: len(pair[0]) + len(pair[1]))
        alone_scores = model.predict(pairs, batch_size=1)
        beside_scores = np.stack([model.predict([p, longest_pair])[0] for p in pairs[:BATCH_PROBES]])
        moved = float(np.abs(alone_scores[: len(beside_scores)] - beside_scores).max())
        if packed:
            behind, index = _behind_fillers(model, pairs, model.predict)
            moved = max(moved, float(np.abs(alone_scores[index] - behind).max(initial=0.0)))
        return {"batch_max_score_diff": moved}
    raise TypeError(f"cannot measure the batch effect of a {type(model).__name__} on {type(data).__name__}")


def _behind_fillers(
    model: BiEncoder | CrossEncoder, items: Sequence[T], run: Callable[[list[T]], np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    """A packed variant's outputs for ``items`` behind a filler text in their row, and the probes' indices.

    onnxruntime sums a text's attention in vector lanes set by where the text starts in its row, and int8
    turns that last-bit difference into a visible one for a few texts in a hundred (all-MiniLM-L6-v2's
    packed int8-static: cosine 0.99895 for a text 14 or 18 tokens into its row, unmoved at 12 or 16). The
    runtime starts texts at multiples of the backend's ``text_alignment`` for that; the probes, many, check
    it holds on the exporting CPU. Each fills a row of R tokens behind a filler of R - its length, longer
    than any probe, so that no two fillers or probes share a row: in the variant's own rows where they are
    fixed, else in rows of four lengths (a probe whose filler ends unaligned gets a row of its own).
    """
    tokenizer, fixed = model.tokenizer, model.row_tokens
    pairs = not isinstance(items[0], str)
    counts = tokenizer.token_counts(items)
    longest = fixed // 2 if fixed else min(max(counts), (tokenizer.max_length - 4) // 2)  # the longest probe
    probes = [i for i, n in enumerate(counts) if n <= longest and (n < fixed - longest or not fixed)]

    def filler(tokens: int) -> T:  # "a a a ...": a token a word where the tokenizer splits so (checked)
        words = " ".join(["a"] * max(tokens - tokenizer.shortest - pairs, 1))
        return cast(T, (words, "a") if pairs else words)

    outputs, index = [], []
    for row in [fixed] if fixed else range(2 * longest + 1, 2 * longest + 5):
        if row > tokenizer.max_length:
            break
        fillers = {i: filler(row - counts[i]) for i in probes}
        made = tokenizer.token_counts(list(fillers.values()))
        exact = [i for i, n in zip(fillers, made, strict=True) if n == row - counts[i]]
        if not exact:
            continue
        model.row_tokens = row
        try:
            out = run([items[i] for i in exact] + [fillers[i] for i in exact])
        finally:
            model.row_tokens = fixed
        outputs.append(out[: len(exact)])
        index += exact
    return (np.concatenate(outputs) if outputs else np.empty((0,))), np.asarray(index, dtype=np.int64)


@dataclass(frozen=True)
class Miss:
    """One figure outside its tolerance, with the option that sets the bound."""

    figure: str
    value: float
    bound: float
    option: str  # the ``edgesbert export`` option, e.g. "--min-cosine"

    def __str__(self) -> str:
        below = self.option in ("--min-cosine", "--min-score-spearman")
        return f"{self.figure} {self.value:.6g} {'<' if below else '>'} {self.bound:.6g} ({self.option})"

    def loosened(self) -> str:
        """The option set just past the measured value, for a user who accepts this drift."""
        if self.option in ("--min-cosine", "--min-score-spearman"):
            return f"{self.option} {np.floor(self.value * 1000) / 1000:g} (now {self.bound:g})"
        step = 10.0 ** (np.floor(np.log10(max(self.value, 1e-12))) - 1)  # two significant digits, up
        return f"{self.option} {np.ceil(self.value / step - 1e-6) * step:.2g} (now {self.bound:g})"


def misses(variant: GraphVariant, figures: dict[str, float], tolerance: Tolerance) -> list[Miss]:
    """The figures of ``variant`` that fall outside ``tolerance``; none when it passes."""
    found = []
    if variant.static:  # lower accuracy by design: only a broken table fails
        drop = figures["reference_spearman"] - figures["spearman"]
        if drop > tolerance.static_max_spearman_drop:
            bound = tolerance.static_max_spearman_drop
            found.append(Miss("STSb Spearman drop", drop, bound, "--static-max-spearman-drop"))
        return found
    if is_lossless(variant) and figures["max_abs_diff"] > tolerance.max_abs_diff:
        found.append(Miss("max_abs_diff", figures["max_abs_diff"], tolerance.max_abs_diff, "--max-abs-diff"))
    if "spearman" in figures:
        drop = figures["reference_spearman"] - figures["spearman"]
        if drop > tolerance.max_spearman_drop:
            found.append(Miss("STSb Spearman drop", drop, tolerance.max_spearman_drop, "--max-spearman-drop"))
        cosine = figures["mean_cosine"]
        if cosine < tolerance.min_mean_cosine:
            found.append(Miss("mean_cosine", cosine, tolerance.min_mean_cosine, "--min-cosine"))
    elif (scores := figures["score_spearman"]) < tolerance.min_score_spearman:
        found.append(Miss("score_spearman", scores, tolerance.min_score_spearman, "--min-score-spearman"))
    return found


def quality(figures: dict[str, float]) -> tuple[float, float]:
    """What ranks two attempts at one variant: agreement with the reference, then rank correlation.

    Mean cosine first for bi-encoders: over every validation text it measures fidelity with less noise
    than a Spearman over the pairs (all-mpnet-base-v2 int8: +0.1 pt STSb-dev Spearman at mean cosine
    0.975, -0.5 pt on STSb test).
    """
    if "spearman" in figures:
        return figures["mean_cosine"], figures["spearman"] - figures["reference_spearman"]
    return figures["score_spearman"], -figures["max_abs_diff"]


def summary(figures: dict[str, float]) -> str:
    """The figures a user judges a lossy variant by, in one line."""
    if "spearman" in figures:
        drop = figures["reference_spearman"] - figures["spearman"]
        text = (
            f"STSb Spearman {figures['spearman']:.4f} against the reference's "
            f"{figures['reference_spearman']:.4f} (drop {drop * 100:.2f} pt), "
            f"mean cosine {figures['mean_cosine']:.4f}, min cosine {figures['min_cosine']:.4f}"
        )
    else:
        text = f"score Spearman {figures['score_spearman']:.5f}, max abs diff {figures['max_abs_diff']:.3g}"
    if "texts_per_second" in figures:
        text += f", {figures['texts_per_second']:.0f} texts/s"
    return text


def check(variant: GraphVariant, figures: dict[str, float], tolerance: Tolerance) -> None:
    """Raise ValidationFailedError if ``figures`` fall outside ``tolerance``."""
    found = misses(variant, figures, tolerance)
    if found:
        raise ValidationFailedError(
            f"variant {variant.name!r} disagrees with the PyTorch reference: {'; '.join(map(str, found))}. "
            f"Measured: {summary(figures)}. To accept this drift, export again with "
            f"{' '.join(m.loosened() for m in found)}"
        )
