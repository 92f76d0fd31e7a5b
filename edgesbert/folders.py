"""Atomic writing of a folder: build it beside the target, then swap it in whole.

The swap is two renames in the same parent folder, so the target is either the old folder or the new
one, never a mix, and an exception while building leaves the target untouched.

A process stopped while it writes leaves nothing either. SIGTERM and SIGHUP (what ``timeout``, CI
cancellation and ``docker stop`` send) raise ``Interrupted`` in the main thread while a staging folder
exists, so it is removed like after any other failure. SIGKILL cannot be caught: the staging folder
(``.NAME.staging-PID-XXXXXXXX``) stays, and the next write of the same target removes it. Its writer
holds an advisory lock (flock) on it while it lives, and the kernel drops the lock when the process
dies, however it dies; so a folder whose lock can be taken is debris, whatever its pid means now.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType

#: signals that end a process by default and can be caught; SIGKILL cannot
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGTERM", "SIGHUP") if hasattr(signal, name))
#: staging and retired folders named before their writers locked them are removed only when this old
OLD_STYLE_GRACE_S = 24 * 3600

#: lock descriptors of this process's staging folders, released once they are swapped in or removed
_LOCKS: dict[Path, int] = {}


class Interrupted(SystemExit):
    """SIGTERM or SIGHUP arrived while a folder was written; its staging folder is removed (or swapped in).

    A ``SystemExit``, so that ``except Exception`` in a library does not swallow it and an uncaught one
    ends the process quietly with the shell's status for the signal, 128 + its number (143 for SIGTERM).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(128 + signum)
        self.exit_status = 128 + signum
        self.signal_name = signal.Signals(signum).name

    def __str__(self) -> str:
        return f"stopped by {self.signal_name}"


class _StopSignals:
    """Turns stop signals into ``Interrupted``, except inside ``held()``, which delivers them at its end."""

    def __init__(self) -> None:
        self.holding = 0
        self.pending: int | None = None

    def handle(self, signum: int, frame: FrameType | None) -> None:
        if self.holding:
            self.pending = signum
            return
        raise Interrupted(signum)

    @contextmanager
    def caught(self) -> Iterator[None]:
        """Catch the stop signals whose handler is the default one, in the main thread only."""
        if not _in_main_thread():
            yield
            return
        previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
        # a handler of the application's own (or an ignored signal, as under nohup) stays as it is
        mine = [s for s, handler in previous.items() if handler == signal.SIG_DFL]
        for s in mine:
            signal.signal(s, self.handle)
        try:
            yield
        finally:
            for s in mine:
                signal.signal(s, previous[s])

    @contextmanager
    def held(self) -> Iterator[None]:
        """Hold stop signals back: a rename pair or a removal must not be cut in the middle."""
        if not _in_main_thread():  # handlers run in the main thread only: nothing to hold back
            yield
            return
        self.holding += 1
        try:
            yield
        finally:
            self.holding -= 1
            if not self.holding and self.pending is not None:
                signum, self.pending = self.pending, None
                raise Interrupted(signum)


_STOP = _StopSignals()


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _lock(folder: Path, *, wait: bool) -> int | None:
    """Lock ``folder`` for this process and return the descriptor that holds the lock.

    None if the folder is gone or was replaced, if another process holds it (and not ``wait``), or if
    this system or file system has no such locks (then nothing is ever taken for debris).
    """
    if sys.platform == "win32":
        return None
    import fcntl

    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        if os.path.samestat(os.fstat(fd), os.stat(folder)):
            return fd
    except OSError:
        pass
    os.close(fd)
    return None


def _unlock(fd: int | None) -> None:
    if fd is not None:
        os.close(fd)


def _debris_pattern(target: Path) -> re.Pattern[str]:
    """Staging and retired folders of ``target``: ``.NAME.staging-PID-XXXXXXXX``, older ones without PID."""
    return re.compile(rf"\.{re.escape(target.name)}\.(staging|retired)-(?:(\d+)-)?[a-z0-9_]{{8}}")


