"""The one exception type the CLI turns into a clean error message (no traceback) and exit code 2."""

from __future__ import annotations


class UserError(Exception):
    """Bad input from the user: the message names the problem and the fix."""
