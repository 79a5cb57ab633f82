"""The exception type the CLI turns into a clean error message (no traceback) and exit code 2, and the system's
refusals (no permission, a full disk) it reports the same way."""

from __future__ import annotations

import errno
from pathlib import Path


class UserError(Exception):
    """Bad input from the user: the message names the problem and the fix."""


def some_of(names: list[str], shown: int = 5) -> str:
    """`names` for a message: the first `shown`, then how many more ("a, b, c and 4 more")."""
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """`count` and `noun` for a message, the noun in the plural (`plural`, else an added s) unless the count is one:
    "1 error", "3 errors", "2 successes"."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {plural or noun + 's'}"


# What the system refuses to a user (not a bug): no permission, a read-only file system, a full disk.
ACCESS_ERRORS = (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOSPC, errno.EDQUOT)


def access_problem(error: OSError, where: str | Path | None = None, again: str = "run it again") -> str:
    """One line for an OSError of ACCESS_ERRORS: the path it concerns (the error's, else `where`: the output folder
    being written), what the system said and what to do; `again` says how to go on once space is freed (a command
    that saved part of its work continues it with --resume)."""
    where = f"{error.filename or where}: " if error.filename or where else ""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = f"free some space there (or choose an output folder on another disk) and {again}"
    elif error.errno == errno.EROFS:
        fix = "choose a folder on a writable file system"
    else:
        fix = "give this user access to it (ls -l shows who may read and write it), or choose another path"
    return f"{where}{(error.strerror or str(error)).lower()}: {fix}"


def refuse_if_denied(error: BaseException) -> None:
    """For a reader that takes a file it cannot read as missing or damaged: raise a UserError saying what the system
    refused (`access_problem`) when `error` is one of ACCESS_ERRORS, since "damaged, start over" would be the wrong
    advice; otherwise return, for the reader's own handling."""
    if isinstance(error, OSError) and error.errno in ACCESS_ERRORS:
        raise UserError(access_problem(error)) from None
