"""Fault injection for export: SIGKILL at random points, SIGTERM, a full disk, a read-only target.

Whatever stops an export, the previous folder stays whole (byte for byte) and no staging or retired
folder survives the next export. The exports run the CLI's ``main`` in processes forked from one server
that imported the exporter once: a fresh ``python -m edgesbert.cli`` spends most of its time importing.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import pytest

from edgesbert.folders import (
    STOP_SIGNALS,
    Interrupted,
    new_staging_folder,
    remove_debris,
    staged_folder,
    swapped_in,
)
from edgesbert.runtime.manifest import MANIFEST_FILE, Manifest

ROOT = Path(__file__).resolve().parents[1]
FAST = ("--validation-size", "16")
#: SIGKILLs: half at random points over a whole export, half over the time its staging folder exists
KILLS = 10
#: an export that takes longer than this is stuck; the server kills it
STUCK_S = 180.0

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="forks exports and sends POSIX signals")


# --- an export server: imports once, forks a child per export -------------------------------------------


def serve_exports() -> None:
    """Import the exporter, then run each export asked for on stdin (a JSON line) in a forked child."""
    import onnxruntime  # noqa: F401  (imported here once, not in every child)

    import edgesbert.exporters  # noqa: F401
    from edgesbert.cli import main

    print("ready", flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            _run_child(main, request["argv"], request["log"])
        print(json.dumps(_supervise(pid, request)), flush=True)


def _run_child(main: Callable[[list[str]], int], argv: list[str], log: str) -> NoReturn:
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    try:
        code = main(argv)
    except SystemExit as e:  # what the interpreter does with one
        code = e.code if isinstance(e.code, int) else 1
    except BaseException:
        traceback.print_exc()
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _supervise(pid: int, request: dict) -> dict:
    """Wait for the child; signal it ``delay`` s after it starts (or, with ``watch``, after it stages).

    The child is signalled only before it is reaped, so its pid cannot belong to another process yet.
    """
    output = Path(request["output"])
    staging = f".{output.name}.staging-{pid}-"
    signum, start, staged = request["signal"], time.monotonic(), None
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        now = time.monotonic()
        if done:
            return {
                "exit": os.waitstatus_to_exitcode(status),
                "signalled": request["signal"] is not None and signum is None,
                "s": now - start,
                "staged_s": None if staged is None else staged - start,
            }
        if staged is None and any(name.startswith(staging) for name in os.listdir(output.parent)):
            staged = now
        armed = staged if request["watch"] else start
        if signum is not None and armed is not None and now - armed >= request["delay"]:
            os.kill(pid, signum)
            signum = None
        if now - start > STUCK_S:
            os.kill(pid, signal.SIGKILL)
            start = now  # once more only if it ignores even that
        time.sleep(0.002)


@dataclass(frozen=True)
class Outcome:
    """How an export ended: its exit status (minus the signal number if one ended it) and its output."""

    exit: int
    signalled: bool
    seconds: float
    #: when its staging folder appeared, in seconds from its start; None if it never did
    staged_after: float | None
    log: str


class ExportServer:
    """The test's side of ``serve_exports``."""

    def __init__(self, log_folder: Path) -> None:
        self.logs = log_folder
        self.runs = 0
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from tests.test_export_faults import serve_exports; serve_exports()"],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.ready = False

    def export(
        self,
        source: Path,
        output: Path,
        *,
        signum: int | None = None,
        delay: float = 0.0,
        watch: bool = False,
    ) -> Outcome:
        """Run ``edgesbert export SOURCE --output OUTPUT``; send ``signum`` after ``delay`` s if given.

        With ``watch`` the delay counts from the moment the staging folder of ``output`` appears.
        """
        assert self.process.stdin and self.process.stdout
        if not self.ready:
            assert self.process.stdout.readline() == "ready\n", "the export server did not start"
            self.ready = True
        self.runs += 1
        log = self.logs / f"export-{self.runs}.log"
        argv = ["export", str(source), "--output", str(output), *FAST]
        request = {
            "argv": argv,
            "log": str(log),
            "output": str(output),
            "signal": signum,
            "delay": delay,
            "watch": watch,
        }
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        reply = json.loads(self.process.stdout.readline())
        return Outcome(
            reply["exit"], reply["signalled"], reply["s"], reply["staged_s"], log.read_text(errors="replace")
        )

    def close(self) -> None:
        self.process.kill()  # it has reaped every child; its own shutdown would only cost time
        self.process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExportServer]:
    server = ExportServer(tmp_path_factory.mktemp("export-logs"))
    yield server
    server.close()


@pytest.fixture(scope="module")
def source(tiny_bi_encoder_folder) -> Path:
    return tiny_bi_encoder_folder("bert-mean")


