"""What the export steps share, and how a step describes the graph file it wrote."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from edgesbert.errors import ExportError
from edgesbert.exporters.memory import release_network
from edgesbert.exporters.validation import Tolerance
from edgesbert.reference import BiEncoder, CrossEncoder
from edgesbert.runtime.inputs import Text
from edgesbert.runtime.manifest import GraphVariant, ModelKind, Precision, TokenizerSpec
from edgesbert.runtime.packing import TOKEN_TYPES, pack_features
from edgesbert.runtime.tokenizer import TextTokenizer
from edgesbert.runtime.verify import sha256_of


class SourceFailedError(ExportError):
    """A step needs a variant that failed validation; it is skipped, as that variant was."""


@dataclass
class ExportContext:
    """The reference model, the staging folder, the validation settings and the variants written so far."""

    reference: BiEncoder | CrossEncoder
    folder: Path
    pooling_in_graph: bool = True
    tolerance: Tolerance = field(default_factory=Tolerance)
    validation_size: int = 512
    variants: list[GraphVariant] = field(default_factory=list)
    tokenizer: TokenizerSpec | None = None
    written: list[str | None] = field(default_factory=list)  # per step: its variant, None if it failed
    failed: list[str] = field(default_factory=list)  # variants left out: they failed validation
    owns_reference: bool = False  # loaded by the export itself: its weights may go once traced
    traces_left: int = 1  # steps still to trace the reference (fp32, packed); the last one frees it
    calibrations: dict[tuple, object] = field(default_factory=dict)  # activation ranges, for int8 retries
    _feed_tokenizer: TextTokenizer | None = field(default=None, init=False, repr=False)

    @property
    def kind(self) -> ModelKind:
        """Bi-encoder or cross-encoder."""
        return ModelKind.BI_ENCODER if isinstance(self.reference, BiEncoder) else ModelKind.CROSS_ENCODER

    def variant(self, name: str) -> GraphVariant:
        """A variant an earlier step wrote."""
        for variant in self.variants:
            if variant.name == name:
                return variant
        if name in self.failed:
            raise SourceFailedError(f"{name!r} failed validation, so no variant was made from it.")
        raise ExportError(f"no variant {name!r} was written before this step; check the order of steps")

    def step_variant(self, step: int) -> GraphVariant:
        """The variant the ``step``-th step of the plan wrote."""
        name = self.written[step] if step < len(self.written) else None
        if name is None:
            raise SourceFailedError(f"step {step} wrote no variant, so none was made from it.")
        return self.variant(name)

    def text_tokenizer(self) -> TextTokenizer:
        """The runtime's tokenizer over the staged ``tokenizer.json``, to feed graphs real inputs."""
        return TextTokenizer(self.folder, self._written_tokenizer(), self.reference.max_seq_length)

    def graph_feed(self, source: GraphVariant, texts: Sequence[Text]) -> dict[str, np.ndarray]:
        """What ``source``'s graph takes for ``texts`` (or pairs): a padded batch, or packed rows.

        Packed rows are as long as the longest text, so that calibration sees no unused row tail.
        """
        if self._feed_tokenizer is None:
            self._feed_tokenizer = self.text_tokenizer()
        features = self._feed_tokenizer(list(texts))
        if source.packed:
            pad = self._written_tokenizer().pad_token_id
            return pack_features(features, pad, TOKEN_TYPES in source.inputs).inputs
        return {name: features[name] for name in source.inputs}

    def tokenizer_path(self) -> Path:
        """The staged ``tokenizer.json``."""
        return self.folder / self._written_tokenizer().file

    def _written_tokenizer(self) -> TokenizerSpec:
        if self.tokenizer is None:
            raise ExportError("the tokenizer must be written before this step")
        return self.tokenizer

    def path(self, file: str) -> Path:
        """Where ``file`` (a path relative to the folder, from ``layout``) goes; its folder is made."""
        path = self.folder / file
        path.parent.mkdir(parents=True, exist_ok=True)
        return path

    def traced(self) -> None:
        """Say a step traced the reference; after the last one, its weights go if the export loaded it."""
        self.traces_left -= 1
        if self.owns_reference and self.traces_left <= 0:  # its outputs are computed: none is needed
            release_network(self.reference)

    def float_source(self) -> GraphVariant:
        """The graph to quantize: the latest padded fp32 variant (optimized, if an optimization step ran)."""
        candidates = [
            v
            for v in self.variants
            if v.precision is Precision.FP32 and "quantize" not in v.recipe and not v.packed
        ]
        if not candidates and "fp32" in self.failed:
            raise SourceFailedError("'fp32' failed validation, so nothing was quantized from it.")
        if not candidates:
            raise ExportError("quantization needs an fp32 graph first; put the ONNX export step before it")
        return candidates[-1]


#: A step writes one graph variant into the context's folder and describes it.
Step = Callable[[ExportContext], GraphVariant]


def derived_variant(
    ctx: ExportContext,
    source: GraphVariant,
    name: str,
    file: str,
    precision: Precision,
    recipe: Mapping[str, str | int | float | bool],
) -> GraphVariant:
    """Describe ``file``, made from ``source``: same inputs and outputs, its own file and recipe."""
    return replace(
        source,
        name=name,
        file=file,
        precision=precision,
        sha256=sha256_of(ctx.folder / file),
        validation={},
        recipe={**{k: v for k, v in source.recipe.items() if k != "intermediate"}, **recipe},
    )


@dataclass(frozen=True)
class Intermediate:
    """Run ``step`` for the steps after it; its file is removed before the folder is finished."""

    step: Step

    def __call__(self, ctx: ExportContext) -> GraphVariant:
        """Run the wrapped step and mark its variant."""
        variant = self.step(ctx)
        return replace(variant, recipe={**variant.recipe, "intermediate": True})
