"""Install size: site-packages of a fresh runtime environment against a fresh CPU sentence-transformers one.

Both are built once with pip into build/bench (``venv-runtime``: ``pip install .``; ``venv-st``:
``sentence-transformers`` at this environment's version with ``torch==2.13.0``, which resolves to the local
CPU wheel) and reused while present. The size is every file under site-packages except pip, setuptools,
wheel and their helpers, which any environment has.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.common.paths import BENCH, ROOT
from benchmarks.common.timing import log

RUNTIME_VENV = BENCH / "venv-runtime"
ST_VENV = BENCH / "venv-st"
TORCH = "torch==2.13.0"  # an unpinned torch pulls a multi-gigabyte CUDA build
NOT_COUNTED = {"pip", "setuptools", "wheel", "_distutils_hack", "pkg_resources", "distutils-precedence.pth"}


def st_requirements() -> list[str]:
    return [f"sentence-transformers=={metadata.version('sentence-transformers')}", TORCH]


def _pip(venv: Path, *args: str) -> None:
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", *args], cwd=ROOT, check=True)


def _check_cpu_torch(venv: Path, requirements: list[str]) -> None:
    """Resolve without installing first; refuse a torch that is not the CPU build, or any CUDA package."""
    report = venv / "resolution.json"
    _pip(venv, "install", "-q", "--dry-run", "--ignore-installed", "--report", str(report), *requirements)
    resolved = json.loads(report.read_text())["install"]
    names = {item["metadata"]["name"].lower(): item["metadata"]["version"] for item in resolved}
    cuda = sorted(n for n in names if n.startswith(("nvidia", "triton", "cuda")))
    if "+cpu" not in names.get("torch", "") or cuda:
        raise SystemExit(
            f"pip would install torch {names.get('torch')} with {cuda or 'no CUDA packages'} for "
            f"{requirements}: not the local CPU wheel; refusing (see /etc/xdg/pip/constraints.txt)"
        )


def build(venv: Path, requirements: list[str], key: str = "", check_torch: bool = False) -> None:
    """A fresh venv with ``requirements`` installed, unless one was completed before with the same key."""
    marker, wanted = venv / ".installed", {"requirements": requirements, "key": key}
    if marker.is_file() and json.loads(marker.read_text()) == wanted:
        return
    shutil.rmtree(venv, ignore_errors=True)
    log(f"building {venv.relative_to(ROOT)}: pip install {' '.join(requirements)}")
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    if check_torch:
        _check_cpu_torch(venv, requirements)
    _pip(venv, "install", "-q", *requirements)
    marker.write_text(json.dumps(wanted))


def site_packages(venv: Path) -> Path:
    found = sorted(venv.glob("lib/python*/site-packages"))
    if not found:
        raise SystemExit(f"{venv} has no site-packages")
    return found[0]


def _top_name(entry: Path) -> str:
    name = entry.name
    for suffix in (".dist-info", ".egg-info"):
        if name.endswith(suffix):
            return name[: -len(suffix)].rsplit("-", 1)[0].lower()
    return name.lower()


def size(venv: Path) -> dict[str, Any]:
    """MB of site-packages (pip, setuptools, wheel not counted), distributions, and the largest entries."""
    root = site_packages(venv)
    by_entry: dict[str, int] = {}
    for entry in root.iterdir():
        if _top_name(entry) in NOT_COUNTED:
            continue
        files = (
            [entry]
            if entry.is_file()
            else [p for p in entry.rglob("*") if p.is_file() and not p.is_symlink()]
        )
        by_entry[entry.name] = sum(p.stat().st_size for p in files)
    dists = sorted(
        p.name.removesuffix(".dist-info") for p in root.glob("*.dist-info") if _top_name(p) not in NOT_COUNTED
    )
    largest = sorted(by_entry.items(), key=lambda kv: -kv[1])[:6]
    return {
        "mb": sum(by_entry.values()) / 1e6,
        "distributions": dists,
        "largest": [[name, round(b / 1e6, 1)] for name, b in largest if not name.endswith(".dist-info")],
    }


def build_runtime_venv() -> Path:
    """The runtime's own install (``pip install .``), rebuilt when the declared dependencies may change."""
    pyproject = hashlib.sha1((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    build(RUNTIME_VENV, ["."], key=pyproject)
    return RUNTIME_VENV


def install_sizes() -> dict[str, Any]:
    """Build (or reuse) both environments and measure them."""
    build_runtime_venv()
    build(ST_VENV, st_requirements(), check_torch=True)
    runtime, st = size(RUNTIME_VENV), size(ST_VENV)
    return {
        "runtime": {**runtime, "command": "pip install .", "venv": str(RUNTIME_VENV.relative_to(ROOT))},
        "sentence-transformers": {
            **st,
            "command": f"pip install {' '.join(st_requirements())}",
            "venv": str(ST_VENV.relative_to(ROOT)),
        },
        "ratio": st["mb"] / runtime["mb"],
    }
