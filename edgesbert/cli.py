"""The edgesbert command: export, encode, rank and info.

Only argparse is imported at start, so ``edgesbert --help`` is instant; each command imports what it needs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from edgesbert import DEFAULT_MODEL, __version__
from edgesbert.errors import EdgesbertError

if TYPE_CHECKING:
    from edgesbert.runtime.manifest import Manifest


def _export(args: argparse.Namespace) -> None:
    from edgesbert.exporters import Tolerance, export_model

    local = Path(args.model)
    name = local.resolve().name if local.exists() else args.model.rstrip("/").split("/")[-1]
    output = args.output or Path("exported") / name
    print(f"exporting {args.model} to {output} ...", file=sys.stderr)
    manifest = export_model(
        args.model,
        output,
        preset=args.backend,
        kind=args.kind,
        tolerance=Tolerance(max_abs_diff=args.max_abs_diff),
        validation_size=args.validation_size,
    )
    print(f"wrote {output}")
    print(_validation_table(manifest))


def _validation_table(manifest: Manifest) -> str:
    columns = sorted({key for v in manifest.variants for key in v.validation})
    rows = [["variant", "file", "backend", "precision", *columns]]
    for v in manifest.variants:
        figures = [f"{v.validation[c]:.6g}" if c in v.validation else "" for c in columns]
        rows.append([v.name, v.file, v.backend, v.precision.value, *figures])
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join([lines[0], "  ".join("-" * w for w in widths), *lines[1:]])


def _texts(values: Sequence[str]) -> list[str]:
    """The texts given, or stdin's lines for a single ``-``."""
    if list(values) == ["-"]:
        return [line.rstrip("\n") for line in sys.stdin if line.strip()]
    return list(values)


def _encode(args: argparse.Namespace) -> None:
    import numpy as np

    from edgesbert.runtime import BiEncoder

    model = BiEncoder(args.folder, variant=args.variant, device=args.device, threads=args.threads)
    texts = _texts(args.texts)
    embeddings = model.encode(texts, normalize_embeddings=args.normalize, prompt_name=args.prompt_name)
    if args.json:
        print(json.dumps({"texts": texts, "embeddings": embeddings.tolist()}))
        return
    np.set_printoptions(precision=4, suppress=True, linewidth=110, floatmode="fixed")
    print(f"embeddings: {embeddings.shape[0]} x {embeddings.shape[1]} ({model.variant.name})")
    for text, vector in zip(texts, embeddings, strict=True):
        print(f"  {vector[:6]} ...  {text}")
    print(f"similarity ({model.similarity_fn_name.value}):")
    print(model.similarity(embeddings, embeddings))


def _rank(args: argparse.Namespace) -> None:
    from edgesbert.runtime import CrossEncoder

    model = CrossEncoder(args.folder, variant=args.variant, device=args.device, threads=args.threads)
    results = model.rank(args.query, _texts(args.documents), top_k=args.top_k, return_documents=True)
    if args.json:
        print(json.dumps([{"corpus_id": r.corpus_id, "score": r.score, "text": r.text} for r in results]))
        return
    for position, result in enumerate(results, 1):
        print(f"{position:>3}. {result.score:.4f}  [{result.corpus_id}] {result.text}")


def _info(args: argparse.Namespace) -> None:
    from edgesbert.runtime.manifest import Manifest

    manifest = Manifest.load(args.folder)
    if args.json:
        print(json.dumps(manifest.to_dict(), indent=2))
        return
    print(f"{args.folder}: {manifest.kind.value}, schema {manifest.schema_version}")
    print(f"  source        {manifest.provenance.source_model} (exported {manifest.provenance.exported_at})")
    print(f"  max length    {manifest.max_seq_length} tokens")
    if manifest.embedding:
        e = manifest.embedding
        inside = "inside the graph" if e.pooling_in_graph else "in the runtime"
        print(
            f"  embedding     {e.dimension} dims, {e.pooling.value} pooling {inside}, normalize={e.normalize}"
        )
        print(f"  similarity    {e.similarity.value}; prompts: {dict(e.prompts) or 'none'}")
    if manifest.classifier:
        c = manifest.classifier
        print(f"  labels        {c.num_labels} {list(c.labels)}, activation {c.activation.value}")
    versions = ", ".join(f"{k} {v}" for k, v in manifest.provenance.versions.items())
    print(f"  versions      {versions}")
    print(f"  default       {manifest.default_variant}\n")
    print(_validation_table(manifest))


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command."""
    parser = argparse.ArgumentParser(prog="edgesbert", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"edgesbert {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    export = commands.add_parser("export", help="export and validate a model into a model folder")
    export.add_argument("model", nargs="?", default=DEFAULT_MODEL, help=f"folder or hub id ({DEFAULT_MODEL})")
    export.add_argument("--output", "-o", type=Path, help="model folder to write (exported/NAME)")
    export.add_argument("--backend", default="onnx", choices=["onnx"], help="what to export to")
    export.add_argument("--kind", choices=["bi-encoder", "cross-encoder"], help="default: detected")
    export.add_argument("--max-abs-diff", type=float, default=1e-4, help="validation tolerance (1e-4)")
    export.add_argument("--validation-size", type=int, default=512, help="real sentences to validate on")
    export.set_defaults(run=_export)

    def runtime_options(command: argparse.ArgumentParser) -> None:
        command.add_argument("folder", type=Path, help="an exported model folder")
        command.add_argument("--variant", help="graph variant to run (default: the manifest's)")
        command.add_argument("--device", default="cpu", choices=["cpu", "gpu", "npu"])
        command.add_argument("--threads", type=int, help="intra-op threads (default: all cores)")
        command.add_argument("--json", action="store_true", help="print JSON")

    encode = commands.add_parser("encode", help="embed texts with an exported bi-encoder")
    runtime_options(encode)
    encode.add_argument("texts", nargs="+", help="texts to embed, or - to read lines from stdin")
    encode.add_argument("--normalize", action="store_true", help="scale embeddings to unit length")
    encode.add_argument("--prompt-name", help="one of the model's prompts")
    encode.set_defaults(run=_encode)

    rank = commands.add_parser("rank", help="rank documents for a query with an exported cross-encoder")
    runtime_options(rank)
    rank.add_argument("query")
    rank.add_argument("documents", nargs="+", help="documents, or - to read lines from stdin")
    rank.add_argument("--top-k", type=int, help="show only the best K")
    rank.set_defaults(run=_rank)

    info = commands.add_parser("info", help="describe an exported model folder")
    info.add_argument("folder", type=Path)
    info.add_argument("--json", action="store_true", help="print the manifest as JSON")
    info.set_defaults(run=_info)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        args.run(args)
    except (EdgesbertError, ValueError, TypeError) as e:
        print(f"edgesbert {args.command}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # a file system problem the command did not foresee: still no traceback
        print(f"edgesbert {args.command}: error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
