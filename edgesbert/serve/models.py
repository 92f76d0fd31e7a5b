"""The served models: each runtime model with its batcher, found by the name a request gives."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path

import numpy as np

from edgesbert.data import english_sentences
from edgesbert.runtime import BiEncoder, CrossEncoder, load
from edgesbert.runtime.inputs import Text
from edgesbert.runtime.manifest import ModelKind
from edgesbert.serve.batching import BatchStats, DynamicBatcher, split_by_tokens
from edgesbert.serve.errors import ApiError, ErrorType, invalid
from edgesbert.serve.logs import note_usage
from edgesbert.serve.settings import ModelSource, ServerSettings
from edgesbert.serve.token_arrays import TokenDecoder

#: Requests with more characters than this are tokenized off the event loop.
_INLINE_CHARS = 20_000
#: Texts per concurrent run that keep it busy alone: a batch holding fewer leaves room for a second one.
#: (Under the throughput hint, 64 one-sentence clients, 2 cores: 160-170 sentences/s against 148-154 with
#: a fixed 32, whose batches, cut in two slices of 16, left each run waiting; AMD EPYC, AVX2.)
FULL_PER_RUN = 32


class ServedModel:
    """One loaded model behind a dynamic batcher."""

    def __init__(
        self,
        source: ModelSource,
        settings: ServerSettings,
        on_batch: Callable[[str, BatchStats], None] | None = None,
    ) -> None:
        """Load ``source.folder``; call ``start`` on the event loop before serving."""
        self.name = source.name
        self.model: BiEncoder | CrossEncoder = load(
            source.folder,
            variant=settings.variant,
            device=settings.device,
            threads=settings.threads,
            performance_hint=settings.performance_hint,
        )
        self.kind = self.model.manifest.kind
        self.source_model = self.model.manifest.provenance.source_model
        self.limit = self.model.max_seq_length
        run = self._embed_batch if isinstance(self.model, BiEncoder) else self._score_batch
        report = (lambda stats: on_batch(self.name, stats)) if on_batch else None
        self.batcher: DynamicBatcher[Text] = DynamicBatcher(
            run,
            max_batch_tokens=settings.max_batch_tokens,
            max_batch_requests=settings.max_batch_requests,
            name=self.name,
            on_batch=report,
            full=FULL_PER_RUN * self.model.concurrent_runs,
        )
        self._max_batch_tokens = settings.max_batch_tokens
        self._max_request_tokens = settings.max_client_batch_tokens
        self._calibration = settings.calibration
        self._calibrated: dict[str, np.ndarray] = {}
        self._calibration_lock = threading.Lock()

    @property
    def bi_encoder(self) -> BiEncoder:
        """The model as a bi-encoder (the caller checked the kind)."""
        assert isinstance(self.model, BiEncoder)
        return self.model

    @property
    def cross_encoder(self) -> CrossEncoder:
        """The model as a cross-encoder (the caller checked the kind)."""
        assert isinstance(self.model, CrossEncoder)
        return self.model

    def start(self) -> None:
        """Start the batcher on the running event loop."""
        self.batcher.start()

    async def run(self, items: Sequence[Text], truncate: bool, what: str) -> tuple[np.ndarray, int]:
        """Rows for ``items`` (float embeddings or logits) and the tokens they took, through the batcher.

        Raises ApiError 422 for a text that is not valid Unicode; 413 for one longer than the model takes
        when ``truncate`` is False, or when the request's tokens exceed ``max_client_batch_tokens``.
        ``what`` names the request's field in the message. A request over ``max_batch_tokens`` is queued
        in parts that fit it.
        """
        counts = await self.token_counts(items, what)
        if not truncate:
            for i, count in enumerate(counts):
                if count > self.limit:  # 413, as TEI answers it
                    raise ApiError(
                        413,
                        f"{what}[{i}] has {count} tokens, more than the {self.limit} this model takes; "
                        "send truncate: true to cut it",
                    )
        truncated = [min(count, self.limit) for count in counts]
        tokens = sum(truncated)
        note_usage(self.name, len(items), tokens, cut=sum(count > self.limit for count in counts))
        if tokens > self._max_request_tokens:
            raise ApiError(
                413,
                f"{what} holds {tokens} tokens (after truncation), more than this server's "
                f"max_client_batch_tokens ({self._max_request_tokens}); split the request",
                ErrorType.PAYLOAD_TOO_LARGE,
            )
        parts = split_by_tokens(truncated, self._max_batch_tokens)
        if len(parts) == 1:
            return await self.batcher.submit(list(items), tokens), tokens
        jobs = [self.batcher.submit(list(items[part]), sum(truncated[part])) for part in parts]
        rows = []
        for result in await asyncio.gather(*jobs, return_exceptions=True):  # every part ends before a raise
            if isinstance(result, BaseException):
                raise result
            rows.append(result)
        return np.concatenate(rows), tokens

    async def texts_of_token_arrays(self, arrays: Sequence[Sequence[int]], what: str) -> list[str]:
        """The texts that arrays of this model's token ids stand for (``token_arrays``); 422 for bad ids."""
        return await asyncio.to_thread(self._decoder.texts, arrays, what)

    async def token_counts(self, items: Sequence[Text], what: str) -> list[int]:
        """Tokens in each item before truncation; 422 for text that is not valid Unicode."""
        count = self.model.tokenizer.token_counts
        try:
            if sum(len(t) if isinstance(t, str) else len(t[0]) + len(t[1]) for t in items) > _INLINE_CHARS:
                return await asyncio.to_thread(count, items, what)
            return count(items, what)
        except ValueError as e:
            raise ApiError(422, str(e), ErrorType.TOKENIZER) from None

    def calibration_embeddings(self, prompt: str) -> np.ndarray:
        """Float embeddings of the calibration texts with ``prompt`` before each (made once per prompt).

        Shaped like a request's rows, their per-dimension minima and maxima map that request's embeddings
        to int8/uint8. Slow the first time: call it off the event loop.
        """
        with self._calibration_lock:
            if prompt not in self._calibrated:
                texts = [prompt + text for text in self._calibration_texts()]
                self._calibrated[prompt] = self.bi_encoder.encode(texts, prompt="")
            return self._calibrated[prompt]

    @cached_property
    def _decoder(self) -> TokenDecoder:
        return TokenDecoder(self.model.folder, self.model.manifest.tokenizer)

    def _calibration_texts(self) -> list[str]:
        if self._calibration is None:
            return list(english_sentences())
        lines = Path(self._calibration).read_text("utf-8").splitlines()
        return [line for line in lines if line.strip()]

    def _embed_batch(self, texts: list[Text]) -> np.ndarray:
        return self.bi_encoder.encode([str(t) for t in texts], prompt="")

    def _score_batch(self, pairs: list[Text]) -> np.ndarray:
        logits = self.cross_encoder.predict([(p[0], p[1]) for p in pairs], activation_fn="identity")
        return logits.reshape(len(pairs), -1)


