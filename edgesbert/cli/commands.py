"""The edgesbert command: export, tune, encode, rank, embed, score, info, verify and serve.

Only argparse is imported at start, so ``edgesbert --help`` is instant; each command imports what it needs.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from edgesbert import __version__
from edgesbert.cli.bulk import add_bulk_commands
from edgesbert.cli.export import add_export_commands
from edgesbert.cli.files import at_least_one
from edgesbert.cli.ray_serve import add_ray_serve_options, ray_serve_options
from edgesbert.errors import EdgesbertError
from edgesbert.folders import Interrupted

if TYPE_CHECKING:
    from edgesbert.runtime.manifest import Manifest
    from edgesbert.runtime.models import ExportedModel
    from edgesbert.runtime.verify import FileCheck


#: commands that take texts, and the positional argument holding them
TEXT_ARGUMENTS = {"encode": "texts", "rank": "documents"}
#: what argparse takes for a negative number, which is a positional value, not an option
_NUMBER = re.compile(r"-\d+|-\d*\.\d+")
HINT_HELP = (
    "latency: one run at a time on all threads; throughput: single-threaded runs side by side "
    "(onnxruntime and OpenVINO)"
)
INPUT_HELP = (
    "read the texts from FILE: .txt (one per line, blank lines skipped), .jsonl, .csv or .tsv "
    "(see --text-column); - reads stdin lines"
)


def _run_options(args: argparse.Namespace) -> dict:
    names = ("variant", "device", "threads", "performance_hint", "cache_dir")
    return {**{name: getattr(args, name) for name in names}, "verify": not args.no_verify}


def _say_choice(model: ExportedModel) -> None:
    """Which variant ran and why, and on which CPU, where the command did not name one (to stderr)."""
    from edgesbert.runtime.cpu import this_cpu

    if model.chosen_because != "asked for by name":
        why, cpu = f"{model.variant.name}, {model.chosen_because}", this_cpu().describe()
        print(f"edgesbert: ran {why}; this CPU: {cpu}", file=sys.stderr)


def _encode(args: argparse.Namespace) -> None:
    from edgesbert.cli.files import check_output, input_texts, show_progress, write_embeddings
    from edgesbert.cli.text import SHOWN_TEXTS, print_embeddings, truncated_note, write_embeddings_json
    from edgesbert.runtime import BiEncoder

    if args.output is not None:
        check_output(args.output)  # before the work: a path that cannot be written fails at once
    texts = input_texts(args, args.texts)
    model = BiEncoder(args.folder, **_run_options(args))
    embeddings = model.encode(
        texts,
        batch_size=args.batch_size,
        normalize_embeddings=args.normalize,
        prompt_name=args.prompt_name,
        precision=args.precision,
        show_progress_bar=show_progress(len(texts)),
        long_texts=args.long_texts,
        chunk_overlap=args.chunk_overlap,
    )
    if args.long_texts == "truncate":  # say what was cut: nothing is lost without a word
        prefix, limit = model.prompt_text(args.prompt_name), model.max_seq_length
        cut = sum(count > limit for count in model.tokenizer.token_counts([prefix + t for t in texts]))
        if cut:
            print(truncated_note(cut, len(texts), limit), file=sys.stderr)
    if args.output is not None:
        write_embeddings(args.output, texts, embeddings)
        shape = " x ".join(map(str, embeddings.shape))
        print(f"wrote {len(texts)} embeddings ({shape}, {args.precision}) to {args.output}", file=sys.stderr)
    elif args.json:
        write_embeddings_json(texts, embeddings, sys.stdout)
    else:
        _say_choice(model)
        print_embeddings(texts, embeddings, model.variant.name, args.precision)
        if len(texts) <= SHOWN_TEXTS and args.precision == "float32":  # a matrix of a few texts, as floats
            print(f"similarity ({model.similarity_fn_name.value}):")
            print(model.similarity(embeddings, embeddings))


def _rank(args: argparse.Namespace) -> None:
    from edgesbert.cli.files import input_texts, show_progress
    from edgesbert.runtime import load

    documents = input_texts(args, args.documents)
    model = load(args.folder, **_run_options(args))
    results = model.rank(
        args.query,
        documents,
        top_k=args.top_k,
        return_documents=True,
        batch_size=args.batch_size,
        show_progress_bar=show_progress(len(documents)),
    )
    if args.json:
        print(json.dumps([{"corpus_id": r.corpus_id, "score": r.score, "text": r.text} for r in results]))
        return
    _say_choice(model)
    for position, result in enumerate(results, 1):
        print(f"{position:>3}. {result.score:.4f}  [{result.corpus_id}] {result.text}")


def _info(args: argparse.Namespace) -> None:
    from edgesbert.cli.text import print_description, recipe_lines, unsteady_lines, validation_table
    from edgesbert.runtime.manifest import Manifest
    from edgesbert.runtime.verify import check_folder

    manifest = Manifest.load(args.folder)
    if args.json:
        print(json.dumps(manifest.to_dict(), indent=2))
        return
    print_description(manifest, args.folder)
    print()
    print(validation_table(manifest, args.folder))
    for line in recipe_lines(manifest) + unsteady_lines(manifest):
        print(line)
    _report_checks(args.folder, manifest, check_folder(args.folder, manifest))


def _verify(args: argparse.Namespace) -> None:
    from edgesbert.cli.text import file_table
    from edgesbert.runtime.manifest import Manifest
    from edgesbert.runtime.verify import check_folder

    manifest = Manifest.load(args.folder)
    checks = check_folder(args.folder, manifest)
    print(file_table(checks, manifest))
    _report_checks(args.folder, manifest, checks)
    if args.numbers:
        _numbers(args.folder, manifest)


def _numbers(folder: Path, manifest: Manifest) -> None:
    """Every variant against the folder's fp32 graph on this CPU; an error if the default fails here."""
    from edgesbert.cli.text import numbers_table
    from edgesbert.runtime.cpu import this_cpu
    from edgesbert.runtime.numbers import measure_numbers

    cpu = this_cpu()
    numbers = measure_numbers(folder)
    print(f"\nnumbers on this CPU: {cpu.describe()}")
    print(numbers_table(numbers, manifest))
    default = next(n for n in numbers if n.variant == manifest.default_variant)
    if not (default.steady and default.as_validated):
        why = "depends on its batch" if not default.steady else "differs from fp32 more than it was validated"
        raise EdgesbertError(
            f"the folder's default variant {default.variant!r} {why} on this CPU; load another variant "
            "(variant=..., --variant) or export the folder here"
        )


