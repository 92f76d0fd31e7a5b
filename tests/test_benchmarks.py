"""``python -m benchmarks`` lists every benchmark there is, and each one it lists is a command that exists.

Read from the sources (ast), nothing imported: the benchmarks' own imports are heavy and their runs long.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import benchmarks.__main__ as catalog

ROOT = Path(__file__).resolve().parents[1]


def runs_as_main(path: Path) -> bool:
    """A package's ``__main__.py``, or a module with an ``if __name__ == "__main__":`` block."""
    if path.name == "__main__.py":
        return True
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return any(isinstance(node, ast.If) and "__main__" in ast.unparse(node.test) for node in tree.body)


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__main__" else parts)


def test_every_command_in_benchmarks_is_listed_and_every_listed_one_exists():
    commands = {module_name(p) for p in (ROOT / "benchmarks").rglob("*.py") if runs_as_main(p)}
    listed = {bench.module for bench in catalog.BENCHMARKS}
    assert commands - {"benchmarks"} == listed | set(catalog.HELPERS)
    for bench in catalog.BENCHMARKS:
        assert bench.source.is_file(), bench.module
        assert bench.measures and bench.takes, bench.module


def test_the_listing_names_each_command_and_what_it_measures():
    listing = subprocess.run(
        [sys.executable, "-m", "benchmarks"], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    for bench in catalog.BENCHMARKS:
        assert f"python -m {bench.module}: {bench.takes}" in listing
        assert bench.measures.split()[0] in listing