@pytest.fixture(scope="module")
def baseline(
    server: ExportServer, source: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, Outcome]:
    """A complete export to copy as the previous folder, and how long it took."""
    folder = tmp_path_factory.mktemp("baseline") / "model"
    outcome = server.export(source, folder)
    assert outcome.exit == 0, outcome.log
    assert outcome.staged_after is not None
    return folder, outcome


# --- what a folder holds -------------------------------------------------------------------------------


def files_of(folder: Path) -> dict[str, bytes] | None:
    """Every file under ``folder`` with its bytes; None if there is no folder."""
    if not folder.exists():
        return None
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def debris_of(target: Path) -> list[str]:
    """Staging and retired folders of ``target`` beside it."""
    prefixes = (f".{target.name}.staging-", f".{target.name}.retired-")
    if not target.parent.is_dir():
        return []
    return sorted(p.name for p in target.parent.iterdir() if p.name.startswith(prefixes))


def assert_complete(folder: Path) -> None:
    """A whole model folder: every file the manifest names, with its checksum, and nothing else."""
    checksums = Manifest.load(folder).provenance.checksums
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
    assert files == {*checksums, MANIFEST_FILE}
    for name, digest in checksums.items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


def check_after_kill(target: Path, previous: dict[str, bytes] | None) -> dict[str, bytes] | None:
    """The state a SIGKILL may leave ``target`` in; returns what the next kill must find."""
    now = files_of(target)
    if now == previous:
        return previous
    if now is None:  # killed between the two renames: the previous folder waits in a retired one
        retired = [target.parent / name for name in debris_of(target) if ".retired-" in name]
        assert any(files_of(r) == previous for r in retired), debris_of(target)
        return previous
    assert_complete(target)  # killed after the swap: the new folder is whole
    return now


def assert_clean_export_error(outcome: Outcome, message: str) -> None:
    assert outcome.exit == 1, outcome.log
    assert "Traceback" not in outcome.log
    assert outcome.log.rstrip("\n").splitlines()[-1].startswith("edgesbert export: error: "), outcome.log
    assert message in outcome.log


# --- SIGKILL and SIGTERM --------------------------------------------------------------------------------


