"""Crash-safe file replacement: a reader sees the old file or the complete new one, never a partial one.

The data goes to a temporary name in the same folder (same file system, so the rename is atomic), is fsynced, and is
renamed over the destination; the folder is fsynced so the rename itself survives a power cut. Temporary names start
with '.' and end with TEMP_SUFFIX, so nothing that lists episode files (`*.npz`) can mistake one for an episode.
"""

from __future__ import annotations

import os
import re
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from navigator.workers import process_runs

TEMP_SUFFIX = ".tmp"
# temporary_name's names: the writer's process id is the first group.
_TEMPORARY = re.compile(r"^\..+\.(\d+)-[0-9a-f]{8}" + re.escape(TEMP_SUFFIX) + "$")


def temporary_name(path: Path) -> Path:
    # pid + random part: parallel workers (or a retry after a crash) never collide on one temporary file.
    return path.with_name(f".{path.name}.{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}")


def remove_orphaned_temporaries(folder: Path) -> list[Path]:
    """Remove the temporary files in `folder` whose writer no longer runs, and return them: what a process stopped
    mid-write leaves (a worker that Ctrl-C's pool shutdown terminated cannot clean up). A file whose writer still
    runs is its writer's to finish or remove."""
    removed = []
    for path in folder.iterdir() if folder.is_dir() else ():
        match = _TEMPORARY.match(path.name)
        if match is None or process_runs(int(match[1])):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed



def fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def commit(temporary: Path, path: Path) -> None:
    """Move a finished temporary file over `path` and make the rename durable."""
    os.replace(temporary, path)
    fsync_folder(path.parent)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """A temporary path for a library that writes files by name (h5py, PyAV) to fill; on a clean exit the file
    replaces `path` (fsynced first), on error it vanishes."""
    temporary = temporary_name(path)
    try:
        yield temporary
        descriptor = os.open(temporary, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
        commit(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


@contextmanager
def atomic_output(path: Path) -> Iterator[BinaryIO]:
    """Open a temporary file to write `path`'s new content; on a clean exit it replaces `path`, on error it vanishes.

    The handle is opened for reading too, so the caller can checksum exactly the bytes that reached the file.
    """
    with atomic_path(path) as temporary, open(temporary, "xb+") as handle:
        yield handle


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_output(path) as handle:
        handle.write(data)
