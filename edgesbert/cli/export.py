"""The commands that make and time a model folder, ``edgesbert export`` and ``edgesbert tune``.

The exporter (extra: export) and the timing code are imported only when one of them runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from edgesbert import DEFAULT_MODEL

OPTIMIZE_HELP = (
    "graph optimization: O1 basic, O2 + transformer fusions, O3 + approximate GELU, O4 = O3 in fp16 (GPU)"
)
QUANTIZE_HELP = (
    "add a variant (repeatable). onnx: int8 = dynamic int8, no calibration; int8-static = int8 activations "
    "too, calibrated on --calibration text (default: built-in real sentences); fp16 = half precision (GPU); "
    "int4-weights = 4-bit weights in groups (MatMulNBits). "
    "openvino: int8 = NNCF static int8 of weights and activations, calibrated like int8-static; "
    "int8-weights = int8 weights only, no calibration; int4-weights = 4-bit weights in groups (large models; "
    "see --int4-group-size, --int4-symmetric); fp16 = fp16 weights; bf16 = the fp32 graph run in "
    "bf16 on CPUs with AMX or AVX-512 BF16 (opt-in)"
)
PRESET_HELP = "int8 weight settings for an instruction set (default: detected from this CPU)"


def add_export_commands(commands: Any) -> None:
    """Add ``export`` and ``tune`` to the subcommands ``commands`` (argparse's subparsers)."""
    export = commands.add_parser("export", help="export and validate a model into a model folder")
    export.add_argument("model", nargs="?", default=DEFAULT_MODEL, help=f"folder or hub id ({DEFAULT_MODEL})")
    export.add_argument("--output", "-o", type=Path, help="model folder to write (exported/NAME)")
    export.add_argument("--backend", default="onnx", choices=["onnx", "openvino"], help="what to export to")
    export.add_argument("--kind", choices=["bi-encoder", "cross-encoder"], help="default: detected")
    export.add_argument("--optimize", choices=["O1", "O2", "O3", "O4"], help=OPTIMIZE_HELP)
    export.add_argument(
        "--quantize",
        action="append",
        choices=["int8", "int8-static", "int8-weights", "int4-weights", "fp16", "bf16"],
        default=[],
        help=QUANTIZE_HELP,
    )
    export.add_argument("--int8-preset", choices=["arm64", "avx2", "avx512", "avx512_vnni"], help=PRESET_HELP)
    export.add_argument("--calibration", type=Path, help="calibration text: .txt, .csv, .tsv or .jsonl")
    export.add_argument("--calibration-column", help="csv/tsv column or jsonl field; 'q,a' for pairs")
    export.add_argument("--calibration-samples", type=int, default=256, help="texts to calibrate on (256)")
    export.add_argument("--calibration-method", choices=["minmax", "entropy", "percentile"], default="minmax")
    export.add_argument("--static-format", choices=["qoperator", "qdq"], default="qoperator")
    export.add_argument("--int4-group-size", type=int, default=128, help="int4-weights: inputs a scale (128)")
    export.add_argument(
        "--int4-symmetric", action="store_true", help="int4-weights: no zero points (smaller, less exact)"
    )
    export.add_argument("--max-abs-diff", type=float, default=1e-4, help="lossless variants (1e-4)")
    export.add_argument("--max-spearman-drop", type=float, default=0.01, help="bi-encoders, STSb (0.01)")
    export.add_argument("--min-cosine", type=float, default=0.9, help="lossy bi-encoders: mean cosine (0.9)")
    export.add_argument("--min-score-spearman", type=float, default=0.98, help="lossy cross-encoders (0.98)")
    export.add_argument("--validation-size", type=int, default=512, help="real pairs to validate on (512)")
    export.add_argument(
        "--static-shapes",
        type=_shapes,
        default=(),
        help="fixed BATCHxSEQUENCE shapes to compile for, e.g. 1x128,1x256 (NPUs); inputs padded to fit",
    )
    export.add_argument(
        "--with-tokenizer",
        action="store_true",
        help="also write each variant with its tokenizer inside: strings in, embeddings or scores out "
        "(ONNX: onnxruntime-extensions ops; OpenVINO: openvino-tokenizers), for apps without a tokenizer",
    )
    export.add_argument(
        "--packed",
        action="store_true",
        help="also write packed graphs (BERT family): several texts per row, no padding; fp32 and each int8",
    )
    export.add_argument(
        "--static",
        action="store_true",
        help="also write static variants (bi-encoders): a token table distilled from the model, in float32 "
        "and int8, run with numpy alone (no onnxruntime or OpenVINO); far faster, less accurate, never the "
        "default: run it with --variant static",
    )
    export.add_argument("--static-dimensions", type=int, default=256, help="the static table's width (256)")
    export.add_argument(
        "--static-max-spearman-drop", type=float, default=0.3, help="static variants, STSb (0.3)"
    )
    export.add_argument(
        "--no-memory-check",
        action="store_true",
        help="export even where the model looks too large for the memory available (4x its float32 weights)",
    )
    export.add_argument(
        "--tune", action="store_true", help="then time the variants here and record the fastest (see tune)"
    )
    export.add_argument("--tune-seconds", type=float, default=2.0, help=argparse.SUPPRESS)
    export.set_defaults(run=_export)

    tune = commands.add_parser(
        "tune",
        help="time every variant on this CPU and make the fastest the default here and on CPUs with the "
        "same flags (written to edgesbert.tuned.json; the graphs and manifest stay as they are)",
    )
    tune.add_argument("folder", type=Path, help="an exported model folder")
    tune.add_argument(
        "--seconds", type=float, default=2.0, help="timing per variant, hint and text length (2)"
    )
    tune.add_argument("--threads", type=int, help="inference threads (default: all cores)")
    tune.set_defaults(run=_tune)


def _export(args: argparse.Namespace) -> None:
    from edgesbert.errors import PartialExportError
    from edgesbert.exporters import Quantization, Tolerance, export_model

    local = Path(args.model)
    name = local.resolve().name if local.exists() else args.model.rstrip("/").split("/")[-1]
    output = args.output or Path("exported") / name
    print(f"exporting {args.model} to {output} ...", file=sys.stderr)
    _show_progress()
    try:
        export_model(
            args.model,
            output,
            backend=args.backend,
            optimize=args.optimize,
            quantize=args.quantize,
            quantization=Quantization(
                preset=args.int8_preset,
                calibration=args.calibration,
                column=args.calibration_column,
                samples=args.calibration_samples,
                method=args.calibration_method,
                static_format=args.static_format,
                int4_group_size=args.int4_group_size,
                int4_symmetric=args.int4_symmetric,
            ),
            kind=args.kind,
            tolerance=Tolerance(
                max_abs_diff=args.max_abs_diff,
                max_spearman_drop=args.max_spearman_drop,
                min_mean_cosine=args.min_cosine,
                min_score_spearman=args.min_score_spearman,
                static_max_spearman_drop=args.static_max_spearman_drop,
            ),
            validation_size=args.validation_size,
            static_shapes=args.static_shapes,
            tokenizer_in_graph=args.with_tokenizer,
            packed=args.packed,
            static=args.static,
            static_dimensions=args.static_dimensions,
            check_memory=not args.no_memory_check,
        )
    except PartialExportError:
        _describe(args, output)
        raise
    _describe(args, output)
    if args.tune:
        _tune(argparse.Namespace(folder=Path(output), seconds=args.tune_seconds, threads=None))


def _show_progress() -> None:
    """The exporter's progress lines on stderr (a line per phase, or a running timer on a terminal)."""
    import logging

    class Stderr(logging.StreamHandler):
        def emit(self, record: logging.LogRecord) -> None:
            self.stream = sys.stderr  # the current one (tests swap it)
            super().emit(record)

    handler = Stderr()
    handler.setFormatter(logging.Formatter("edgesbert: %(message)s"))
    logger = logging.getLogger("edgesbert.export")
    logger.handlers = [handler]
    logger.setLevel(logging.INFO)
    logger.propagate = False


def _describe(args: argparse.Namespace, output: Path) -> None:
    """The validation table of what was written, and each variant's recipe."""
    from edgesbert.cli.text import recipe_lines, unsteady_lines, validation_table
    from edgesbert.runtime.manifest import Manifest

    manifest = Manifest.load(output)
    print(f"wrote {output}")
    print(validation_table(manifest, Path(output)))
    print("* the default variant: the best validated one for CPUs")
    for line in recipe_lines(manifest, detected_preset=not args.int8_preset) + unsteady_lines(manifest):
        print(line)


def _shapes(text: str) -> list[tuple[int, int]]:
    try:
        return [(int(b), int(s)) for b, s in (part.lower().split("x") for part in text.split(","))]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected BATCHxSEQUENCE[,BATCHxSEQUENCE...], got {text!r}"
        ) from None


def _tune(args: argparse.Namespace) -> None:
    from edgesbert.cli.text import tuning_table
    from edgesbert.tune import tune

    result = tune(args.folder, seconds=args.seconds, threads=args.threads, say=_say)
    print(tuning_table(result))


def _say(message: str) -> None:
    print(f"edgesbert: {message}", file=sys.stderr, flush=True)
