"""The suite's tables: reading the figures of benchmarks.suite and laying them out in markdown.

Every speed figure is the median over rounds; every ratio is the median over rounds of the ratio of two
systems' figures in the same round. For edgesbert, each throughput figure takes the better of the two
performance hints (by median), and says which: L (latency: one batch at a time on all threads) or
T (throughput: batches cut across single-threaded runs side by side).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

Entry = dict[str, Any]
MARK = {"latency": "L", "throughput": "T", "default": ""}
NAN = float("nan")


# --- reading the figures --------------------------------------------------------------------------


def per_round(entry: Entry, hint: str, key: str) -> list[float | None]:
    return [None if run is None else run["hints"].get(hint, {}).get(key) for run in entry["rounds"]]


def scalar_rounds(entry: Entry, key: str) -> list[float | None]:
    return [None if run is None else run.get(key) for run in entry["rounds"]]


def med(values: list[float | None]) -> float:
    found = [v for v in values if v is not None]
    return float(np.median(found)) if found else NAN


def hints(entry: Entry) -> list[str]:
    run = next((run for run in entry["rounds"] if run), None)
    return list(run["hints"]) if run else []


def best_hint(entry: Entry, key: str, lower: bool = False) -> str:
    """The hint whose median ``key`` is best (highest, or lowest with ``lower``)."""
    options = [(med(per_round(entry, h, key)), h) for h in hints(entry)]
    options = [(v, h) for v, h in options if not math.isnan(v)]
    if not options:
        return "default"
    return (min(options) if lower else max(options))[1]


def best(entry: Entry, key: str, lower: bool = False) -> tuple[float, str]:
    hint = best_hint(entry, key, lower)
    return med(per_round(entry, hint, key)), hint


def ratio(a: Entry | None, b: Entry | None, key: str, lower: bool = False) -> float:
    """Median over rounds of a/b (b/a with ``lower``: a speed-up in time), each at its best hint."""
    if a is None or b is None:
        return NAN
    ra, rb = per_round(a, best_hint(a, key, lower), key), per_round(b, best_hint(b, key, lower), key)
    values = [(y / x if lower else x / y) for x, y in zip(ra, rb, strict=True) if x and y]
    return float(np.median(values)) if values else NAN


def cold(entry: Entry, key: str) -> float:
    return med([run[key] for runs in entry["cold"] for run in runs])


def rss(entry: Entry) -> float:
    """Peak RSS after loading and embedding every text, in the rounds that ran it with the default hint."""
    return med(
        [r["peak_rss_mb"] for r in entry["rounds"] if r and r.get("rss_hint") in ("latency", "default")]
    )


def pick(entries: dict[str, Entry], precision: str, key: str = "batch") -> str | None:
    """The edgesbert system of ``precision`` with the best median ``key``."""
    names = [n for n, e in entries.items() if n.startswith("edgesbert-") and e["precision"] == precision]
    names = [n for n in names if not math.isnan(best(entries[n], key)[0])]
    return max(names, key=lambda n: best(entries[n], key)[0]) if names else None


def fmt(value: float, digits: int = 0, suffix: str = "") -> str:
    return "–" if value is None or math.isnan(value) else f"{value:,.{digits}f}{suffix}"


def row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def with_hint(value: float, hint: str, digits: int = 0) -> str:
    mark = MARK.get(hint, "")
    return fmt(value, digits) + (f" ({mark})" if mark and not math.isnan(value) else "")


# --- tables ---------------------------------------------------------------------------------------


def bi_table(bi: dict[str, Entry]) -> list[str]:
    st = bi.get("st-torch")
    rows = [
        "| system | precision | sent/s @32 | × ST torch | sent/s @budget | × ST torch | p50 ms | p99 ms "
        "| cold start s | peak RSS MB | file MB | STSb Spearman | cosine to PyTorch |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in bi.values():
        b32, h32 = best(e, "batch")
        bud, hbud = best(e, "budget")
        cells = [
            e["label"],
            e["precision"],
            with_hint(b32, h32),
            fmt(ratio(e, st, "batch"), 2, "×"),
            with_hint(bud, hbud),
            fmt(ratio(e, st, "budget"), 2, "×"),
            fmt(med(scalar_rounds(e, "latency_p50_ms")), 2),
            fmt(med(scalar_rounds(e, "latency_p99_ms")), 2),
            fmt(cold(e, "total_s"), 2),
            fmt(rss(e)),
            fmt(e["model_mb"], 1),
            fmt(e.get("spearman", NAN), 4),
            fmt(e.get("mean_cosine", NAN), 5),
        ]
        rows.append(row(cells))
    return rows


def cold_table(bi: dict[str, Entry]) -> list[str]:
    rows = [
        "| system | interpreter + imports s | load s | first embedding s | total s | starts |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for e in bi.values():
        starts = sum(len(runs) for runs in e["cold"])
        rows.append(
            f"| {e['label']} | {fmt(cold(e, 'import_s'), 2)} | {fmt(cold(e, 'load_s'), 2)} "
            f"| {fmt(cold(e, 'first_s'), 3)} | {fmt(cold(e, 'total_s'), 2)} | {starts} |"
        )
    return rows


def batch_latency(entry: Entry) -> dict[str, float]:
    runs = [run.get("batch_latency_ms") for run in entry["rounds"] if run and run.get("batch_latency_ms")]
    return {size: med([run[size] for run in runs]) for size in runs[0]} if runs else {}


def batch_table(bi: dict[str, Entry]) -> list[str]:
    measured = {n: batch_latency(e) for n, e in bi.items() if batch_latency(e)}
    if not measured:
        return []
    sizes = list(next(iter(measured.values())))
    rows = [
        "| system | " + " | ".join(f"batch {s} ms" for s in sizes) + " | ms per sentence at 128 |",
        "|---|" + "---:|" * (len(sizes) + 1),
    ]
    for name, by_size in measured.items():
        per = by_size.get("128", NAN) / 128
        cells = " | ".join(fmt(by_size[s], 2) for s in sizes)
        rows.append(f"| {bi[name]['label']} | {cells} | {fmt(per, 3)} |")
    return rows


def cross_table(cross: dict[str, Entry]) -> list[str]:
    st = cross.get("st-cross-torch")
    rows = [
        "| system | precision | pairs/s @32 | × ST torch | rank 100 p50 ms | p99 ms "
        "| rank × faster than ST torch | score Spearman to PyTorch | STSb Spearman "
        "| same top 10 as ST torch | file MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for e in cross.values():
        pairs, hp = best(e, "pairs")
        p50, hr = best(e, "rank_p50_ms", lower=True)
        p99 = med(per_round(e, hr, "rank_p99_ms"))
        same = e.get("same_top10", {}).get(hr)
        order = "–" if same is None else f"{same}/{e['queries']}"
        cells = [
            e["label"],
            e["precision"],
            with_hint(pairs, hp),
            fmt(ratio(e, st, "pairs"), 2, "×"),
            with_hint(p50, hr, 1),
            fmt(p99, 1),
            fmt(ratio(e, st, "rank_p50_ms", lower=True), 2, "×"),
            fmt(e.get("score_spearman", NAN), 4),
            fmt(e.get("spearman", NAN), 4),
            order,
            fmt(e["model_mb"], 1),
        ]
        rows.append(row(cells))
    return rows


def install_table(install: dict[str, Any]) -> list[str]:
    rows = [
        "| environment | command | distributions | site-packages MB | largest entries (MB) |",
        "|---|---|---:|---:|---|",
    ]
    for name in ("runtime", "sentence-transformers"):
        e = install[name]
        largest = ", ".join(f"{n} {mb:.0f}" for n, mb in e["largest"])
        rows.append(f"| {name} | `{e['command']}` | {len(e['distributions'])} | {e['mb']:.1f} | {largest} |")
    return rows
