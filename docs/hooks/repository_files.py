"""Serve the repository's files that the pages link to (a mkdocs hook).

The pages in docs/ link to files elsewhere in the repository (benchmark reports and plots, model cards,
source files) with relative links that also work where the Markdown is read as it is, on GitHub or in an
editor: ``../benchmarks/results/bulk.md``. mkdocs serves only what is inside docs/, so this hook adds each
linked file to the site at its path in the repository (``benchmarks/results/bulk.md``), follows the links
of the Markdown files it adds in the same way, and points the pages' links at those copies. A link to a
file that does not exist, or to a folder, is left as it is, for mkdocs' strict mode to report.
"""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path
from typing import TYPE_CHECKING

from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, InclusionLevel

if TYPE_CHECKING:
    from mkdocs.config.defaults import MkDocsConfig
    from mkdocs.structure.files import Files
    from mkdocs.structure.pages import Page

#: a Markdown link or image, up to its target: ``[text](`` or ``![alt](``, then the target
LINK = re.compile(r"(!?\[[^\]\n]*\]\()([^)\s]+)")
#: a target with a scheme (``https:``, ``mailto:``), an absolute path or an anchor of the same page
NOT_A_FILE = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*:|/|#)")


def on_files(files: Files, *, config: MkDocsConfig) -> Files:
    """Add every repository file outside docs/ that a page (or a file added for one) links to."""
    root, docs = _root(config), Path(config.docs_dir)
    queue = [
        (Path(page.abs_src_path or docs / page.src_path), page.content_string)
        for page in files.documentation_pages()
    ]
    added: set[str] = set()
    while queue:
        source, markdown = queue.pop()
        for target in LINK.findall(markdown):
            path = repository_path(source, target[1], root, docs)
            if path is None or path in added:
                continue
            if files.get_file_from_path(path) is not None:
                raise PluginError(f"docs/{path} would hide the repository's {path}, which a page links to")
            added.add(path)
            file = File.generated(
                config, path, abs_src_path=str(root / path), inclusion=InclusionLevel.NOT_IN_NAV
            )
            files.append(file)
            if path.endswith(".md"):
                queue.append((root / path, file.content_string))
    return files


def on_page_markdown(markdown: str, *, page: Page, config: MkDocsConfig, files: Files) -> str:
    """Point the page's links out of docs/ at the copies ``on_files`` added."""
    root, docs = _root(config), Path(config.docs_dir)
    source = Path(page.file.abs_src_path or docs / page.file.src_path)
    here = posixpath.dirname(page.file.src_uri)

    def relink(link: re.Match[str]) -> str:
        path = repository_path(source, link[2], root, docs)
        if path is None:
            return link[0]
        anchor = link[2][len(link[2].split("#")[0]) :]
        return link[1] + posixpath.relpath(path, here or ".") + anchor

    return LINK.sub(relink, markdown)


def repository_path(source: Path, target: str, root: Path, docs: Path) -> str | None:
    """The repository path (``benchmarks/results/bulk.md``) of a link from ``source`` to a file outside docs/.

    None for a link that stays inside docs/, leaves the repository, is not relative, or names no file.
    """
    if NOT_A_FILE.match(target):
        return None
    path = Path(os.path.normpath(source.parent / target.split("#")[0]))
    if not path.is_file() or docs in path.parents or root not in path.parents:
        return None
    return path.relative_to(root).as_posix()


def _root(config: MkDocsConfig) -> Path:
    """The repository: the folder of mkdocs.yml."""
    return Path(config.config_file_path).resolve().parent