def _lock_if_dead(folder: Path, has_pid: bool) -> int | None:
    """A lock on ``folder`` if the process that wrote it has died, else None."""
    if not has_pid:  # written before writers held locks: removed once nobody can still be writing it
        try:
            if time.time() - folder.stat().st_mtime < OLD_STYLE_GRACE_S:
                return None
        except OSError:
            return None
    return _lock(folder, wait=False)


def remove_debris(target: Path) -> None:
    """Remove the staging and retired folders that dead writers of ``target`` left beside it.

    A writer killed between the two renames of its swap left no target but a retired folder, the previous
    target, which goes back in place. Never raises: what cannot be removed now is left for a later run.
    """
    pattern = _debris_pattern(target)
    try:
        entries = [(p, m) for p in target.parent.iterdir() if (m := pattern.fullmatch(p.name))]
    except OSError:
        return
    dead: dict[Path, tuple[str, int]] = {}
    for path, match in entries:
        if (fd := _lock_if_dead(path, has_pid=match[2] is not None)) is not None:
            dead[path] = (match[1], fd)
    try:
        retired = [p for p, (kind, _) in dead.items() if kind == "retired"]
        if retired and not os.path.lexists(target):
            newest = max(retired, key=lambda p: p.stat().st_ctime)  # a rename sets ctime
            newest.rename(target)
            _unlock(dead.pop(newest)[1])
        for path in dead:
            shutil.rmtree(path, ignore_errors=True)
    except OSError:
        pass
    finally:
        for _, fd in dead.values():
            _unlock(fd)


def new_staging_folder(target: Path) -> Path:
    """An empty folder beside ``target`` to build its replacement in; OSError if that is not possible.

    Removes the debris of dead writers of ``target`` first, and locks the new folder for this process
    until ``swapped_in`` swaps it in or removes it.
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_debris(target)
    prefix = f".{target.name}.staging-{os.getpid()}-"
    while True:
        staging = Path(tempfile.mkdtemp(prefix=prefix, dir=target.parent))
        lock = _lock(staging, wait=True)
        if lock is not None or staging.is_dir():
            break
        # another writer's remove_debris took it before this process locked it: make another
    staging.chmod(0o755)  # mkdtemp makes it private; the finished folder is an ordinary one
    if lock is not None:
        _LOCKS[staging] = lock
    return staging


def _swap(staging: Path, target: Path) -> None:
    """Rename ``staging`` to ``target``; an existing target is renamed aside first, then removed."""
    if not target.exists():
        staging.rename(target)
        return
    retired = target.with_name(f".{target.name}.retired-{os.getpid()}-{os.urandom(4).hex()}")
    lock = _lock(target, wait=False)  # so that no other writer takes the retired folder for debris
    try:
        target.rename(retired)
        try:
            staging.rename(target)
        except OSError:
            retired.rename(target)
            raise
        shutil.rmtree(retired, ignore_errors=True)
    finally:
        _unlock(lock)


@contextmanager
def swapped_in(staging: Path, target: Path) -> Iterator[Path]:
    """Yield ``staging``; on success it replaces ``target``, on failure (or SIGTERM, SIGHUP) it is removed."""
    with _STOP.caught():
        try:
            yield staging
            with _STOP.held():
                _swap(staging, target)
        except BaseException:
            with _STOP.held():
                shutil.rmtree(staging, ignore_errors=True)
            raise
        finally:
            _unlock(_LOCKS.pop(staging, None))


@contextmanager
def staged_folder(target: str | Path) -> Iterator[Path]:
    """Yield an empty staging folder that replaces ``target`` once the block finishes without error."""
    target = Path(target).resolve()
    with swapped_in(new_staging_folder(target), target) as staging:
        yield staging


def replace_atomically(path: Path, write: Callable[[Path], object], scratch: Path | None = None) -> None:
    """Call ``write`` on a temporary path, then rename it to ``path``: never a partial file at ``path``.

    The temporary file is made in ``scratch`` (on the same file system), else beside ``path``.
    """
    temporary = (scratch or path.parent) / f".{path.name}.{os.getpid()}.part"
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
