"""The suite's two plots: speed against accuracy, and latency by batch size."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.suite.tables import MARK, batch_latency, best, pick

COLORS = {"edgesbert onnxruntime": "tab:blue", "edgesbert OpenVINO": "tab:green",
          "sentence-transformers": "tab:red", "fastembed": "tab:purple"}  # fmt: skip


def plot(figures: dict[str, Any], folder: Path, stem: str) -> list[str]:
    """Write ``{stem}-speed-accuracy.png`` and ``{stem}-latency-batch.png`` where there are figures for
    them; returns the names written."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return []
    title = f"{figures['machine']}; {figures['settings']['threads']} threads"
    bi, written = figures["bi"], []
    points = [(n, e) for n, e in bi.items() if not math.isnan(best(e, "batch")[0]) and "spearman" in e]
    if points:
        fig, ax = plt.subplots(figsize=(9, 6))
        speeds = [best(e, "batch")[0] for _, e in points]
        gap = (max(speeds) - min(speeds)) * 0.045 or 1.0
        rhos = [e["spearman"] for _, e in points]
        dx = (max(rhos) - min(rhos)) * 0.015 or 1e-4
        placed: list[tuple[float, float]] = []  # label positions so far: equal Spearman stacks them
        for name, e in sorted(points, key=lambda p: -best(p[1], "batch")[0]):
            speed, hint = best(e, "batch")
            ax.scatter(e["spearman"], speed, color=COLORS.get(e["family"], "k"), s=40)
            y = speed
            for x0, y0 in placed:
                if abs(x0 - e["spearman"]) < 2e-4 and y0 - y < gap:
                    y = y0 - gap
            placed.append((e["spearman"], y))
            label = name + (f" ({MARK[hint]})" if MARK.get(hint) else "")
            line = {"arrowstyle": "-", "color": "0.6", "lw": 0.5}
            ax.annotate(label, (e["spearman"], speed), xytext=(e["spearman"] + dx, y), fontsize=7,
                        textcoords="data", va="center", arrowprops=line)  # fmt: skip
        for family, color in COLORS.items():
            ax.scatter([], [], color=color, label=family)
        ax.legend(fontsize=8, loc="best")
        ax.set_xlabel("STSb-test Spearman")
        ax.set_ylabel(f"sentences/s at batch {figures['settings']['batch_size']} (median of rounds)")
        ax.set_title(f"speed against accuracy\n{title}", fontsize=9)
        fig.tight_layout()
        fig.savefig(folder / f"{stem}-speed-accuracy.png", dpi=120)
        plt.close(fig)
        written.append(f"{stem}-speed-accuracy.png")
    lines = [(n, batch_latency(bi[n])) for n in (pick(bi, "int8"), pick(bi, "fp32"), "st-torch") if n in bi]
    lines = [(n, by) for n, by in lines if by]
    if lines:
        fig, (total, per) = plt.subplots(1, 2, figsize=(11, 4.5))
        for name, by_size in lines:
            sizes = [int(s) for s in by_size]
            ms = np.array(list(by_size.values()))
            total.plot(sizes, ms, marker="o", label=bi[name]["label"])
            per.plot(sizes, ms / np.array(sizes), marker="o", label=bi[name]["label"])
        for ax, ylabel in ((total, "ms per call"), (per, "ms per sentence")):
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_xticks([1, 8, 32, 128], ["1", "8", "32", "128"])
            ax.set_xlabel("batch size (latency hint)")
            ax.set_ylabel(ylabel)
            ax.grid(alpha=0.3)
        total.legend(fontsize=8)
        fig.suptitle(f"latency by batch size\n{title}", fontsize=9)
        fig.tight_layout()
        fig.savefig(folder / f"{stem}-latency-batch.png", dpi=120)
        plt.close(fig)
        written.append(f"{stem}-latency-batch.png")
    return written