def _serve(args: argparse.Namespace) -> None:
    from edgesbert.serve import ModelSource, ServerSettings, serve
    from edgesbert.serve.logs import LogFormat

    log_format = LogFormat(args.log_format)
    settings = ServerSettings(
        models=tuple(ModelSource.parse(spec) for spec in args.folders),
        host=args.host,
        port=args.port,
        max_batch_tokens=args.max_batch_tokens,
        max_batch_requests=args.max_batch_requests,
        max_client_batch_size=args.max_client_batch_size,
        max_client_batch_tokens=args.max_client_batch_tokens,
        max_concurrent_requests=args.max_concurrent_requests,
        payload_limit=args.payload_limit,
        auto_truncate=not args.no_auto_truncate,
        api_key=args.api_key or ServerSettings.api_key_from_environment(),
        cors_origins=tuple(args.cors_origin),
        access_log=args.access_log or log_format is LogFormat.JSON,
        variant=args.variant,
        threads=args.threads,
        performance_hint=args.performance_hint,
        device=args.device,
        calibration=args.calibration,
    )
    ray_options = ray_serve_options(args)
    if ray_options is None:
        status = serve(settings, log_format=log_format)
    else:
        from edgesbert.serve.ray_serve import serve_on_ray

        status = serve_on_ray(settings, ray_options, log_format=log_format)
    if status:
        raise SystemExit(status)


