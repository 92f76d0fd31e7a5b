"""Every code block of the README and of the docs site runs as written, in order, from the repository root
(issues 17, 34).

The pages run one after another: README.md, then docs/ in the order of mkdocs.yml's nav (later pages use
what earlier ones wrote: `make demo`'s folders, the export of "Export and variants"). ``bash`` blocks run
in bash (``set -e``) with ``.venv/bin`` first on PATH; ``python`` blocks each in a new interpreter. Blocks
without a language are printed output: where one starts with ``$ COMMAND``, the command runs and must
print those lines, unless the comment before the block says ``readme: output varies`` (int8 figures
depend on the CPU), then it need only succeed. A block after ``readme: background`` (the server) runs in
the background until the last block of its page is done. A block the same as one run before (the
set-up commands, on the README and on the docs' home page) runs once. ``make test`` is the run that
executes this test, so it is the one line not run here.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.readme_demo import DEMO_EXPORTS, DEMO_FOLDERS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOT_RUN = {"make test"}  # this test runs inside it
TIMEOUT_S = 900


@dataclass
class Block:
    """One fenced block: its language, its text, where it starts (page and line), and its annotation."""

    language: str
    text: str
    line: int
    note: str
    page: str = "README.md"

    @property
    def where(self) -> str:
        return f"{self.page} line {self.line}"


def readme_blocks(text: str, page: str = "README.md") -> list[Block]:
    """The fenced blocks of ``text``, each with the ``<!-- readme: ... -->`` comment right before it."""
    blocks, note = [], ""
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        found = re.match(r"<!-- readme: (.*) -->", lines[i])
        if found:
            note = found.group(1)
        elif lines[i].startswith("```"):
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            blocks.append(Block(lines[i][3:].strip(), "\n".join(lines[i + 1 : end]), i + 1, note, page))
            note, i = "", end
        elif lines[i].strip():
            note = ""
        i += 1
    return blocks


def pages() -> list[str]:
    """The pages whose blocks run, in order: README.md, then docs/ as mkdocs.yml's nav lists them."""
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]
    return ["README.md"] + [f"docs/{page}" for entry in nav for page in entry.values()]


def commands_and_output(block: Block) -> tuple[str, list[str]]:
    """A printed-output block's ``$`` command (continuation lines joined) and the lines it should print.

    Lines before the command are output of an earlier one (``make demo``'s table): not checked.
    """
    lines, command = block.text.splitlines(), ""
    while lines and not lines[0].startswith("$ "):
        lines.pop(0)
    while lines and (lines[0].startswith("$ ") or command.endswith("\\")):
        command = command.removesuffix("\\").rstrip() + " " + lines.pop(0).removeprefix("$ ").strip()
    return command.strip(), lines


def environment() -> dict[str, str]:
    return os.environ | {"PATH": f"{ROOT / '.venv' / 'bin'}{os.pathsep}{os.environ['PATH']}"}


def run(command: list[str], block: Block) -> str:
    start = time.monotonic()
    result = subprocess.run(
        command, cwd=ROOT, env=environment(), capture_output=True, text=True, timeout=TIMEOUT_S
    )
    print(f"{block.where}: {time.monotonic() - start:.0f} s")  # shown when the test fails
    assert result.returncode == 0, f"{block.where}:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    return result.stdout


def wait_for_server(
    process: subprocess.Popen, block: Block, url: str = "http://127.0.0.1:8080/health"
) -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{block.where}: the server exited"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError(f"{block.where}: the server did not answer /health within 180 s")


def run_block(block: Block, pytestconfig: pytest.Config) -> subprocess.Popen | None:
    """Run one block as its language and annotation say; a background one's process is returned, running."""
    if block.language == "bash":
        commands = [line.split("#")[0].strip() for line in block.text.splitlines()]
        script = "\n".join(
            line for line in block.text.splitlines() if line.split("#")[0].strip() not in NOT_RUN
        )
        if block.note == "background":
            process = subprocess.Popen(
                ["bash", "-c", f"exec {script}"], cwd=ROOT, env=environment(), start_new_session=True
            )
            wait_for_server(process, block)
            return process
        run(["bash", "-e", "-o", "pipefail", "-c", script], block)
        if "make demo" in commands:  # for the fixtures that need the same exports (conftest)
            pytestconfig.stash[DEMO_FOLDERS] = {n: ROOT / "exported" / n for n in DEMO_EXPORTS}
    elif block.language == "python":
        run([sys.executable, "-c", block.text], block)
    elif block.language == "":
        command, expected = commands_and_output(block)
        if not command:
            return None  # a printout without its command (the demo's validation table)
        printed = run(["bash", "-c", command], block)
        if block.note != "output varies":
            wanted = [line.rstrip() for line in expected if line.strip() != "..."]
            assert [line.rstrip() for line in printed.splitlines()][-len(wanted) :] == wanted, (
                f"{block.where}: {shlex.quote(command)} printed\n{printed}"
            )
    else:
        pytest.fail(f"{block.where}: a ```{block.language} block this test cannot run")
    return None


def stop(background: list[subprocess.Popen]) -> None:
    while background:
        process = background.pop()
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)


def test_readme_parser_finds_the_blocks_and_their_notes():
    text = "intro\n<!-- readme: output varies -->\n```\n$ echo a \\\n  b\na b\n```\n\n```bash\nls\n```\n"
    blocks = readme_blocks(text, "docs/page.md")
    assert [(b.language, b.note, b.where) for b in blocks] == [
        ("", "output varies", "docs/page.md line 3"),
        ("bash", "", "docs/page.md line 9"),
    ]
    assert commands_and_output(blocks[0]) == ("echo a b", ["a b"])


def test_every_docs_page_runs_after_the_readme():
    """Each page of docs/ is in the nav (mkdocs' strict build fails otherwise), so its blocks run here."""
    listed = pages()
    assert listed[0] == "README.md"
    assert sorted(listed[1:]) == sorted(f"docs/{p.relative_to(DOCS).as_posix()}" for p in DOCS.rglob("*.md"))
    assert all(readme_blocks((ROOT / page).read_text(encoding="utf-8"), page) for page in listed[:4])


def test_a_failing_block_fails_the_run(pytestconfig):
    with pytest.raises(AssertionError, match=r"(?s)docs/page\.md line 7:.*no such thing"):
        run_block(
            Block("bash", "echo before; echo no such thing >&2; false", 7, "", "docs/page.md"), pytestconfig
        )
    with pytest.raises(AssertionError, match=r"docs/page\.md line 2: 'echo b' printed"):
        run_block(Block("", "$ echo b\na", 2, "", "docs/page.md"), pytestconfig)


def test_every_code_block_of_the_readme_and_the_docs_runs_as_written(pytestconfig):
    done: set[tuple[str, str]] = set()
    background: list[subprocess.Popen] = []
    try:
        for page in pages():
            for block in readme_blocks((ROOT / page).read_text(encoding="utf-8"), page):
                if (block.language, block.text) in done:
                    continue
                done.add((block.language, block.text))
                process = run_block(block, pytestconfig)
                if process is not None:
                    background.append(process)
            stop(background)
    finally:
        stop(background)
