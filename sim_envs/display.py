"""Whether a GUI window can open: an X display that answers, checked before PyBullet tries.

PyBullet's GUI connection does not fail politely without a display: it ends the process from C (or, with torch
imported first, hangs). So the display named by DISPLAY is probed here first, with a short timeout, and a missing or
silent one is a Python exception that says how to go on.
"""

from __future__ import annotations

import os
import re
import socket
import sys

from sim_envs.errors import NoDisplayError

PROBE_TIMEOUT_S = 1.0
_FIX = ("run under a virtual display (`xvfb-run -a COMMAND`), or render without a window "
        "(render_mode='rgb_array' or None)")


def require_display() -> None:
    """Raise NoDisplayError unless the X display in DISPLAY accepts a connection (Linux and other X11 systems;
    macOS and Windows open their own windows and are not checked)."""
    if sys.platform in ("darwin", "win32"):
        return
    display = os.environ.get("DISPLAY", "")
    if not display:
        raise NoDisplayError("a GUI window needs a display, but DISPLAY is not set", _FIX)
    match = re.fullmatch(r"(?P<host>[^:]*):(?P<number>\d+)(?:\.\d+)?", display)
    if match is None:
        raise NoDisplayError(f"DISPLAY={display!r} is not an X display name like ':0' or 'host:0'", _FIX)
    host, number = match["host"], int(match["number"])
    if not _answers(host, number):
        raise NoDisplayError(f"DISPLAY={display!r} names an X server that does not answer", _FIX)


def _answers(host: str, number: int) -> bool:
    """True when the X server for display `number` on `host` accepts a connection within PROBE_TIMEOUT_S."""
    if host in ("", "unix"):
        path = f"/tmp/.X11-unix/X{number}"
        # Linux X servers also listen on the abstract socket of the same name (a leading NUL byte).
        return _unix_answers(path) or _unix_answers("\0" + path)
    try:
        socket.create_connection((host, 6000 + number), timeout=PROBE_TIMEOUT_S).close()
        return True
    except OSError:
        return False


def _unix_answers(address: str) -> bool:
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(PROBE_TIMEOUT_S)
            sock.connect(address)
        return True
    except OSError:
        return False
