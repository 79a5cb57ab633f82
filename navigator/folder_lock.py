"""One writer per output folder: a dataset, a training run, an evaluation or a study (comparison, learning curve)
is written by one process at a time.

A long job is easy to start twice: `--resume` in a second terminal while the first still runs, or a job thought
dead. Two writers would interleave their files (the same episode flown twice, one checkpoint overwriting the
other's), so the second is refused before it reads or writes anything. The lock is flock(2) on the folder itself:
no lock file to litter the folder or to go stale, since the kernel drops it when the holding process ends, however
it ends. Locks are per process and re-entrant in it (a comparison's training run may write a dataset it also
reads); worker processes never take them, their parent writes.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path

from navigator.errors import UserError

_held: dict[str, list[int]] = {}  # real path -> [descriptor, holders] in this process


def _in_use(folder: Path, what: str) -> UserError:
    return UserError(f"{folder} is in use: another navigator process is writing this {what}; wait for it to end (or "
                     f"stop it), then run the command again")


def refuse_if_in_use(folder: Path, what: str) -> None:
    """UserError, as FolderLock gives it, when another process is writing `folder` (holds its lock); nothing is held
    after it returns. What a refusal of a folder that is not empty says first (a second start of the same command
    finds the first one's files there, and `--resume` would be refused too while the first runs), and what a reader
    says before reading a dataset a collection is still adding to (it would read only part of it). A shared lock,
    taken and dropped at once, so that such checks never refuse each other."""
    key = os.path.realpath(folder)
    if key in _held or not os.path.isdir(key):  # this process's own writing (a DAgger round it just collected)
        return
    descriptor = os.open(key, os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        raise _in_use(folder, what) from None
    finally:
        os.close(descriptor)  # closing the descriptor drops the shared lock


class FolderLock:
    """An exclusive lock on an existing folder, held until `release` (or until this object is collected)."""

    def __init__(self, folder: Path, what: str) -> None:
        """UserError, naming `what` the folder holds ("dataset", "training run"), when another process holds it."""
        self._key: str | None = None
        key = os.path.realpath(folder)
        if key not in _held:
            descriptor = os.open(key, os.O_RDONLY | os.O_DIRECTORY)
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(descriptor)
                raise _in_use(folder, what) from None
            _held[key] = [descriptor, 0]
        _held[key][1] += 1
        self._key = key

    def release(self) -> None:
        if self._key is None:
            return
        entry = _held[self._key]
        entry[1] -= 1
        if entry[1] == 0:
            del _held[self._key]
            os.close(entry[0])  # closing the last descriptor of the lock releases it
        self._key = None

    def __enter__(self) -> FolderLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __del__(self) -> None:
        self.release()


def lock_new_folder(folder: Path, what: str, check_empty: Callable[[], None]) -> FolderLock:
    """The lock of a new output folder, taken before anything is written in it: `folder` (and its parents) made if
    missing, locked, then `check_empty` (which raises the command's refusal of a folder that is not empty) run again
    under the lock. Two commands started at once into one new folder both passed their first check; the second to
    take the lock is refused here, whether the first still writes (in use) or already finished (not empty)."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = FolderLock(folder, what)
    try:
        check_empty()
    except BaseException:
        lock.release()
        raise
    return lock
