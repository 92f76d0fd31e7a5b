"""The suite's report: figures in, the targets table, a Markdown report, its JSON and two PNG plots out.

The files are named after the CPU's kind (``suite-amd-avx2.md``, ``suite-intel-avx512-vnni.md``,
``suite-intel-amx.md``; benchmarks.common.machine.cpu_kind), so that the results of each kind of CPU stay
side by side. The tables and
the reading of the figures are in benchmarks/suite/tables.py.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from benchmarks.suite.tables import (
    MARK,
    NAN,
    Entry,
    batch_table,
    best,
    best_hint,
    bi_table,
    cold,
    cold_table,
    cross_table,
    fmt,
    install_table,
    med,
    pick,
    ratio,
    scalar_rounds,
)

# --- targets --------------------------------------------------------------------------------------


def _row(
    target: str, measured: str, value: float, goal: float, higher: bool, absolute: bool = False
) -> dict[str, Any]:
    """One target: met or not, and by how much (relative to the goal, or as a difference)."""
    if math.isnan(value):
        return {"target": target, "measured": measured, "met": None, "by": "not measured"}
    met = value >= goal if higher else value <= goal
    if absolute:
        return {"target": target, "measured": measured, "met": met, "by": f"{value - goal:+.4f}"}
    change = value / goal - 1
    if higher:
        by = f"met, {change:+.0%} over" if met else f"not met, {-change:.0%} short"
    else:
        by = f"met, {-change:.0%} under" if met else f"not met, {change:.0%} over"
    return {"target": target, "measured": measured, "met": met, "by": by}


def targets(figures: dict[str, Any]) -> list[dict[str, Any]]:
    bi, cross, rows = figures["bi"], figures["cross"], []
    st, st_onnx = bi.get("st-torch"), bi.get("st-onnx")
    fastembed = bi.get("fastembed-edgesbert-onnx")
    int8, fp32 = pick(bi, "int8"), pick(bi, "fp32")
    if int8:
        e = bi[int8]
        label = f"{e['label']} ({MARK[best_hint(e, 'batch')]})"
        r, rho = ratio(e, st, "batch"), e.get("spearman", NAN)
        rows.append(
            _row("best int8 ≥ 5.0× ST torch throughput (batch 32)", f"{label}: {fmt(r, 2)}×", r, 5.0, True)
        )
        peers = [n for n in bi if n.startswith("st-")]
        if peers:
            fastest = max(peers, key=lambda n: best(bi[n], "batch")[0])
            r = ratio(e, bi[fastest], "batch")
            measured = f"{label}: {fmt(r, 2)}× {bi[fastest]['label']}"
            rows.append(_row("best int8 ≥ 1.5× the fastest ST backend (batch 32)", measured, r, 1.5, True))
        rows.append(_row("… with STSb-test Spearman ≥ 0.818", f"{rho:.4f}", rho, 0.818, True, absolute=True))
        lowest = min(_int8(bi), key=lambda n: med(scalar_rounds(bi[n], "latency_p50_ms")))
        p50 = med(scalar_rounds(bi[lowest], "latency_p50_ms"))
        measured = f"{bi[lowest]['label']} (L): {fmt(p50, 2)} ms"
        rows.append(_row("int8: one-sentence latency p50 ≤ 1.5 ms", measured, p50, 1.5, False))
    if fp32:
        e = bi[fp32]
        label = f"{e['label']} ({MARK[best_hint(e, 'batch')]})"
        for base, goal, name in ((st, 1.4, "ST torch"), (st_onnx, 1.2, "ST onnx"),
                                 (fastembed, 1.5, "fastembed on the same model.onnx")):  # fmt: skip
            r = ratio(e, base, "batch")
            rows.append(_row(f"best fp32 ≥ {goal}× {name}", f"{label}: {fmt(r, 2)}×", r, goal, True))
    runtime = {n: cold(e, "total_s") for n, e in bi.items() if n.startswith("edgesbert-")}
    runtime = {n: seconds for n, seconds in runtime.items() if not math.isnan(seconds)}
    if runtime:
        name = min(runtime, key=runtime.__getitem__)
        spread = f"{min(runtime.values()):.2f}–{max(runtime.values()):.2f} s over variants"
        st_cold = f"; ST torch {cold(st, 'total_s'):.2f} s" if st else ""
        names = {"import": "interpreter + imports", "load": "load", "first": "first encode"}
        phases = ", ".join(f"{label} {cold(bi[name], f'{k}_s'):.2f} s" for k, label in names.items())
        measured = f"{bi[name]['label']}: {runtime[name]:.2f} s ({phases}; {spread}{st_cold})"
        rows.append(
            _row(
                "runtime cold start (import, load, first encode) ≤ 0.3 s", measured, runtime[name], 0.3, False
            )
        )
    install = figures.get("install")
    if install:
        mb, st_mb = install["runtime"]["mb"], install["sentence-transformers"]["mb"]
        rows.append(_row("runtime install ≤ 200 MB", f"{mb:.1f} MB", mb, 200, False))
        rows.append(_row("runtime install ≤ 1/5 of ST's CPU install", f"1/{st_mb / mb:.1f} ({st_mb:.1f} MB)",
                         mb / st_mb, 0.2, False))  # fmt: skip
    st_cross = cross.get("st-cross-torch")
    ours = {n: e for n, e in cross.items() if n.startswith("edgesbert-")}
    if ours and st_cross:
        name = max(ours, key=lambda n: ratio(ours[n], st_cross, "rank_p50_ms", lower=True))
        rows += _cross_rows("fastest", ours[name], st_cross)
        for default in (n for n, e in ours.items() if e.get("default_variant") and n != name):
            rows += _cross_rows("the default variant", ours[default], st_cross)  # one per export folder
    return rows


def _cross_rows(which: str, e: Entry, st_cross: Entry) -> list[dict[str, Any]]:
    """Ranking speed against ST CrossEncoder torch, and how many top-10s are identical to its."""
    r = ratio(e, st_cross, "rank_p50_ms", lower=True)
    hint = best_hint(e, "rank_p50_ms", lower=True)
    label = f"{e['label']} ({MARK[hint]}, {which})"
    rows = [_row("cross-encoder: rank 100 documents ≥ 3× faster than ST CrossEncoder torch",
                 f"{label}: {fmt(r, 2)}×", r, 3.0, True)]  # fmt: skip
    same, total = e.get("same_top10", {}).get(hint), e.get("queries")
    if same is not None and total:
        rows.append(
            _row("… with the top 10 identical", f"{label}: {same}/{total} queries", same, total, True)
        )
    return rows


def _int8(bi: dict[str, Entry]) -> list[str]:
    return [n for n, e in bi.items() if n.startswith("edgesbert-") and e["precision"] == "int8"]


def targets_table(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["| target | measured | met | by how much |", "|---|---|---|---|"]
    for row in rows:
        met = {True: "**met**", False: "**not met**", None: "–"}[row["met"]]
        lines.append(f"| {row['target']} | {row['measured']} | {met} | {row['by']} |")
    return lines


# --- the report -----------------------------------------------------------------------------------


def method(s: dict[str, Any]) -> str:
    sentences = [
        "Method: `python -m benchmarks.suite` (`make bench`).",
        f"{s['texts']} unique sentences of {s['pairs']} STSb-test pairs, sorted longest first; every system "
        f"runs with {s['threads']} threads (torch.set_num_threads, onnxruntime intra-op threads, OpenVINO "
        "INFERENCE_NUM_THREADS, fastembed threads).",
        "Each system runs in fresh processes of `benchmarks.suite.worker`: edgesbert through "
        "`edgesbert.runtime.load(folder, variant=..., threads=..., performance_hint=...)` in the dev "
        "environment, the peers through benchmarks.suite.peers' loaders in .venv-peers.",
        f"Rounds: {s['rounds']}. In each, every system runs one speed process (bi-encoders, then "
        "cross-encoders, in an order rotated by one system per round), then every bi-encoder its cold "
        "starts (rotated likewise).",
        "Round 1 measures edgesbert's throughput figures under both performance hints; later rounds "
        "measure each figure only under the hint that won it in round 1.",
        "A speed process loads the system (each hint's model just before its first use, warmed up on one "
        "batch of the longest and one of the shortest texts) and times one pass over all texts at batch "
        f"{s['batch_size']}; the process's peak resident memory is read right then, before any other model "
        "is loaded (VmHWM from /proc/self/status: this process's own, not the parent's), so peak RSS is that "
        "of a process that loaded the system and embedded every text (latency hint for edgesbert).",
        f"Then, in the first {s['budget_rounds']} round(s) only (it is not among the targets), one pass "
        f"over the token-budget batches ({s['budget_batches']} consecutive cuts of the sorted "
        f"texts holding at most {s['token_budget']} padded tokens each, the same for every system, each "
        "passed as one call with batch_size = its length), then "
        f"{s['latency_calls']} one-sentence calls with sentences spread evenly over the lengths (p50, p99; "
        "latency hint), and for the edgesbert variants and ST torch "
        f"{s['batch_calls']} calls at each batch size of 8, 32 and 128 (samples spread over the lengths; "
        "median).",
        f"Cross-encoders: one pass over all pairs at batch {s['batch_size']}, then {s['rank_calls']} "
        f"rankings of {s['rank_docs']} documents (the query from the first column of a pair, the documents "
        f"from the second column of the next {s['rank_docs']} pairs).",
        "A cold start is a fresh process timed from the parent's clock just before it spawns the "
        "interpreter to the child's clock after its first embedding of one sentence, with stamps after "
        "the imports and after the load (files warm in the OS cache; OpenVINO compiles on every start); "
        f"{s['cold_runs']} per system in all.",
        "Figures are medians over rounds; a ratio (× ST torch) is the median over rounds of the two "
        "systems' ratio within the round, each at its best hint.",
        "Accuracy: STSb-test Spearman of the cosine similarities against the gold scores, and the mean "
        "cosine of each sentence's vector to the edgesbert PyTorch reference (fp32); for cross-encoders "
        "Spearman of the scores against the reference's, and for how many queries the top 10 documents "
        "come in exactly the order sentence-transformers' CrossEncoder torch gives them.",
        "File MB: the graph (xml + bin for OpenVINO) or the safetensors weights.",
        "Exports are cached under build/bench/exports and reused while the exporter, the tools and the "
        "model are unchanged.",
    ]
    return " ".join(sentences)


def write_report(figures: dict[str, Any], folder: Path) -> Path:
    """Write ``suite-<cpu kind>.md``, its ``.json`` and plots into ``folder``; returns the report's path."""
    folder.mkdir(parents=True, exist_ok=True)
    figures["targets"] = targets(figures)
    s = figures["settings"]
    from benchmarks.suite.plots import plot

    stem = f"suite-{figures['cpu_kind']}"
    plots = plot(figures, folder, stem)
    dev = ", ".join(f"{k} {v}" for k, v in figures["versions"]["dev"].items())
    peers = ", ".join(f"{k} {v}" for k, v in figures["versions"].get("peers", {}).items())
    lines = [
        "# Benchmark suite",
        "",
        f"Machine: {figures['machine']} ({figures.get('cpu_flags', '?')}). Bi-encoder: "
        f"{figures['model_name']} (`{figures['model']}`); cross-encoder: `{figures['cross_model']}`.",
        "",
        f"Versions: dev environment {dev}; peers environment {peers or '–'}.",
        "",
    ]
    if s["quick"]:
        lines += ["**Quick smoke run** (`--quick`): a subset, few calls; not for conclusions.", ""]
    lines += ['## Targets (issues 6 and 20, "Done when")', "", *targets_table(figures["targets"]), ""]
    lines += [
        "Where int8 time goes on this CPU, kernel by kernel (what limits the int8 targets): "
        "[int8-profile.md](int8-profile.md), `python -m benchmarks.int8.profile`. What bounds one-sentence "
        "latency and cold start (the runtime against a bare onnxruntime session and the libraries' own "
        "imports): [floors.md](floors.md), `python -m benchmarks.floors`.",
        "",
    ]
    legend = (
        "(L) / (T): the edgesbert performance hint that gave the figure, latency or throughput; the peers "
        "run with their defaults. Latency p50/p99: one sentence per call, latency hint."
    )
    lines += ["## Bi-encoders", "", *bi_table(figures["bi"]), "", legend, ""]
    if f"{stem}-speed-accuracy.png" in plots:
        lines += [f"![speed against accuracy]({stem}-speed-accuracy.png)", ""]
    lines += ["### Cold start", "", *cold_table(figures["bi"]), ""]
    if batch_table(figures["bi"]):
        lines += ["### Latency by batch size", "", *batch_table(figures["bi"]), ""]
    if f"{stem}-latency-batch.png" in plots:
        lines += [f"![latency by batch size]({stem}-latency-batch.png)", ""]
    if figures["cross"]:
        lines += ["## Cross-encoders", "", *cross_table(figures["cross"]), ""]
    if figures.get("install"):
        ratio_ = figures["install"]["ratio"]
        lines += ["## Install size", "", *install_table(figures["install"]), "",
                  f"sentence-transformers' CPU install is {ratio_:.1f}× the runtime's.", ""]  # fmt: skip
    lines += ["## Method", "", method(s), ""]
    if figures["notes"]:
        lines += ["## Notes", "", *(f"- {note}" for note in figures["notes"]), ""]
    lines += [f"The run took {figures['seconds'] / 60:.1f} minutes."]
    (folder / f"{stem}.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (folder / f"{stem}.json").write_text(
        json.dumps(figures, indent=1, default=float) + "\n", encoding="utf-8"
    )
    return folder / f"{stem}.md"