def test_sigkill_at_random_points_never_damages_the_folder_and_the_next_export_cleans_up(
    server: ExportServer, source: Path, baseline: tuple[Path, Outcome], tmp_path: Path
):
    previous, timing = baseline
    assert timing.staged_after is not None
    # even runs: a kill anywhere in the run; odd runs: while the folder is staged, swapped or removed
    spans = [timing.seconds, timing.seconds - timing.staged_after]
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    shutil.copytree(previous, out)
    expected = {out: files_of(out), fresh: None}
    rng = random.Random(14)
    killed_while_staged = 0
    for i in range(KILLS):
        target = fresh if i % 4 == 1 else out  # some exports have no previous folder
        point = (i // 2 + rng.random()) / (KILLS // 2)  # one random point in each slice of the span
        delay = spans[i % 2] * point
        outcome = server.export(source, target, signum=signal.SIGKILL, delay=delay, watch=i % 2 == 1)
        assert outcome.exit in (-signal.SIGKILL, 0), outcome.log  # 0: it finished before the kill
        killed_while_staged += outcome.exit == -signal.SIGKILL and outcome.staged_after is not None
        expected[target] = check_after_kill(target, expected[target])
    assert killed_while_staged >= 2, "too few kills landed while a staging folder existed"
    for target in (out, fresh):
        outcome = server.export(source, target)
        assert outcome.exit == 0, outcome.log
        assert_complete(target)
        assert debris_of(target) == []


def test_sigterm_mid_export_removes_the_staging_folder_at_once_and_exits_143(
    server: ExportServer, source: Path, baseline: tuple[Path, Outcome], tmp_path: Path
):
    out = shutil.copytree(baseline[0], tmp_path / "out")
    before = files_of(out)
    outcome = server.export(source, out, signum=signal.SIGTERM, delay=0.05, watch=True)
    assert outcome.signalled
    assert outcome.exit == 143, outcome.log
    assert "Traceback" not in outcome.log
    assert "error:" not in outcome.log  # a stop asked for is not an error; the CLI may say it stopped
    assert files_of(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


@pytest.fixture
def old_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "weights").write_text("old")
    return folder


def send_to_self(signum: int) -> None:
    """Send ``signum`` to this thread, once edgesbert catches it (else it would end the test run).

    To the main thread, not the process: the test process runs native worker threads (onnxruntime,
    OpenVINO, torch) that a process-directed signal may land on, and one of them crashed on it once.
    """
    assert signal.getsignal(signum) != signal.SIG_DFL, "edgesbert does not catch the signal"
    signal.pthread_kill(threading.main_thread().ident or 0, signum)
    time.sleep(5)  # the handler raises long before this ends


def in_fresh_interpreter(function: str, *args: object) -> None:
    """Run ``function(*args)`` of this module in a fresh interpreter and fail if it fails.

    Not in the test process: once OpenVINO has run in a process, a Python signal handler there crashed it
    (SIGSEGV, also in a forked child); see the session notes. Export processes without OpenVINO are fine.
    """
    code = f"import sys; from tests.test_export_faults import {function}; {function}(*sys.argv[1:])"
    result = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("signum", STOP_SIGNALS, ids=[signal.Signals(s).name for s in STOP_SIGNALS])
def test_a_stop_signal_while_staged_removes_the_staging_folder(old_folder: Path, signum: int):
    if signal.getsignal(signum) == signal.SIG_IGN:  # inherited, e.g. under nohup: edgesbert leaves it alone
        pytest.skip(f"{signal.Signals(signum).name} is ignored in this process, as its children inherit")
    in_fresh_interpreter("stop_while_staged", old_folder, int(signum))


def stop_while_staged(folder: str, signum_text: str) -> None:
    old_folder, signum = Path(folder), int(signum_text)
    assert signal.getsignal(signum) == signal.SIG_DFL
    with pytest.raises(Interrupted) as stopped, staged_folder(old_folder) as staging:
        (staging / "weights").write_text("half")
        send_to_self(signum)
    assert stopped.value.exit_status == stopped.value.code == 128 + signum
    assert str(stopped.value) == f"stopped by {signal.Signals(signum).name}"
    assert signal.getsignal(signum) == signal.SIG_DFL  # the previous handler is back
    assert (old_folder / "weights").read_text() == "old"
    assert [p.name for p in old_folder.parent.iterdir()] == ["model"]


def test_a_stop_signal_during_the_swap_waits_until_the_swap_is_done(old_folder: Path):
    in_fresh_interpreter("stop_during_swap", old_folder)


def stop_during_swap(folder: str) -> None:
    old_folder, rename = Path(folder), Path.rename

    def rename_then_signal(self: Path, new: Path) -> Path:
        moved = rename(self, new)
        if ".retired-" in Path(new).name:  # between the two renames of the swap
            signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGTERM)  # see send_to_self
        return moved

    with pytest.raises(Interrupted), staged_folder(old_folder) as staging:
        Path.rename = rename_then_signal  # type: ignore[method-assign]
        (staging / "weights").write_text("new")
    Path.rename = rename  # type: ignore[method-assign]
    assert (old_folder / "weights").read_text() == "new"
    assert [p.name for p in old_folder.parent.iterdir()] == ["model"]


# --- what a dead writer leaves, and what a live one keeps -----------------------------------------------

KILLED_IN_THE_SWAP = """
import os, signal, sys
from pathlib import Path
from edgesbert.folders import staged_folder

rename = Path.rename
def rename_then_die(self, new):
    moved = rename(self, new)
    if ".retired-" in Path(new).name:
        os.kill(os.getpid(), signal.SIGKILL)
    return moved

Path.rename = rename_then_die
with staged_folder(sys.argv[1]) as staging:
    (staging / "weights").write_text("new")
"""

HOLDS_A_STAGING_FOLDER = """
import sys, time
from pathlib import Path
from edgesbert.folders import new_staging_folder

print(new_staging_folder(Path(sys.argv[1])), flush=True)
time.sleep(120)
"""


def python(code: str, *args: object, **options) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, text=True, **options)


def test_a_kill_between_the_two_renames_is_repaired_by_the_next_write(old_folder: Path):
    assert python(KILLED_IN_THE_SWAP, old_folder).wait(timeout=60) == -signal.SIGKILL
    assert not old_folder.exists()
    left = {p.name.split("-")[0]: p for p in old_folder.parent.iterdir()}
    assert sorted(left) == [".model.retired", ".model.staging"]
    assert files_of(left[".model.retired"]) == {"weights": b"old"}
    with pytest.raises(RuntimeError, match="fails too"), staged_folder(old_folder):
        assert (old_folder / "weights").read_text() == "old"  # restored before this write began
        raise RuntimeError("this write fails too")
    assert (old_folder / "weights").read_text() == "old"
    assert [p.name for p in old_folder.parent.iterdir()] == ["model"]


