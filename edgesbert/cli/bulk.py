"""The corpus commands, ``edgesbert embed`` and ``edgesbert score``: their options and how they run.

They are ``edgesbert.bulk.embed_corpus`` and ``score_pairs`` on the command line (extra: bulk; ``--ray``:
extra ray), imported only when one of them runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from edgesbert.cli.files import at_least_one

RAY_HELP = (
    "run on Ray Data (extra: ray): alone, the cluster in RAY_ADDRESS or else a new local instance; 'auto', "
    "the cluster started here by `ray start --head`; or a ray://HOST:10001 address"
)


def add_bulk_commands(commands: Any) -> None:
    """Add ``embed`` and ``score`` to the subcommands ``commands`` (argparse's subparsers)."""
    embed = commands.add_parser(
        "embed", help="embed a corpus file into Parquet, in resumable chunks (bi-encoders); extra: bulk"
    )
    _add_job_options(embed, "corpus: .txt (one text per line), .jsonl, .csv, .tsv or .parquet")
    embed.add_argument("--text-column", metavar="NAME", help="field or column of the texts (text)")
    embed.add_argument("--prompt-name", help="one of the model's prompts")
    embed.add_argument(
        "--precision",
        default="float32",
        choices=["float32", "int8", "uint8", "binary", "ubinary"],
        help="int8/uint8: ranges from the first 1000 rows, kept in the output's metadata; binary: sign bits",
    )
    embed.add_argument(
        "--chunk-tokens",
        type=int,
        metavar="N",
        help="one row per window of N tokens of each text, with its number (chunk) and span (start, stop)",
    )
    embed.add_argument("--chunk-overlap", type=int, default=0, metavar="M", help="tokens windows share (0)")
    embed.set_defaults(run=_embed)

    score = commands.add_parser(
        "score", help="score a file of (query, document) pairs into Parquet (cross-encoders); extra: bulk"
    )
    _add_job_options(score, "pairs: .jsonl, .csv, .tsv or .parquet")
    score.add_argument("--query-column", default="query", metavar="NAME", help="field or column (query)")
    score.add_argument("--document-column", default="document", metavar="NAME", help="(document)")
    score.set_defaults(run=_score)


def _add_job_options(command: argparse.ArgumentParser, formats: str) -> None:
    command.add_argument("folder", type=Path, help="an exported model folder")
    command.add_argument("--input", "-i", type=Path, required=True, metavar="FILE", help=formats)
    command.add_argument(
        "--output", "-o", type=Path, required=True, metavar="FILE", help="the .parquet file to write"
    )
    command.add_argument("--id-column", metavar="NAME", help="field or column of the ids (row numbers)")
    command.add_argument(
        "--processes",
        type=at_least_one,
        metavar="N",
        help="worker processes, one thread each (1: this process); with --ray, actors (one per CPU)",
    )
    command.add_argument("--ray", nargs="?", const=True, default=False, metavar="ADDRESS", help=RAY_HELP)
    command.add_argument(
        "--batch-size", type=at_least_one, default=64, metavar="N", help="rows per batch (64)"
    )
    command.add_argument(
        "--chunk-rows", type=at_least_one, default=10_000, metavar="N", help="rows per shard (10000)"
    )
    command.add_argument(
        "--on-error",
        choices=["fail", "skip"],
        default="fail",
        help="bad rows: stop (fail), or leave them out, listed in OUTPUT.skipped.jsonl (skip)",
    )
    command.add_argument("--variant", help="graph variant to run (default: the manifest's)")
    command.add_argument("--threads", type=int, help="inference threads with --processes 1")


def _embed(args: argparse.Namespace) -> None:
    from edgesbert.bulk import embed_corpus

    result = embed_corpus(
        args.folder,
        args.input,
        args.output,
        text_column=args.text_column,
        id_column=args.id_column,
        precision=args.precision,
        prompt_name=args.prompt_name,
        chunk_tokens=args.chunk_tokens,
        chunk_overlap=args.chunk_overlap,
        **_job_options(args),
    )
    print(f"edgesbert embed: {result.summary()}", file=sys.stderr)


def _score(args: argparse.Namespace) -> None:
    from edgesbert.bulk import score_pairs

    result = score_pairs(
        args.folder,
        args.input,
        args.output,
        query_column=args.query_column,
        document_column=args.document_column,
        id_column=args.id_column,
        **_job_options(args),
    )
    print(f"edgesbert score: {result.summary()}", file=sys.stderr)


def _job_options(args: argparse.Namespace) -> dict[str, Any]:
    names = ("processes", "ray", "batch_size", "chunk_rows", "on_error", "variant", "threads")
    return {name: getattr(args, name) for name in names}