class ModelRegistry:
    """The served models, by name; the first of each kind answers requests that name none."""

    def __init__(self, models: Sequence[ServedModel]) -> None:
        """Index ``models`` by name and by the name of the model they were exported from."""
        self.models = list(models)
        self._by_name: dict[str, ServedModel] = {}
        for model in reversed(self.models):  # the first model wins a shared source name
            self._by_name[model.source_model] = model
        self._by_name.update({model.name: model for model in self.models})

    def get(self, name: str | None, kind: ModelKind) -> ServedModel:
        """The model called ``name`` (or the first of ``kind``), which must be of ``kind``."""
        if name is None:
            for model in self.models:
                if model.kind is kind:
                    return model
            raise ApiError(404, f"no {kind.value} is served here; this route needs one", ErrorType.NOT_FOUND)
        model = self.find(name)
        if model.kind is not kind:
            raise invalid(f"model {name!r} is a {model.kind.value}; this route needs a {kind.value}")
        return model

    def find(self, name: str | None) -> ServedModel:
        """The model called ``name``, of any kind, or the first model."""
        if name is None:
            return self.models[0]
        model = self._by_name.get(name)
        if model is None:
            known = ", ".join(m.name for m in self.models)
            raise ApiError(404, f"model {name!r} is not served here; served: {known}", ErrorType.NOT_FOUND)
        return model