def test_a_live_writers_staging_folder_is_never_taken_for_debris(old_folder: Path):
    other = python(HOLDS_A_STAGING_FOLDER, old_folder, stdout=subprocess.PIPE)
    try:
        assert other.stdout
        theirs = Path(other.stdout.readline().strip())
        assert theirs.name.startswith(f".model.staging-{other.pid}-")
        mine = new_staging_folder(old_folder)  # this process's own: kept as well
        remove_debris(old_folder)
        assert theirs.is_dir() and mine.is_dir()
        with swapped_in(mine, old_folder):
            (mine / "weights").write_text("new")
        assert theirs.is_dir()
    finally:
        other.kill()
        other.wait()
    remove_debris(old_folder)
    assert [p.name for p in old_folder.parent.iterdir()] == ["model"]
    assert (old_folder / "weights").read_text() == "new"


def test_a_dead_writer_is_told_by_its_lock_not_its_pid(old_folder: Path):
    parent = old_folder.parent
    # named after live pids (init's, this process's), but unlocked: the processes that wrote them are gone
    dead = [parent / ".model.staging-1-abcdefgh", parent / f".model.retired-{os.getpid()}-0123abcd"]
    # named before writers held locks: they may belong to an export running right now, unless a day old
    old_style = [parent / ".model.staging-k2x_9q0a", parent / ".model.retired-0123abcd"]
    unrelated = [parent / ".model2.staging-1-abcdefgh", parent / ".model.staging-notes", parent / "other"]
    for folder in dead + old_style + unrelated:
        folder.mkdir()
    remove_debris(old_folder)
    assert sorted(parent.iterdir()) == sorted([old_folder, *old_style, *unrelated])
    day_ago = time.time() - 25 * 3600
    for folder in old_style + unrelated:
        os.utime(folder, (day_ago, day_ago))
    remove_debris(old_folder)
    assert sorted(parent.iterdir()) == sorted([old_folder, *unrelated])


# --- a full disk, a read-only target ---------------------------------------------------------------------


@contextmanager
def tmpfs(mount_point: Path, size: str) -> Iterator[Path]:
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount_point)], capture_output=True
    )
    if mounted.returncode:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=True)


def read_only(mount_point: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(mount_point)], check=True)


def fill(disk: Path, leave: int) -> None:
    """Fill ``disk`` until ``leave`` bytes are free."""
    (disk / "filler").unlink(missing_ok=True)
    stats = os.statvfs(disk)
    (disk / "filler").write_bytes(b"\0" * max(0, stats.f_bavail * stats.f_frsize - leave))


def on_disk(file: Path, disk: Path) -> int:
    """The space ``file`` takes on ``disk``: whole blocks."""
    block = os.statvfs(disk).f_frsize
    return -(-file.stat().st_size // block) * block


def test_a_full_disk_is_a_clear_error_and_keeps_the_previous_folder(
    server: ExportServer, source: Path, baseline: tuple[Path, Outcome], tmp_path: Path
):
    previous = baseline[0]
    room = 3 * sum(p.stat().st_size for p in previous.rglob("*"))  # for two exports, not for the filler too
    with tmpfs(tmp_path / "disk", f"{room // 1024}k") as disk:
        out = shutil.copytree(previous, disk / "out")
        before = files_of(out)
        tokenizer, graph = (on_disk(out / name, disk) for name in ("tokenizer.json", "onnx/model.onnx"))
        # no room at all (tokenizers fails); for all but the end of the graph (onnx); for no manifest
        for leave in (0, tokenizer + graph // 2, tokenizer + graph):
            fill(disk, leave)
            outcome = server.export(source, out)
            assert_clean_export_error(outcome, f"no space left on device in {disk} while writing the export")
            assert f"{out} was left as it was: free some space or choose another --output" in outcome.log
            assert files_of(out) == before
            assert sorted(p.name for p in disk.iterdir()) == ["filler", "out"]
        (disk / "filler").unlink()
        assert server.export(source, out).exit == 0
        assert_complete(out)
        assert sorted(p.name for p in disk.iterdir()) == ["out"]


def test_a_read_only_target_is_a_clear_error_and_changes_nothing(
    server: ExportServer, source: Path, baseline: tuple[Path, Outcome], tmp_path: Path
):
    with tmpfs(tmp_path / "disk", "2m") as disk:
        out = shutil.copytree(baseline[0], disk / "out")
        before = files_of(out)
        read_only(disk)
        outcome = server.export(source, out)
        assert_clean_export_error(outcome, f"cannot write into {disk}: Read-only file system")
        assert files_of(out) == before
        assert sorted(p.name for p in disk.iterdir()) == ["out"]
    with tmpfs(tmp_path / "model", "2m") as model:  # the target itself is a (read-only) mount
        shutil.copytree(baseline[0], model, dirs_exist_ok=True)
        before = files_of(model)
        read_only(model)
        outcome = server.export(source, model)
        assert_clean_export_error(outcome, f"{model} is a mount point, which cannot be replaced whole")
        assert files_of(model) == before
        assert sorted(p.name for p in tmp_path.iterdir()) == ["disk", "model"]
