"""Build the desktop app (examples/desktop) as a one-folder PyInstaller bundle and measure it (issue 19).

    python -m benchmarks.desktop --pyinstaller .venv-desktop/bin/pyinstaller     # what `make desktop` runs
    python -m benchmarks.desktop --bundle build/desktop/dist/edgesbert-desktop    # measure an existing build
    python -m benchmarks.desktop --pyinstaller ... --torch-pyinstaller .venv-desktop-torch/bin/pyinstaller
    python -m benchmarks.desktop --bundle ... --torch-bundle build/desktop/dist/desktop-sentence-transformers

The bundle: benchmarks/desktop/bundle.py; its figures (size, cold and warm start to the first answer,
indexing 10,000 paragraphs and the peak RSS meanwhile): benchmarks/desktop/measure.py. With
``--torch-pyinstaller`` (`make desktop-torch`, built in .venv-desktop-torch) the same app on
sentence-transformers + torch (benchmarks/desktop/torch_app.py, the fp32 PyTorch models) is built and
measured the same way, in a second column. Results go to benchmarks/results/desktop.md.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from benchmarks.common.machine import cpu_flags, machine
from benchmarks.common.paths import RESULTS
from benchmarks.desktop.bundle import NAME, TORCH_NAME, WORK, build, build_torch
from benchmarks.desktop.measure import folder_bytes, measure

TARGET_MB, TARGET_START_S = 250, 2.0


def report(ours: dict[str, float], bundle: Path, torch: dict[str, float] | None) -> str:
    parts = [p for p in (bundle / "_internal").iterdir() if not p.is_symlink()]
    biggest = sorted((folder_bytes(p) if p.is_dir() else p.stat().st_size, p) for p in parts)
    rows = [
        ("bundle size (one folder, Qt included)", "size_mb", "{:.1f} MB", f"<= {TARGET_MB} MB"),
        (
            "cold start to first answer (saved index; bundle and index dropped from the page cache)",
            "cold_s",
            "{:.2f} s",
            f"<= {TARGET_START_S} s",
        ),
        ("warm start to first answer (the same, files in the page cache)", "start_s", "{:.2f} s", ""),
        ("first start: index 287 files / 1,134 paragraphs, answer", "first_s", "{:.2f} s", ""),
        ("index 10,000 paragraphs (100 files), start to exit", "index_s", "{:.1f} s", ""),
        ("peak RSS while indexing 10,000 paragraphs", "peak_mb", "{:.0f} MB", ""),
    ]

    def cell(figures: dict[str, float] | None, key: str, form: str) -> str:
        return "not built" if figures is None else form.format(figures[key])

    return "\n".join(
        [
            "# Desktop app bundle (issue 19)",
            "",
            f"Machine: {machine()}; CPU flags: {cpu_flags()}.",
            "Command: `make desktop` (`python -m benchmarks.desktop --pyinstaller PATH`); the second column:",
            "`--torch-pyinstaller PATH` (the same app on sentence-transformers + torch, fp32 models).",
            "",
            "| figure | edgesbert runtime, int8 (onnxruntime) | sentence-transformers + torch | target |",
            "| --- | --- | --- | --- |",
            *[f"| {a} | {cell(ours, k, f)} | {cell(torch, k, f)} | {t} |" for a, k, f, t in rows],
            "",
            "Largest parts of the edgesbert bundle (MB): "
            + ", ".join(f"{p.name} {b / 1e6:.1f}" for b, p in reversed(biggest[-8:])),
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.desktop", description=__doc__.splitlines()[0])
    parser.add_argument("--pyinstaller", type=Path, help="build with this pyinstaller first")
    parser.add_argument("--bundle", type=Path, default=WORK / "dist" / NAME, help="the bundle to measure")
    parser.add_argument("--torch-pyinstaller", type=Path, help="also build and measure the torch app with it")
    parser.add_argument("--torch-bundle", type=Path, help="also measure this existing build of the torch app")
    args = parser.parse_args()
    bundle = build(args.pyinstaller) if args.pyinstaller else args.bundle
    ours = measure(bundle, NAME)
    torch = None
    if args.torch_pyinstaller or args.torch_bundle:
        torch = measure(args.torch_bundle or build_torch(args.torch_pyinstaller), TORCH_NAME)
    text = report(ours, bundle, torch)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "desktop.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
