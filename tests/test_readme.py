"""Every code block of the README runs as written, in order, from the repository root (issue 17).

``bash`` blocks run in bash (``set -e``) with ``.venv/bin`` first on PATH; ``python`` blocks each in a new
interpreter. Blocks without a language are printed output: where one starts with ``$ COMMAND``, the
command runs and must print those lines, unless the comment before the block says ``readme: output
varies`` (int8 figures depend on the CPU), then it need only succeed. A block after ``readme:
background`` (the server) runs in the background until the last block is done. ``make test`` is the
run that executes this test, so it is the one line not run here.
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

from tests.readme_demo import DEMO_EXPORTS, DEMO_FOLDERS

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
NOT_RUN = {"make test"}  # this test runs inside it
TIMEOUT_S = 900


@dataclass
class Block:
    """One fenced block: its language, its text, the README line it starts on, and its annotation."""

    language: str
    text: str
    line: int
    note: str


def readme_blocks(text: str) -> list[Block]:
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
            blocks.append(Block(lines[i][3:].strip(), "\n".join(lines[i + 1 : end]), i + 1, note))
            note, i = "", end
        elif lines[i].strip():
            note = ""
        i += 1
    return blocks


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
    print(f"README line {block.line}: {time.monotonic() - start:.0f} s")  # shown when the test fails
    assert result.returncode == 0, (
        f"README line {block.line}:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}"
    )
    return result.stdout


def wait_for_server(process: subprocess.Popen, url: str = "http://127.0.0.1:8080/health") -> None:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, "the README's server exited"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise AssertionError("the README's server did not answer /health within 180 s")


def test_readme_parser_finds_the_blocks_and_their_notes():
    text = "intro\n<!-- readme: output varies -->\n```\n$ echo a \\\n  b\na b\n```\n\n```bash\nls\n```\n"
    blocks = readme_blocks(text)
    assert [(b.language, b.note, b.line) for b in blocks] == [("", "output varies", 3), ("bash", "", 9)]
    assert commands_and_output(blocks[0]) == ("echo a b", ["a b"])


def test_every_readme_code_block_runs_as_written(pytestconfig):
    background: list[subprocess.Popen] = []
    try:
        for block in readme_blocks(README.read_text(encoding="utf-8")):
            if block.language == "bash":
                commands = [line.split("#")[0].strip() for line in block.text.splitlines()]
                script = "\n".join(
                    line for line in block.text.splitlines() if line.split("#")[0].strip() not in NOT_RUN
                )
                if block.note == "background":
                    process = subprocess.Popen(
                        ["bash", "-c", f"exec {script}"], cwd=ROOT, env=environment(), start_new_session=True
                    )
                    background.append(process)
                    wait_for_server(process)
                else:
                    run(["bash", "-e", "-o", "pipefail", "-c", script], block)
                    if "make demo" in commands:  # for the fixtures that need the same exports (conftest)
                        pytestconfig.stash[DEMO_FOLDERS] = {n: ROOT / "exported" / n for n in DEMO_EXPORTS}
            elif block.language == "python":
                run([sys.executable, "-c", block.text], block)
            elif block.language == "":
                command, expected = commands_and_output(block)
                if not command:
                    continue  # a printout without its command (the demo's validation table)
                printed = run(["bash", "-c", command], block)
                if block.note != "output varies":
                    wanted = [line.rstrip() for line in expected if line.strip() != "..."]
                    assert [line.rstrip() for line in printed.splitlines()][-len(wanted) :] == wanted, (
                        f"README line {block.line}: {shlex.quote(command)} printed\n{printed}"
                    )
            else:
                pytest.fail(f"README line {block.line}: a ```{block.language} block this test cannot run")
    finally:
        for process in background:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=60)
