"""The runtime's models: an exported folder, run with tokenizers, numpy and one backend."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from edgesbert.errors import EdgesbertError, ManifestError, ModelLoadError
from edgesbert.runtime.backends import Backend, Device, PerformanceHint, RunOptions, open_backend
from edgesbert.runtime.backends.static import StaticTableBackend
from edgesbert.runtime.batching import BatchFunction, BatchRunner, Item, map_concurrently, progress
from edgesbert.runtime.encoding import SentenceEncoder
from edgesbert.runtime.inputs import Text, invalid_text_error, naming_invalid_text
from edgesbert.runtime.manifest import (
    SENTENCE_OUTPUT,
    TEXT_INPUTS,
    ClassifierSpec,
    EmbeddingSpec,
    GraphVariant,
    Manifest,
    ModelKind,
    Precision,
)
from edgesbert.runtime.packing import PACKED_INPUTS, TOKEN_TYPES, pack_features, packed_passes
from edgesbert.runtime.pooling import pool
from edgesbert.runtime.ranking import PairScorer
from edgesbert.runtime.similarity import normalize
from edgesbert.runtime.static_shapes import run_static
from edgesbert.runtime.tuning import TunedChoice, portable_default, tuned_choice, why_loaded
from edgesbert.runtime.verify import check_files, problems_message

if TYPE_CHECKING:
    from edgesbert.runtime.tokenizer import TextTokenizer
    from edgesbert.runtime.word_ids import WordIds

TOKEN_INPUTS = frozenset({"input_ids", "attention_mask", "token_type_ids"})
#: texts per call of a static variant's word cache and table (see ``BiEncoder._embed_all``)
WORD_CHUNK = 4096
M = TypeVar("M", bound="ExportedModel")


class ExportedModel(BatchRunner):
    """What both kinds of exported model share: manifest, tokenizer and a loaded graph variant.

    A variant exported ``--with-tokenizer`` takes strings: it runs without the `tokenizers` package, and
    its ``max_seq_length`` is the one it was exported with.
    """

    kind: ModelKind

    def __init__(
        self,
        folder: str | Path,
        *,
        variant: str | None = None,
        device: Device | str = Device.CPU,
        threads: int | None = None,
        performance_hint: PerformanceHint | str | None = None,
        cache_dir: str | Path | None = None,
        verify: bool = True,
    ) -> None:
        """Load ``folder`` (written by ``edgesbert export``).

        Args:
            folder: the exported model folder.
            variant: which graph variant to run; None picks the one ``edgesbert tune`` found fastest on
                this CPU's kind (see ``edgesbert.runtime.tuning``), else the manifest's default where it
                was chosen on this CPU's kind or holds on any CPU, else a variant that does (with a notice).
            device: "cpu", "gpu", "npu" or "auto".
            threads: inference threads; None lets the backend choose.
            performance_hint: "latency" or "throughput" (OpenVINO).
            cache_dir: where OpenVINO keeps compiled models, for fast second starts.
            verify: check the variant's graph and the tokenizer against the manifest's checksums before
                loading them (a damaged file raises ModelLoadError); False skips it, for trusted folders.
        """
        options = RunOptions.parse(device, threads, performance_hint, cache_dir)
        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise ModelLoadError(f"model folder {self.folder} does not exist")
        self.manifest = Manifest.load(self.folder)
        if self.manifest.kind is not self.kind:
            raise ManifestError(
                f"{self.folder} holds a {self.manifest.kind.value}, not a {self.kind.value}; "
                "use edgesbert.runtime.load() to open either kind"
            )
        asked, choose = variant is not None, variant is None and options.device is Device.CPU
        #: what `edgesbert tune` chose for this CPU's kind, when it chose the variant loaded
        self.tuned: TunedChoice | None = tuned_choice(self.folder, self.manifest) if choose else None
        if self.tuned is not None:
            variant = self.tuned.variant
            if options.performance_hint is None and self.tuned.performance_hint is not None:
                options = replace(options, performance_hint=PerformanceHint(self.tuned.performance_hint))
        elif choose:  # the manifest's default, unless chosen on another CPU kind
            variant = portable_default(self.folder, self.manifest)
        self.variant: GraphVariant = self.manifest.variant(variant)
        #: why this variant runs: asked for by name, tuned here, the default, or a portable one instead
        self.chosen_because = "asked for by name" if asked else "the folder's default"
        if choose:
            self.chosen_because = why_loaded(self.manifest, self.variant.name, self.tuned)
        if verify:
            self._verify()
        shapes = self.variant.static_shapes
        longest = max(sequence for _, sequence in shapes) if shapes else self.manifest.max_seq_length
        graph_limit = min(self.manifest.max_seq_length, longest)
        outputs = self.variant.outputs  # token embeddings come first where a graph also pools (issue 16)
        output = SENTENCE_OUTPUT if SENTENCE_OUTPUT in outputs else next(iter(outputs), None)
        options = replace(
            options,
            static_shapes=shapes,
            output=output,
            tokenizer_in_graph=self.variant.takes_text,
            bf16=self.variant.precision is Precision.BF16,
        )
        self._graph_limit = graph_limit
        self._tokenizer: TextTokenizer | None = None if self.variant.takes_text else self._token_tokenizer()
        self._backend = self._open_graph(options)
        rows, tuned_rows = self._backend.row_tokens, self.tuned.row_tokens if self.tuned else None
        if tuned_rows is not None and (tuned_rows or not rows):  # as tune times them: fixed rows stay fixed
            rows = tuned_rows  # what ran fastest on this CPU kind
        self._row_tokens = min(rows, graph_limit) if self.variant.packed else 0
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        self._configure()

    def _token_tokenizer(self) -> TextTokenizer:
        from edgesbert.runtime.tokenizer import TextTokenizer  # not needed by graphs that tokenize themselves

        pairs = self.kind is ModelKind.CROSS_ENCODER
        return TextTokenizer(self.folder, self.manifest.tokenizer, self._graph_limit, pairs=pairs)

    @property
    def tokenizer(self) -> TextTokenizer:
        """The model's tokenizer (for a variant that tokenizes itself, made on first use, with `tokenizers`).

        ``tokenizer(texts)`` gives the graph's inputs; ``token_counts`` and ``tokens`` what each text
        holds before truncation.
        """
        if self._tokenizer is None:
            self._tokenizer = self._token_tokenizer()
        return self._tokenizer

    @property
    def max_seq_length(self) -> int:
        """Inputs longer than this many tokens are truncated; lower it to run faster.

        It may be set from 2 (3 for a cross-encoder: the special tokens) up to the longest input the graph
        takes; a value outside raises ValueError, one that is not an int TypeError. A variant that
        tokenizes itself truncates where it was exported to, and refuses any other value.
        """
        return self._graph_limit if self.variant.takes_text else self.tokenizer.max_length

    @max_seq_length.setter
    def max_seq_length(self, value: int) -> None:
        if self.variant.takes_text and value != self._graph_limit:
            raise ValueError(
                f"variant {self.variant.name!r} tokenizes inside its graph and truncates at "
                f"{self._graph_limit} tokens; load a variant without the tokenizer inside to choose "
                "max_seq_length"
            )
        self.tokenizer.max_length = value

    @property
    def row_tokens(self) -> int:
        """A packed variant's rows: texts fill rows of this many tokens, ``batch_size`` rows a pass.

        Every row is this long, a lone text's too (a longer text gets a row of its own, the next multiple
        long), so a text is computed alike alone or in any batch. 0 (always, for a padded variant): each
        pass holds ``batch_size`` texts of similar length, in rows as long as the longest of them. The
        default is the backend's (OpenVINO 64, onnxruntime 0), or what ``edgesbert tune`` found fastest on
        this CPU's kind. Settable: 0, or 1 up to the longest input the graph takes; ValueError otherwise.
        (0 on OpenVINO makes a text's row, and so an int8 variant's output, change with its batch.)
        """
        return self._row_tokens

    @row_tokens.setter
    def row_tokens(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"row_tokens must be an int, got {value!r}")
        if value and not self.variant.packed:
            raise ValueError(
                f"variant {self.variant.name!r} pads its batches: only a packed variant fills rows; load one "
                "exported with --packed to set row_tokens"
            )
        if not 0 <= value <= self._graph_limit:
            longest = self._graph_limit
            raise ValueError(f"row_tokens must be 0 or 1..{longest} (the graph's longest input), got {value}")
        self._row_tokens = value

    @property
    def concurrent_runs(self) -> int:
        """How many batches the graph runs side by side: 1, or one per thread under the throughput hint.

        ``encode`` and ``predict`` cut each batch into this many slices, one per run (a packed variant
        with ``row_tokens`` makes at least this many passes instead).
        """
        return self._backend.concurrent_runs

    def tokenize(self, texts: Sequence[Text]) -> dict[str, np.ndarray]:
        """The graph's token inputs for ``texts`` (or pairs): int64 ``input_ids``, ``attention_mask``, ...

        As sentence-transformers' ``tokenize``, with numpy arrays; truncated to ``max_seq_length``.
        """
        return self.tokenizer(list(texts))

    def batch_indices(self, lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
        """``batch_size`` texts of similar length a pass; with ``row_tokens``, ``batch_size`` full rows."""
        if self.row_tokens:  # one pass per run, at least one for each run that can go side by side
            return packed_passes(lengths, self.row_tokens, batch_size, self.concurrent_runs)
        return super().batch_indices(lengths, batch_size)

    def _lengths(self, items: Sequence[Text]) -> Sequence[int]:
        """Tokens per text, truncated as the graph gets them: batches sorted by characters pad a third more.

        (STSb test in batches of 32, all-MiniLM-L6-v2: 1.34 graph tokens per real one sorted by characters,
        1.02 by tokens; counting them costs about 1% of encoding them.)
        """
        if self.variant.takes_text or not self._backend.padding_costs:  # characters: what there is, or enough
            return super()._lengths(items)
        limit = self.tokenizer.max_length
        return [min(count, limit) for count in self.tokenizer.token_counts(items)]

    def close(self) -> None:
        """Release the graph and the worker threads; the model cannot run afterwards. Idempotent."""
        with self._pool_lock:
            if self._pool is not None:
                self._pool.shutdown(wait=True)
                self._pool = None
            self._backend = _Closed(self.folder)  # runs one batch at a time: no new pool

    def __enter__(self: M) -> M:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _configure(self) -> None:
        """Read the kind-specific part of the manifest."""

    def _verify(self) -> None:
        """Raise ModelLoadError if a file the variant needs is missing or differs from the manifest."""
        failed = [c for c in check_files(self.folder, self.manifest, [self.variant]) if c.failed]
        if failed:
            raise ModelLoadError(problems_message(self.folder, self.manifest, failed))

    def _open_graph(self, options: RunOptions) -> Backend:
        graph = self.folder / self.variant.file
        try:
            backend = open_backend(self.variant.backend, graph, options)
        except ModelLoadError:
            self._verify()  # unverified folders: say which file is damaged, if one is
            raise
        takes = TEXT_INPUTS if self.variant.takes_text else TOKEN_INPUTS
        if self.variant.packed:
            takes = frozenset((*PACKED_INPUTS, TOKEN_TYPES))
        missing = set(backend.input_names) - set(takes)
        if missing:
            raise ModelLoadError(f"{graph} asks for inputs the runtime cannot make: {sorted(missing)}")
        return backend

    def _map_batches(self, fn: BatchFunction[Item], batches: Iterable[list[Item]]) -> Iterator[np.ndarray]:
        """Batches one by one, or sliced across threads when the backend runs several at once."""
        workers = self._backend.concurrent_runs
        if workers == 1:
            return map(fn, batches)
        with self._pool_lock:  # two first calls at once must not make two pools
            if self._pool is None:
                self._pool = ThreadPoolExecutor(workers, thread_name_prefix="edgesbert")
        return map_concurrently(fn, batches, self._pool, workers, split=not self.row_tokens)

    def _run(self, texts: list[Text]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        if self.variant.takes_text:
            invalid = invalid_text_error(texts, "texts")  # a lone surrogate cannot go into a string tensor
            if invalid is not None:
                raise invalid
            sides = [texts] if isinstance(texts[0], str) else list(zip(*texts, strict=True))
            strings = {
                name: np.array(side, dtype=str) for name, side in zip(TEXT_INPUTS, sides, strict=False)
            }
            return self._backend.run(strings), {}
        features = self.tokenizer(texts)
        pad_id = self.manifest.tokenizer.pad_token_id
        if self.variant.packed:  # texts side by side in rows, no padding: one output row per text
            types = TOKEN_TYPES in self.variant.inputs
            align = self._backend.text_alignment
            batch = pack_features(features, pad_id, types, row_length=self.row_tokens, align=align)
            return batch.vectors(self._backend.run(batch.inputs)), features
        if self.variant.static_shapes:
            return run_static(self._backend.run, features, self.variant.static_shapes, pad_id), features
        return self._backend.run(features), features


class _Closed(Backend):
    """What a closed model runs: nothing, with an error that says so."""

    input_names = ()

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def run(self, inputs: Mapping[str, np.ndarray]) -> np.ndarray:
        """Refuse."""
        raise EdgesbertError(f"the model of {self.folder} was closed; load it again to run it")


class BiEncoder(ExportedModel, SentenceEncoder):
    """An exported bi-encoder: ``encode``, ``similarity`` and ``similarity_pairwise``."""

    kind = ModelKind.BI_ENCODER

    def _configure(self) -> None:
        spec = self.manifest.embedding
        if spec is None:  # Manifest guarantees it; this narrows the type
            raise ManifestError(f"{self.folder}: the manifest has no 'embedding' section")
        self.spec: EmbeddingSpec = spec
        self.prompts = dict(spec.prompts)
        self.default_prompt_name = spec.default_prompt_name
        self.similarity_fn_name = spec.similarity
        self._word_ids: WordIds | None = None
        if isinstance(self._backend, StaticTableBackend):  # the tokenizer is most of its work: cache words
            from edgesbert.runtime.word_ids import WordIds  # tokenizers: not for graphs that tokenize

            self._word_ids = WordIds.for_tokenizer(self.folder / self.manifest.tokenizer.file)

    @property
    def embedding_dimension(self) -> int:
        """Width of the embeddings (a static variant's may be narrower than the model's)."""
        return self.variant.dimension or self.spec.dimension

    def _token_spans(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        tokens = self.tokenizer.tokens(texts, add_special_tokens=False, what="sentences")
        return [[(t.start or 0, t.stop or 0) for t in text] for text in tokens]

    def _special_tokens(self) -> int:
        return self.tokenizer.shortest

    @property
    def _normalizes(self) -> bool:
        return self.spec.normalize

    def _embed_all(self, texts: list[str], batch_size: int, show_progress_bar: bool) -> np.ndarray:
        if self._word_ids is None or not isinstance(self._backend, StaticTableBackend):
            return super()._embed_all(texts, batch_size, show_progress_bar)
        # A static table: nothing to save by sorting, and thousands of texts per call tokenize faster.
        table, words = self._backend, self._word_ids
        limit = self.max_seq_length - self.tokenizer.shortest
        starts = range(0, len(texts), WORD_CHUNK)
        with naming_invalid_text(texts, "sentences"):
            parts = (table.embed(*words(texts[i : i + WORD_CHUNK], limit)) for i in starts)
            return np.concatenate([*progress(parts, len(starts), show_progress_bar)])

    def _embed(self, texts: list[str]) -> np.ndarray:
        output, features = self._run(list(texts))
        if self.variant.packed or SENTENCE_OUTPUT in self.variant.outputs:  # pooled in the graph
            return output
        pooled = pool(output, features["attention_mask"], self.spec.pooling)
        return normalize(pooled) if self.spec.normalize else pooled


class CrossEncoder(ExportedModel, PairScorer):
    """An exported cross-encoder: ``predict`` and ``rank``."""

    kind = ModelKind.CROSS_ENCODER

    def _configure(self) -> None:
        spec = self.manifest.classifier
        if spec is None:  # Manifest guarantees it; this narrows the type
            raise ManifestError(f"{self.folder}: the manifest has no 'classifier' section")
        self.spec: ClassifierSpec = spec
        self.num_labels = spec.num_labels
        self.activation = spec.activation

    def _logits(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        return self._run(list(pairs))[0]


def load(
    folder: str | Path,
    *,
    variant: str | None = None,
    device: Device | str = Device.CPU,
    threads: int | None = None,
    performance_hint: PerformanceHint | str | None = None,
    cache_dir: str | Path | None = None,
    verify: bool = True,
) -> BiEncoder | CrossEncoder:
    """Open an exported folder as a BiEncoder or a CrossEncoder, as its manifest says (see ExportedModel)."""
    kind = Manifest.load(folder).kind
    model_class = BiEncoder if kind is ModelKind.BI_ENCODER else CrossEncoder
    return model_class(
        folder,
        variant=variant,
        device=device,
        threads=threads,
        performance_hint=performance_hint,
        cache_dir=cache_dir,
        verify=verify,
    )
