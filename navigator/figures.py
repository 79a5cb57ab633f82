"""The one way the project draws and writes a figure: matplotlib's Agg backend (no display needed), each PNG written
atomically, each figure closed once written (a long evaluation or comparison draws many).

Labels come from the user (pilot paths, run names) in any script. A character the plotting font lacks is drawn as a
box; matplotlib's warning for each such glyph is not passed on, as the markdown reports beside every figure name
the pilots in full. Importing this module imports no plotting library; `pyplot()` does.
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

from navigator.dataset.atomic import atomic_write_bytes


def pyplot() -> Any:
    """matplotlib.pyplot on the Agg backend, with missing-glyph warnings silenced (see the module docstring). The
    filter is installed on every call (it replaces its own duplicate), so it holds wherever warnings were reset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    warnings.filterwarnings("ignore", message=r"Glyph \d+ .*missing from", category=UserWarning)
    return plt


def save_png(figure: Any, path: Path, dpi: int = 120) -> None:
    """Write `figure` to `path` as a PNG at `dpi`, atomically, and close it."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    pyplot().close(figure)
    atomic_write_bytes(path, buffer.getvalue())
