"""``edgesbert tune``: time every candidate variant of a folder on this CPU and record the fastest.

Each variant that may be a default (``runtime.tuning.tunable``) runs under the backend's default hint and
under the throughput hint, on short texts (the packaged English sentences, batches of 32), long ones
(eight sentences joined, about 150 tokens) and both shuffled together in calls of 32 (as a server's
batcher forms them, where padding costs most and packed graphs gain most), a third of ``seconds`` each,
after a warm-up; then 30 one-text calls give the latency. A packed variant is timed so with each row
length of ``ROW_TOKENS`` its graph takes (0, rows as long as each pass's longest text, only on a backend
that packs so by default: elsewhere a text's row would change with its batch, and so its int8 output).
The figure that decides is sentences per second over the three sets (their total count over their total
time). The manifest's default keeps its place unless another candidate beats it by ``MARGIN``: a noisy
machine must not flip the default between runs.
First every variant's numbers are measured against the folder's fp32 graph here (``runtime.numbers``): a
candidate whose output depends on its batch on this CPU, or that strays from fp32 more than it did from
PyTorch at export, is not timed and cannot be chosen, whatever the manifest's default. The result goes to
``edgesbert.tuned.json`` (see ``runtime.tuning``), beside the figures of other CPU kinds.
"""

from __future__ import annotations

import json
import random
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgesbert.data import english_sentences
from edgesbert.errors import EdgesbertError
from edgesbert.folders import replace_atomically
from edgesbert.runtime import BiEncoder, load
from edgesbert.runtime.cpu import Cpu, this_cpu
from edgesbert.runtime.manifest import Manifest
from edgesbert.runtime.numbers import VariantNumbers, measure_numbers
from edgesbert.runtime.tuning import TUNED_FILE, TUNED_FORMAT, manifest_sha256, read_tuned, tunable

HINTS: tuple[str | None, ...] = (None, "throughput")
#: how much faster than the manifest's default another candidate must be to replace it
MARGIN = 0.05
BATCH_SIZE = 32
ONE_TEXT_CALLS = 30
#: the row lengths a packed variant is timed with (OpenVINO's default 64 and onnxruntime's 0 among them)
ROW_TOKENS = (0, 32, 64, 128)


@dataclass(frozen=True)
class Figures:
    """One candidate's measurements; ``error`` says why it could not run here (its figures are then 0)."""

    variant: str
    performance_hint: str | None
    sentences_per_s: float = 0.0
    short_per_s: float = 0.0
    long_per_s: float = 0.0
    unsorted_per_s: float = 0.0  # short and long shuffled, one call per batch
    one_p50_ms: float = 0.0
    error: str | None = None
    row_tokens: int | None = None  # a packed variant's row length (0: each pass's longest text)


@dataclass(frozen=True)
class TuneResult:
    """Every candidate's figures, the choice, the manifest's default and the CPU they were measured on."""

    folder: Path
    cpu: Cpu
    figures: tuple[Figures, ...]
    choice: Figures
    default_variant: str
    numbers: tuple[VariantNumbers, ...] = ()  # every variant against the fp32 graph here; () if none


def tune(
    folder: str | Path,
    *,
    seconds: float = 2.0,
    threads: int | None = None,
    say: Callable[[str], None] = lambda _: None,
) -> TuneResult:
    """Measure the candidates of ``folder`` on this CPU, record them and the choice, and return them.

    Raises:
        EdgesbertError: no candidate could run here.
    """
    folder = Path(folder)
    manifest = Manifest.load(folder)
    short = list(english_sentences()[:256])
    long = [" ".join(short[i : i + 8]) for i in range(0, len(short), 8)]
    say("measuring every variant against the fp32 graph on this CPU")
    try:
        numbers = {n.variant: n for n in measure_numbers(folder)}
    except EdgesbertError as e:  # no plain fp32 graph to compare with: the export's figures stand
        say(f"numbers not measured: {e}")
        numbers = {}
    measured = []
    for variant in (v for v in manifest.variants if tunable(v)):
        unfit = _unfit_here(numbers.get(variant.name))
        for hint in HINTS:
            if unfit:
                measured.append(Figures(variant.name, hint, error=unfit))
                continue
            say(f"timing {variant.name} ({hint or 'default'} hint)")
            measured.extend(_measure(folder, variant.name, hint, threads, seconds, short, long))
    ran = [f for f in measured if f.error is None]
    if not ran:
        reasons = "; ".join(f"{f.variant}: {f.error}" for f in measured) or "it has no candidate variant"
        raise EdgesbertError(f"no variant of {folder} could be timed here: {reasons}")
    best = max(ran, key=lambda f: f.sentences_per_s)
    defaults = [f for f in ran if f.variant == manifest.default_variant]
    default = max(defaults, key=lambda f: f.sentences_per_s, default=None)
    choice = default if default and best.sentences_per_s < default.sentences_per_s * (1 + MARGIN) else best
    result = TuneResult(
        folder, this_cpu(), tuple(measured), choice, manifest.default_variant, tuple(numbers.values())
    )
    _record(result)
    return result


