"""The docs site's own checks (issue 34): the layout table matches the tree, the manifest reference says what
``edgesbert/runtime/manifest.py`` says, and links out of docs/ find the repository's files. `make docs`
builds the site in strict mode; tests/test_readme.py runs the pages' code blocks."""

from __future__ import annotations

import dataclasses
import fnmatch
import importlib.util
import re
from pathlib import Path
from types import ModuleType

import pytest

from edgesbert.runtime import manifest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"


def hook(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"docs_hooks_{name}", DOCS / "hooks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def layout_rows() -> list[tuple[list[str], str]]:
    """The layout table's rows: the paths its first column names, and the whole row."""
    rows = [
        line
        for line in (DOCS / "layout.md").read_text(encoding="utf-8").splitlines()
        if line.startswith("| `")
    ]
    return [(re.findall(r"`([^`]+)`", row.split("|")[1]), row) for row in rows]


def ignored(name: str) -> bool:
    patterns = [p.strip().rstrip("/") for p in (ROOT / ".gitignore").read_text().splitlines() if p.strip()]
    return name == ".git" or any(fnmatch.fnmatch(name, p) for p in patterns if "/" not in p)


def test_the_layout_table_names_every_folder_and_nothing_that_is_not_there():
    rows = layout_rows()
    listed = {path for paths, _ in rows for path in paths}
    assert [path for path in listed if not (ROOT / path).exists()] == []
    folders = {f"{d.name}/" for d in ROOT.iterdir() if d.is_dir() and not ignored(d.name)}
    packages = {
        f"edgesbert/{d.name}/" for d in (ROOT / "edgesbert").iterdir() if (d / "__init__.py").is_file()
    }
    assert sorted(folders - listed) == []
    assert sorted(packages - listed) == []
    package_row = next(row for paths, row in rows if paths == ["edgesbert/"])
    modules = [p for p in (ROOT / "edgesbert").glob("*.py") if p.name != "__init__.py"]
    assert [
        p.name for p in modules if f"`{p.stem}`" not in package_row and f"edgesbert/{p.name}" not in listed
    ] == []


def test_the_manifest_reference_has_every_key_and_what_the_code_says_of_it():
    text = hook("manifest_reference").reference()
    sections = dict(re.findall(r"^## (\w+)\n\n(.*?)(?=^## |\Z)", text, flags=re.M | re.S))
    for cls in (manifest.Manifest, manifest.GraphVariant, manifest.TokenizerSpec, manifest.Provenance):
        keys = re.findall(r"^\| `(\w+)` \|", sections[cls.__name__], flags=re.M)
        assert keys == [field.name for field in dataclasses.fields(cls)]
    assert "| `schema_version` | integer | required |" in text  # a default in Python, required in a file
    assert '| `padding_side` | string | `"right"` |' in text
    assert "| required for a bi-encoder |" in sections["Manifest"]  # embedding
    assert "| `labels` | list of string | `[]` |" in sections["ClassifierSpec"]
    assert "a packed graph's longest row, in tokens" in sections["GraphVariant"]  # a `#:` comment
    assert "| `bf16` | `BF16` | fp32 weights, bf16 arithmetic" in sections["Precision"]  # an end-of-line one
    assert "- `batch_dependent`: Whether its output for one text changes" in sections["GraphVariant"]
    assert '| `MANIFEST_FILE` | `"edgesbert.json"` |' in sections["Constants"]


def test_the_manifest_page_has_the_place_of_the_reference():
    assert hook("manifest_reference").MARKER in (DOCS / "manifest.md").read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("../benchmarks/results/bulk.md", "benchmarks/results/bulk.md"),
        ("../models/README.md#the-models", "models/README.md"),
        ("export.md", None),  # a page of docs/
        ("../benchmarks/results/no-such-report.md", None),  # left for mkdocs' strict mode to report
        ("../examples/desktop/", None),  # a folder: the same
        ("https://docs.ray.io/en/latest/", None),
        ("#an-anchor", None),
    ],
)
def test_links_out_of_docs_name_the_repository_file_they_reach(target, expected):
    path = hook("repository_files").repository_path(DOCS / "export.md", target, ROOT, DOCS)
    assert path == expected
