"""Corpus jobs: embed a whole file of texts, or score a file of pairs, into Parquet (extra: bulk).

    from edgesbert.bulk import embed_corpus
    result = embed_corpus("exported/all-MiniLM-L6-v2", "corpus.jsonl", "embeddings.parquet", processes=2)

The input is streamed in chunks (memory stays bounded whatever its size); each chunk is written as a shard,
so a killed job, run again with the same arguments, continues where it stopped; the output keeps the input's
row order. ``edgesbert embed`` and ``edgesbert score`` are these functions on the command line.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from edgesbert.errors import require

require("pyarrow", "bulk")

from edgesbert.bulk.jobs import BulkResult, Job, OnError, metadata_of, run_job  # noqa: E402
from edgesbert.bulk.readers import FORMATS, Columns  # noqa: E402
from edgesbert.bulk.windows import Windows  # noqa: E402
from edgesbert.bulk.workers import ModelSpec  # noqa: E402
from edgesbert.runtime.manifest import ModelKind  # noqa: E402
from edgesbert.runtime.precision import OutputPrecision, parse_precision  # noqa: E402

__all__ = ["FORMATS", "BulkResult", "OnError", "embed_corpus", "metadata_of", "score_pairs"]


def embed_corpus(
    folder: str | Path,
    input: str | Path,
    output: str | Path,
    *,
    text_column: str | None = None,
    id_column: str | None = None,
    precision: OutputPrecision | str = OutputPrecision.FLOAT32,
    prompt_name: str | None = None,
    processes: int | None = None,
    batch_size: int = 64,
    chunk_rows: int = 10_000,
    on_error: OnError | str = OnError.FAIL,
    variant: str | None = None,
    threads: int | None = None,
    progress: bool | None = None,
    ray: bool | str = False,
    chunk_tokens: int | None = None,
    chunk_overlap: int = 0,
) -> BulkResult:
    """Embed every text of ``input`` with the bi-encoder in ``folder``, into the Parquet file ``output``.

    Args:
        folder: an exported bi-encoder folder.
        input: ``.txt`` (one text per line), ``.jsonl``, ``.csv``, ``.tsv`` or ``.parquet``.
        output: the ``.parquet`` file to write: ``id`` (the ``id_column`` values, else the 0-based row
            number) and ``embedding`` (fixed-size lists in the dtype ``encode`` gives for ``precision``),
            in input order. Its metadata (``edgesbert.bulk.metadata_of``) says how it was made.
        text_column: the field or column of the texts (``text``); not for ``.txt``.
        id_column: the field or column of the ids; default: the row number.
        precision: float32, int8, uint8 (ranges fixed once per job: see ``edgesbert.bulk.jobs``), binary or
            ubinary.
        prompt_name: one of the model's prompts, put before every text.
        processes: worker processes (spawned, one thread each); 1 (the default) runs in this process. With
            ``ray``: Ray actors (default: one per CPU of the cluster).
        batch_size: texts per forward pass.
        chunk_rows: input records per chunk, the unit of memory, of resuming, and of the processes' work.
        on_error: "fail" stops at the first unusable record with an error naming it; "skip" leaves such
            records out and lists them in ``OUTPUT.skipped.jsonl``.
        variant: graph variant to run (default: the manifest's).
        threads: inference threads with ``processes=1`` (default: the backend's choice).
        progress: show a progress bar on stderr; None: when stderr is a terminal.
        ray: run the chunks on Ray Data (extra: ray; see ``edgesbert.bulk.ray_runner``): True for Ray's
            own choice (the cluster in RAY_ADDRESS, else a new local instance), or an address ("auto" for
            the cluster started on this machine with ``ray start --head``, "ray://host:10001").
        chunk_tokens: cut each text into windows of this many of the model's tokens (``chunk_overlap``
            shared by neighbours), one output row each, with ``chunk`` (its number within the text, from
            0) and ``start``/``stop`` (its character span in the text) beside ``id``; a text that fits
            is one row. None (the default): one row per text, truncated to the model's length.
        chunk_overlap: tokens each window shares with the next (with ``chunk_tokens``).

    Returns:
        The rows written and skipped, the seconds taken and the output path.

    Raises:
        ValueError: a bad option, an unreadable input, or (``on_error="fail"``) an unusable record.
    """
    spec = ModelSpec(Path(folder), variant, threads, batch_size, prompt_name)
    columns = Columns((text_column,) if text_column else Columns().text, id_column, text_column is not None)
    job = _job(
        ModelKind.BI_ENCODER, spec, input, output, columns, precision, processes, chunk_rows, on_error,
        progress, ray,
    )  # fmt: skip
    if chunk_tokens is not None:
        job = replace(job, windows=Windows(spec.folder, chunk_tokens, chunk_overlap, prompt_name))
    return run_job(job)


def score_pairs(
    folder: str | Path,
    input: str | Path,
    output: str | Path,
    *,
    query_column: str = "query",
    document_column: str = "document",
    id_column: str | None = None,
    processes: int | None = None,
    batch_size: int = 64,
    chunk_rows: int = 10_000,
    on_error: OnError | str = OnError.FAIL,
    variant: str | None = None,
    threads: int | None = None,
    progress: bool | None = None,
    ray: bool | str = False,
) -> BulkResult:
    """Score every (query, document) pair of ``input`` with the cross-encoder in ``folder``, into ``output``.

    As ``embed_corpus``, for ``.jsonl``, ``.csv``, ``.tsv`` or ``.parquet`` pairs; the output has ``id`` and
    ``score``: float32, ``predict``'s scores (the model's activation applied), or a fixed-size list of
    them for a model with several labels.
    """
    spec = ModelSpec(Path(folder), variant, threads, batch_size)
    columns = Columns((query_column, document_column), id_column, chosen=True)
    return run_job(
        _job(
            ModelKind.CROSS_ENCODER,
            spec,
            input,
            output,
            columns,
            "float32",
            processes,
            chunk_rows,
            on_error,
            progress,
            ray,
        )
    )


def _job(
    kind: ModelKind,
    spec: ModelSpec,
    input: str | Path,
    output: str | Path,
    columns: Columns,
    precision: OutputPrecision | str,
    processes: int | None,
    chunk_rows: int,
    on_error: OnError | str,
    progress: bool | None,
    ray: bool | str,
) -> Job:
    precision = parse_precision(precision)
    try:
        on_error = OnError(on_error)
    except ValueError:
        raise ValueError(f"on_error must be 'fail' or 'skip', got {on_error!r}") from None
    return Job(
        kind,
        spec,
        Path(input),
        Path(output),
        columns,
        precision,
        processes,
        chunk_rows,
        on_error,
        progress,
        ray,
    )