def _unfit_here(numbers: VariantNumbers | None) -> str | None:
    """Why a variant may not be chosen on this CPU, from its numbers here; None if it may."""
    if numbers is None or numbers.error is not None:
        return None  # timing it says whether it runs here
    if not numbers.steady:
        return f"its output depends on its batch on this CPU (batch effect {numbers.batch_effect:.6g})"
    if not numbers.as_validated:
        agreement = numbers.mean_agreement
        return f"it strays from fp32 here more than it did from PyTorch at export ({agreement:.6g})"
    return None


def _measure(
    folder: Path,
    variant: str,
    hint: str | None,
    threads: int | None,
    seconds: float,
    short: list[str],
    long: list[str],
) -> list[Figures]:
    """The figures of ``variant`` under ``hint``: one, or one per row length of a packed variant."""
    try:
        model = load(folder, variant=variant, performance_hint=hint, threads=threads)
    except EdgesbertError as e:  # a backend that is not installed, a device it cannot use
        return [Figures(variant, hint, error=str(e).splitlines()[0])]
    try:
        if isinstance(model, BiEncoder):

            def run(texts: Sequence[str]) -> object:
                return model.encode(list(texts), batch_size=BATCH_SIZE)
        else:

            def run(texts: Sequence[str]) -> object:
                pairs = [(short[i % len(short)], text) for i, text in enumerate(texts)]
                return model.predict(pairs, batch_size=BATCH_SIZE)

        if not model.variant.packed:
            return [_timed(run, variant, hint, seconds, short, long)]
        figures = []  # rows of each pass's longest text only where that is the backend's own way (see pack)
        for rows in (r for r in ROW_TOKENS if r <= model.max_seq_length and (r or not model.row_tokens)):
            model.row_tokens = rows
            figures.append(replace(_timed(run, variant, hint, seconds, short, long), row_tokens=rows))
        return figures
    finally:
        model.close()


def _timed(
    run: Callable[[Sequence[str]], object],
    variant: str,
    hint: str | None,
    seconds: float,
    short: list[str],
    long: list[str],
) -> Figures:
    """``run`` timed on the three sets, then on one text at a time."""
    run(short[:BATCH_SIZE] + long[:BATCH_SIZE])  # warm-up: first runs compile and allocate
    short_s = _seconds_per_text(run, short, seconds / 3)
    long_s = _seconds_per_text(run, long, seconds / 3)
    unsorted = short + long
    random.Random(0).shuffle(unsorted)

    def in_calls(texts: Sequence[str]) -> None:
        for start in range(0, len(texts), BATCH_SIZE):
            run(texts[start : start + BATCH_SIZE])

    unsorted_s = _seconds_per_text(in_calls, unsorted, seconds / 3)
    one = []
    for text in short[:ONE_TEXT_CALLS]:
        start = time.perf_counter()
        run([text])
        one.append(time.perf_counter() - start)
    texts = 2 * (len(short) + len(long))
    overall = texts / ((short_s + unsorted_s) * len(short) + (long_s + unsorted_s) * len(long))
    one_ms = statistics.median(one) * 1000
    return Figures(variant, hint, overall, 1 / short_s, 1 / long_s, 1 / unsorted_s, one_ms)


def _seconds_per_text(run: Callable[[Sequence[str]], object], texts: list[str], budget: float) -> float:
    """Seconds per text: whole passes over ``texts`` until ``budget`` seconds have gone (at least one)."""
    passes, start = 0, time.perf_counter()
    while True:
        run(texts)
        passes += 1
        elapsed = time.perf_counter() - start
        if elapsed >= budget:
            return elapsed / (passes * len(texts))


def _record(result: TuneResult) -> None:
    """Write this CPU's entry into the folder's tuned file (other CPU kinds' entries kept), atomically."""
    sha = manifest_sha256(result.folder)
    data = read_tuned(result.folder)
    machines = data["machines"] if data and data.get("manifest_sha256") == sha else {}
    machines[result.cpu.key] = {
        "cpu": result.cpu.name,
        "cores": result.cpu.cores,
        "measured_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "choice": {
            "variant": result.choice.variant,
            "performance_hint": result.choice.performance_hint,
            "row_tokens": result.choice.row_tokens,
        },
        "figures": [_rounded(asdict(f)) for f in result.figures],
        "numbers": [_rounded(asdict(n), 6) for n in result.numbers],
    }
    record: dict[str, Any] = {"format": TUNED_FORMAT, "manifest_sha256": sha, "machines": machines}
    text = json.dumps(record, indent=2) + "\n"
    replace_atomically(result.folder / TUNED_FILE, lambda path: path.write_text(text, encoding="utf-8"))


def _rounded(figures: dict[str, Any], digits: int = 3) -> dict[str, Any]:
    """Floats rounded; NaN (a figure not measured) as null, which JSON has."""
    return {
        k: (None if v != v else round(v, digits)) if isinstance(v, float) else v for k, v in figures.items()
    }
