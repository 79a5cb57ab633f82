"""PyBullet, imported once with its build banner silenced.

PyBullet's C module prints "pybullet build time: ..." from its initialisation, straight to the process's file
descriptors (not through Python's sys.stdout), so every command that touches the simulator would print it. Importing
it here, with file descriptors 1 and 2 pointed at /dev/null for the duration, makes every later `import pybullet`
anywhere a silent cache hit. `sim_envs/__init__.py` imports this module first.
"""

from __future__ import annotations

import ctypes
import os
import sys
from types import ModuleType


def _flush_c_stdio() -> None:
    """Flush the C library's stdout/stderr buffers, so text printed by C code lands where fd 1/2 point now."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to reach (not a POSIX platform): nothing buffered there
        pass


def _import_quietly() -> ModuleType:
    if "pybullet" in sys.modules:
        return sys.modules["pybullet"]
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            stream.flush()
    saved = [os.dup(1), os.dup(2)]
    null = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(null, 1)
        os.dup2(null, 2)
        import pybullet

        _flush_c_stdio()
    finally:
        for fd, copy in zip((1, 2), saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)
        os.close(null)
    return pybullet


pybullet = _import_quietly()
