"""The `navigator` console script and `python -m navigator`: `navigator.cli.main`, reached through an import
that Ctrl-C may interrupt.

Python spends the first few tenths of a second importing the command line; a Ctrl-C then would otherwise end in a
traceback through the import machinery. It ends as an interrupt does later: one line on stderr, exit status 130."""

from __future__ import annotations

import sys

INTERRUPTED_BEFORE_START = "navigator: interrupted before the command started; nothing was done"


def main() -> int:
    """Import the command line and run it on sys.argv; returns the exit status (`navigator.cli.main`'s)."""
    try:
        from navigator.cli import main as run_command_line
    except KeyboardInterrupt:
        print(INTERRUPTED_BEFORE_START, file=sys.stderr)
        return 130
    return run_command_line(exiting=True)
