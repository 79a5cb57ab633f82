"""This machine's processes as the tests look for them in /proc. Not a test module (no `test_` prefix)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path


def process_fields(name: str = "cmdline") -> Iterator[tuple[int, list[bytes]]]:
    """(pid, the NUL-separated fields of /proc/PID/NAME: "cmdline" its argv, "environ" its environment) of every
    process this user may read; one that ends while it is read, or is not readable, is passed over (a process can
    vanish between listing /proc and opening its file)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            content = (entry / name).read_bytes()
        except OSError:
            continue
        yield int(entry.name), content.split(b"\0")


def children_of(parent: int) -> list[tuple[int, list[bytes]]]:
    """(pid, argv words) of the running child processes of `parent`."""
    found = []
    for pid, argv in process_fields():
        try:  # /proc/PID/stat: "pid (name) state ppid ...", the name in parentheses may hold spaces
            ppid = int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == parent:
            found.append((pid, argv))
    return found
