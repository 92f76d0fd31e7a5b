"""What the benchmarks are: ``python -m benchmarks`` lists their commands, what each measures, how long.

What a benchmark measures is the first line of its own docstring (read from its source, nothing imported);
how long it takes is said here, once: roughly, on an idle 2-core machine with the exports it reuses already
cached (the first run exports first: a few minutes more). Every one writes its report to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import ast
import textwrap
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class Benchmark:
    """One command: ``python -m MODULE``, roughly how long it takes, and the report it writes."""

    module: str
    takes: str
    writes: str  # under benchmarks/results/

    @property
    def source(self) -> Path:
        """The file ``python -m`` runs: the package's ``__main__.py``, or the module itself."""
        path = HERE.parent.joinpath(*self.module.split("."))
        return path / "__main__.py" if path.is_dir() else path.with_suffix(".py")

    @property
    def measures(self) -> str:
        """The first line of the docstring of what ``python -m`` runs."""
        docstring = ast.get_docstring(ast.parse(self.source.read_text(encoding="utf-8"))) or ""
        return docstring.splitlines()[0] if docstring else ""


BENCHMARKS = (
    Benchmark("benchmarks.suite", "about 25 min; --quick: a smoke run", "suite-<cpu kind>.md, .json, .png"),
    Benchmark(
        "benchmarks.serve", "about 25 min; --quick: a smoke run", "serve-<cpu kind>/serve.md, .json, .png"
    ),
    Benchmark("benchmarks.bulk", "about 30 min for 200,000 rows", "bulk.md, bulk.json"),
    Benchmark(
        "benchmarks.packing", "about 10 min per backend", "packing-<backend>[-int8]-<cpu kind>.md, .png"
    ),
    Benchmark("benchmarks.static", "about 10 min", "static-<cpu kind>.md"),
    Benchmark("benchmarks.floors", "a few minutes", "floors.md"),
    Benchmark("benchmarks.stsb_fidelity", "a few minutes", "stsb-fidelity.md"),
    Benchmark(
        "benchmarks.int8.accuracy", "about 10 min per model and backend", "int8-accuracy-<cpu kind>.md"
    ),
    Benchmark("benchmarks.int8.presets", "about 10 min", "int8-presets.md"),
    Benchmark("benchmarks.int8.profile", "a few minutes", "int8-profile.md"),
    Benchmark("benchmarks.memory.export", "2 to 8 min per export", "export-memory.md, .json"),
    Benchmark("benchmarks.memory.search", "about a minute", "search-memory.md"),
    Benchmark(
        "benchmarks.memory.big_model", "about an hour (two exports of 2.4 GB)", "big-model-<cpu kind>.md"
    ),
    Benchmark(
        "benchmarks.memory.soak", "about an hour; a smoke run: see its --help", "soak.md, .json, soak-rss.png"
    ),
    Benchmark("benchmarks.desktop", "several minutes; more with the torch app", "desktop.md"),
)
#: entry points the benchmarks start themselves, never run by hand
HELPERS = {
    "benchmarks.suite.worker": "one system in one fresh process, for the suite",
    "benchmarks.desktop.torch_app": "PyInstaller's entry script for the desktop app on torch",
}


def listing(width: int = 110) -> str:
    """Every benchmark: its command and how long it takes, then what it measures and what it writes."""
    lines = [
        "Benchmarks (each one's options: python -m COMMAND --help; its report: under benchmarks/results/)",
        "",
    ]
    for bench in BENCHMARKS:
        lines.append(f"python -m {bench.module}: {bench.takes}")
        about = f"{bench.measures} Writes {bench.writes}."
        lines += textwrap.wrap(
            about, width, initial_indent="    ", subsequent_indent="    ", break_on_hyphens=False
        )
    return "\n".join(lines)


def main() -> None:
    argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0]).parse_args()
    print(listing())


if __name__ == "__main__":
    main()
