"""Build the desktop app (examples/desktop) as a one-folder PyInstaller bundle and measure it (issue 19).

    python -m benchmarks.desktop --pyinstaller .venv-desktop/bin/pyinstaller     # what `make desktop` runs
    python -m benchmarks.desktop --bundle build/desktop/dist/edgesbert-desktop    # measure an existing build

The bundle holds Qt (PySide6-Essentials: QtCore, QtGui, QtWidgets), the torch-free runtime on OpenVINO and
the int8 variants of exported/all-MiniLM-L6-v2 and exported/trecqa-reranker-minilm (each folder copied
with its manifest, tokenizer and int8 graph only; `make demo` writes both). PyInstaller runs in
.venv-desktop, where torch was never installed. Figures, each from the bundle's executable started as a
new process with ``--self-test`` (offscreen Qt):

- size: the bytes of every file in the bundle folder (MB = 10^6 bytes);
- cold start to first answer: from starting the process to its printing the first answer of a query,
  with the folder's index already saved (TREC QA dev answers as 287 files, 1,134 paragraphs), the median
  of 3 starts; the page cache is warm (dropping it needs the whole machine);
- indexing 10,000 paragraphs (100 files of 100 TREC QA and STSb sentences) into a new index: the wall
  time of the run and the peak RSS of the process (getrusage of the child).

sentence-transformers + torch were not bundled; the table gives the installed size of torch, transformers
and sentence-transformers in .venv as a lower bound of what such a bundle would carry.
Results go to benchmarks/results/desktop.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common import cpu_flags, log, machine

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "desktop"
RESULTS = ROOT / "benchmarks" / "results"
NAME = "edgesbert-desktop"
QUERY = "When did James Dean die ?"
TARGET_MB, TARGET_START_S = 250, 2.0
#: never needed by the app (OpenVINO's converters from other frameworks included)
EXCLUDES = [
    "torch",
    "transformers",
    "onnx",
    "optimum",
    "onnxruntime",
    "openvino_tokenizers",
    "tkinter",
    "yaml",
]
EXCLUDES += ["matplotlib", "scipy", "pandas", "pyarrow", "huggingface_hub", "IPython", "openvino.tools"]
EXCLUDES += [
    f"openvino.frontend.{f}" for f in ("pytorch", "tensorflow", "jax", "paddle", "onnx", "tensorflow_lite")
]
#: OpenVINO loads these by name at run time, so PyInstaller cannot see them: the CPU device, the IR reader
OPENVINO_LIBS = ["libopenvino_intel_cpu_plugin.so", "libopenvino_ir_frontend.so.*"]


def int8_copy(source: Path, target: Path) -> None:
    """Copy an exported folder with only what its int8 variant needs: manifest, tokenizer, int8 graph."""
    from edgesbert.runtime.manifest import Manifest, Precision

    int8 = [v for v in Manifest.load(source).variants if v.precision is Precision.INT8]
    if not int8:
        sys.exit(f"{source} has no int8 variant: run `make demo` (export --backend openvino --quantize int8)")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for path in source.glob("*.json"):
        shutil.copy2(path, target / path.name)
    graph = source / int8[0].file
    for path in (graph, graph.with_suffix(".bin")):
        (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target / path.relative_to(source))


def openvino_libs(python: Path) -> Path:
    """The libs folder of the openvino package that ``python`` (the build environment's) imports."""
    code = "import openvino, pathlib; print(pathlib.Path(openvino.__file__).parent / 'libs')"
    return Path(
        subprocess.run([str(python), "-c", code], check=True, capture_output=True, text=True).stdout.strip()
    )


def build(pyinstaller: Path) -> Path:
    """Run PyInstaller on examples/desktop; returns the bundle folder."""
    models = WORK / "models"
    for name in ("all-MiniLM-L6-v2", "trecqa-reranker-minilm"):
        int8_copy(ROOT / "exported" / name, models / name)
    command = [str(pyinstaller), "--noconfirm", "--clean", "--onedir", "--name", NAME, "--log-level", "WARN"]
    command += ["--distpath", str(WORK / "dist"), "--workpath", str(WORK / "work"), "--specpath", str(WORK)]
    command += ["--paths", str(ROOT), "--add-data", f"{models}{os.pathsep}models"]
    command += ["--hidden-import", "edgesbert.runtime.backends.openvino"]
    libs = openvino_libs(pyinstaller.parent / "python")
    for pattern in OPENVINO_LIBS:
        command += [
            arg for lib in libs.glob(pattern) for arg in ("--add-binary", f"{lib}{os.pathsep}openvino/libs")
        ]
    command += [arg for module in EXCLUDES for arg in ("--exclude-module", module)]
    started = time.perf_counter()
    subprocess.run([*command, str(ROOT / "examples" / "desktop" / "__main__.py")], check=True, cwd=ROOT)
    log(f"built in {time.perf_counter() - started:.0f} s")
    return WORK / "dist" / NAME


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def trec_folder(target: Path) -> Path:
    sys.path.insert(0, str(ROOT))
    from tests.desktop.trec_files import write_trec_folder

    shutil.rmtree(target, ignore_errors=True)
    write_trec_folder(target, 78)
    return target


def ten_thousand_paragraphs(target: Path, files: int = 100, per_file: int = 100) -> Path:
    """100 files of 100 paragraphs: TREC QA answers, then STSb sentences, each used once."""
    texts: dict[str, None] = {}
    for name, columns in [("trecqa-train.csv", [2]), ("trecqa-dev.csv", [2]), ("stsb-en-train.csv", [0, 1])]:
        with (ROOT / "data" / name).open(encoding="utf-8", newline="") as f:
            rows = list(csv.reader(f))[1 if name.startswith("trec") else 0 :]
        texts.update(dict.fromkeys(row[c] for row in rows for c in columns if len(row) > max(columns)))
    paragraphs = list(texts)[: files * per_file]
    if len(paragraphs) < files * per_file:
        sys.exit(f"only {len(paragraphs)} distinct paragraphs in data/")
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for i in range(files):
        text = "\n\n".join(paragraphs[i * per_file : (i + 1) * per_file])
        (target / f"part-{i:03d}.txt").write_text(text + "\n", encoding="utf-8")
    return target


def self_test(executable: Path, folder: Path, index_dir: Path) -> tuple[float, float, int]:
    """Run the bundle's self-test: (seconds to its first answer, seconds to exit, peak RSS in bytes)."""
    env = os.environ | {"QT_QPA_PLATFORM": "offscreen"}
    command = [str(executable), "--self-test", QUERY, "--folder", str(folder), "--index-dir", str(index_dir)]
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
    assert process.stdout is not None
    first_answer, lines = None, []
    for line in process.stdout:
        lines.append(line.rstrip())
        if first_answer is None and line.startswith("first answer"):
            first_answer = time.perf_counter() - started
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0 or first_answer is None:
        sys.exit(f"self-test failed ({process.returncode}):\n" + "\n".join(lines))
    log("\n".join(lines[:4]))
    return first_answer, time.perf_counter() - started, usage.ru_maxrss * 1024


def torch_lower_bound() -> float | None:
    """MB installed in .venv for torch, transformers and sentence-transformers (None if absent)."""
    site = next((ROOT / ".venv" / "lib").glob("python3*/site-packages"), None)
    if site is None or not (site / "torch").is_dir():
        return None
    names = ["torch", "transformers", "sentence_transformers", "torch.libs"]
    return sum(folder_bytes(site / n) for n in names if (site / n).is_dir()) / 1e6


def measure(bundle: Path) -> str:
    executable = bundle / NAME
    size_mb = folder_bytes(bundle) / 1e6
    parts = [p for p in (bundle / "_internal").iterdir() if not p.is_symlink()]
    biggest = sorted((folder_bytes(p) if p.is_dir() else p.stat().st_size, p) for p in parts)
    trec, index_dir = trec_folder(WORK / "bench-trec"), WORK / "bench-index"
    shutil.rmtree(index_dir, ignore_errors=True)
    first_run = self_test(executable, trec, index_dir)
    starts = [self_test(executable, trec, index_dir)[0] for _ in range(3)]
    big = ten_thousand_paragraphs(WORK / "bench-10k")
    shutil.rmtree(WORK / "bench-index-10k", ignore_errors=True)
    _, index_s, peak = self_test(executable, big, WORK / "bench-index-10k")
    lower = torch_lower_bound()
    start_s = statistics.median(starts)
    rows = [
        (
            "bundle size (one folder, Qt + runtime + both int8 models)",
            f"{size_mb:.1f} MB",
            f"<= {TARGET_MB} MB",
        ),
        (
            "cold start to first answer (saved index, median of 3)",
            f"{start_s:.2f} s",
            f"<= {TARGET_START_S} s",
        ),
        ("first start: index 287 files / 1,134 paragraphs, answer", f"{first_run[0]:.2f} s", ""),
        ("index 10,000 paragraphs (100 files), start to exit", f"{index_s:.1f} s", ""),
        ("peak RSS while indexing 10,000 paragraphs", f"{peak / 1e6:.0f} MB", ""),
        (
            "sentence-transformers + torch bundle",
            "not built"
            if lower is None
            else f"not built; > {lower:.0f} MB (torch + transformers + s-t installed)",
            "",
        ),
    ]
    lines = [
        "# Desktop app bundle (issue 19)",
        "",
        f"Machine: {machine()}; CPU flags: {cpu_flags()}.",
        "Command: `make desktop` (`python -m benchmarks.desktop --pyinstaller PATH`).",
        "",
        "| figure | measured | target |",
        "| --- | --- | --- |",
        *[f"| {a} | {b} | {c} |" for a, b, c in rows],
        "",
        "Largest parts of the bundle (MB): "
        + ", ".join(f"{p.name} {b / 1e6:.1f}" for b, p in reversed(biggest[-8:])),
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyinstaller", type=Path, help="build with this pyinstaller first")
    parser.add_argument("--bundle", type=Path, default=WORK / "dist" / NAME, help="the bundle to measure")
    args = parser.parse_args()
    bundle = build(args.pyinstaller) if args.pyinstaller else args.bundle
    report = measure(bundle)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "desktop.md").write_text(report, encoding="utf-8")
    print(report)


if __name__ == "__main__":
    main()
