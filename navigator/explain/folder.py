"""An explanation's output folder: the files it writes, and the check of --out made before any work (this module
imports nothing heavy, so a bad --out is refused at once)."""
from __future__ import annotations

from pathlib import Path

from navigator.commands.common import check_output_folder
from navigator.errors import UserError, some_of

EXPLAIN_FILES = ("saliency.mp4", "traces.png", "traces.npz", "wiring.png", "ablation.md", "ablation.png",
                 "ablation.json", "explain.json")


def check_out(out: Path, overwrite: bool) -> None:
    """Refuse, before any work, an --out that holds anything (unless --overwrite, and then only an earlier
    explanation's files: nothing else is ever replaced), is a file, or cannot be written."""
    if out.exists() and out.is_dir():
        names = sorted(path.name for path in out.iterdir())
        if names and not overwrite:
            raise UserError(f"--out {out} already exists and is not empty; pass --overwrite to replace the "
                            f"explanation there, or choose another folder")
        others = [name for name in names if name not in EXPLAIN_FILES]
        if others:
            raise UserError(f"--out {out} holds files that are not an explanation's ({some_of(others)}): "
                            f"--overwrite replaces only {', '.join(EXPLAIN_FILES)}; choose another folder")
    check_output_folder(out, "--out", continuing=True)