def _report_checks(folder: Path, manifest: Manifest, checks: list[FileCheck]) -> None:
    """Raise ModelLoadError naming every missing or damaged file; else say that all of them match."""
    from edgesbert.errors import ModelLoadError
    from edgesbert.runtime.verify import FileState, problems_message

    failed = [c for c in checks if c.failed]
    if failed:
        raise ModelLoadError(problems_message(folder, manifest, failed))
    verified = sum(c.state is FileState.OK for c in checks)
    print(f"\n{verified} of {len(checks)} files match the checksums in the manifest", end="")
    print("" if verified == len(checks) else " (the others have none recorded)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(prog="edgesbert", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"edgesbert {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    add_export_commands(commands)

    def runtime_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("folder", type=Path, help="an exported model folder")
        command.add_argument("--variant", help="graph variant to run (default: the manifest's)")
        command.add_argument("--device", default="cpu", choices=["cpu", "gpu", "npu", "auto"])
        command.add_argument("--threads", type=int, help="inference threads (default: all cores)")
        command.add_argument("--performance-hint", choices=["latency", "throughput"], help=HINT_HELP)
        command.add_argument("--cache-dir", type=Path, help="OpenVINO compiled-model cache folder")
        command.add_argument(
            "--no-verify",
            action="store_true",
            help="skip checking the graph and tokenizer against the manifest's checksums (trusted folders)",
        )
        command.add_argument("--json", action="store_true", help="print JSON")
        command.add_argument("--input", "-i", metavar="FILE", help=INPUT_HELP)
        command.add_argument(
            "--text-column", metavar="NAME", help="the .jsonl field or .csv/.tsv column of the texts (text)"
        )
        command.add_argument(
            "--batch-size", type=at_least_one, default=32, metavar="N", help="texts per batch (32)"
        )

    encode = commands.add_parser("encode", help="embed texts with an exported bi-encoder")
    runtime_options(encode)
    encode.add_argument("texts", nargs="*", help="texts to embed, or - to read lines from stdin")
    encode.add_argument("--normalize", action="store_true", help="scale embeddings to unit length")
    encode.add_argument("--prompt-name", help="one of the model's prompts")
    encode.add_argument(
        "--precision",
        default="float32",
        choices=["float32", "int8", "uint8", "binary", "ubinary"],
        help="of the embeddings: int8/uint8 scale each dimension over these texts; binary/ubinary pack signs",
    )
    encode.add_argument(
        "--long-texts",
        default="truncate",
        choices=["truncate", "chunk", "error"],
        help="a text over the model's window: cut it (and say how many were), embed it as the mean of "
        "windows of its tokens, or stop with an error",
    )
    encode.add_argument(
        "--chunk-overlap", type=int, default=0, metavar="N", help="tokens shared by neighbouring windows (0)"
    )
    encode.add_argument(
        "--output",
        "-o",
        type=Path,
        metavar="FILE",
        help="write the embeddings to FILE: .npy, .jsonl (text and embedding per line) or .parquet (pyarrow)",
    )
    encode.set_defaults(run=_encode, parser=encode)

    rank = commands.add_parser(
        "rank", help="rank documents for a query (cross-encoder scores or bi-encoder similarity)"
    )
    runtime_options(rank)
    rank.add_argument("query")
    rank.add_argument("documents", nargs="*", help="documents, or - to read lines from stdin (or --input)")
    rank.add_argument("--top-k", type=int, help="show only the best K")
    rank.set_defaults(run=_rank, parser=rank)

    add_bulk_commands(commands)

    info = commands.add_parser("info", help="describe an exported model folder")
    info.add_argument("folder", type=Path)
    info.add_argument("--json", action="store_true", help="print the manifest as JSON")
    info.set_defaults(run=_info)

    verify = commands.add_parser("verify", help="check every file the export wrote against its manifest")
    verify.add_argument("folder", type=Path)
    verify.add_argument(
        "--numbers",
        action="store_true",
        help="also run every variant against the folder's fp32 graph on this CPU (agreement, batch effect); "
        "fails if the default depends on its batch here",
    )
    verify.set_defaults(run=_verify)

    serve = commands.add_parser(
        "serve", help="serve exported models over HTTP (TEI, OpenAI and Cohere APIs); extra: serve"
    )
    serve.add_argument("folders", nargs="+", help="exported model folders, each FOLDER or NAME=FOLDER")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1: this machine)")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument("--max-batch-tokens", type=int, default=16384, help="tokens per merged batch (16384)")
    serve.add_argument("--max-batch-requests", type=int, help="requests per merged batch (no limit)")
    serve.add_argument(
        "--max-client-batch-size", type=int, default=32, help="texts per TEI or Cohere request (32)"
    )
    serve.add_argument(
        "--max-client-batch-tokens", type=int, default=300_000, help="tokens per request before 413 (300000)"
    )
    serve.add_argument("--max-concurrent-requests", type=int, default=512, help="in flight before 429 (512)")
    serve.add_argument("--payload-limit", type=int, default=2_000_000, help="bytes per request body (2 MB)")
    serve.add_argument(
        "--no-auto-truncate", action="store_true", help="refuse over-long inputs unless asked to truncate"
    )
    serve.add_argument("--api-key", help="Bearer token asked for on all but /health ($EDGESBERT_API_KEY)")
    serve.add_argument("--cors-origin", action="append", default=[], help="allow this web origin (repeat)")
    serve.add_argument("--variant", help="graph variant to run (default: each manifest's)")
    serve.add_argument("--device", default="cpu", choices=["cpu", "gpu", "npu", "auto"])
    serve.add_argument("--threads", type=int, help="inference threads per model (default: all cores)")
    serve.add_argument("--performance-hint", choices=["latency", "throughput"], help=HINT_HELP)
    serve.add_argument("--calibration", type=Path, help="texts (one per line) that set int8/uint8 ranges")
    serve.add_argument("--access-log", action="store_true", help="log one line per request, with its id")
    serve.add_argument(
        "--log-format", choices=["text", "json"], default="text", help="json: one JSON object per line, "
        "an access line per request included"
    )  # fmt: skip
    add_ray_serve_options(serve)
    serve.set_defaults(run=_serve)
    return parser


def _parse(argv: Sequence[str] | None) -> argparse.Namespace:
    """The arguments; for encode and rank, texts after an option too (``encode FOLDER --json a b``).

    argparse fills a ``nargs="*"`` positional from the first run of positionals only (bpo-14191): later
    texts come back unrecognized and join the others here. Mistakes exit 2 with the usage, as argparse's.
    """
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    head, tail = (
        (extra[: extra.index("--")], extra[extra.index("--") + 1 :]) if "--" in extra else (extra, [])
    )
    options = [a for a in head if a.startswith("-") and a != "-" and not _NUMBER.fullmatch(a)]
    if options or (extra and args.command not in TEXT_ARGUMENTS):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command in TEXT_ARGUMENTS:
        from edgesbert.cli.files import usage_problem

        getattr(args, TEXT_ARGUMENTS[args.command]).extend(head + tail)
        problem = usage_problem(args)
        if problem is not None:
            args.parser.error(problem)
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = _parse(argv)
    try:
        args.run(args)
    except (EdgesbertError, ValueError, TypeError, OSError) as e:
        if isinstance(e, BrokenPipeError):
            return _reader_gone()
        # OSError: a file system problem the command did not foresee; still no traceback
        print(f"edgesbert {args.command}: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"edgesbert {args.command}: interrupted", file=sys.stderr)
        return 130
    except Interrupted as e:  # SIGTERM or SIGHUP while a folder was being written; none was left half-done
        print(f"edgesbert {args.command}: {e}", file=sys.stderr)
        return e.exit_status
    return 0


def _reader_gone() -> int:
    """The reader of our output went away (``| head``): stop quietly, as other command-line tools do."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # so that the final flush at exit does not fail again
    return 0
