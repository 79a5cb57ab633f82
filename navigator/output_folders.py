"""The output folders navigator's commands write, told apart by the record each holds, and the names each writes
itself: what keeps one command's output out of another's, and what a continued command expects to find there."""

from __future__ import annotations

import fnmatch
from pathlib import Path

from navigator.errors import UserError

# The record each kind of output folder holds: how a folder written by one command is told from another's.
RECORDS = {"dataset": "manifest.json", "training run": "run.json", "evaluation": "eval.json",
           "comparison": "compare.json", "learning curve": "adapt-curve.json"}
# The files and sub-folders (glob patterns) each kind writes at its top level, and what it writes there; a name
# without a suffix is a folder.
WRITES = {"dataset": {"manifest.json": "its manifest", "episodes": "its episode files"},
          "training run": {"dagger": "its DAgger roll-outs", "tensorboard": "its training curves",
                           "run.json": "its record", "progress.json": "its progress", "history.json": "its history",
                           "best.pt": "its best checkpoint", "last.pt": "its last checkpoint"},
          "evaluation": {"episodes": "its episode records", "videos": "its videos of failures",
                         "eval.json": "its record", "results.json": "its results", "report.md": "its report",
                         "success.png": "a figure", "trajectories.png": "a figure", "distance.png": "a figure",
                         "sweep-*.png": "a figure"},
          "comparison": {"runs": "its training runs", "eval": "its evaluations", "compare.json": "its record",
                         "comparison.json": "its results", "comparison.md": "its table",
                         "comparison.png": "its figure", "finished.json": "its completion record"},
          "learning curve": {"runs": "its adaptations", "eval": "its evaluations", "data": "its demonstrations",
                             "adapt-curve.json": "its record", "curve.json": "its results", "curve.md": "its report",
                             "curve.png": "its figure", "finished.json": "its completion record"}}
# What an exported bundle holds, and nothing else (export --overwrite refuses to replace a folder with more).
BUNDLE_FILES = ("policy.json", "policy.onnx")


def with_article(kind: str) -> str:
    """ "an evaluation", "a dataset": a kind of folder in a sentence."""
    return f"{'an' if kind[0] in 'aeiou' else 'a'} {kind}"


def other_output(folder: Path, kind: str) -> str | None:
    """What `folder` holds when it is another kind's output than `kind` ("a learning curve (adapt-curve.json)"),
    told by its record; None when it holds none of the others'."""
    other = next((name for name, record in RECORDS.items() if name != kind and (folder / record).exists()), None)
    return None if other is None else f"{with_article(other)} ({RECORDS[other]})"


def written_by(kind: str, name: str) -> str | None:
    """What the `kind` of folder writes at top-level `name` ("its record"), or None when the name is not its own."""
    return next((what for pattern, what in WRITES.get(kind, {}).items() if fnmatch.fnmatchcase(name, pattern)), None)


def refuse_wrong_kinds(folder: Path, kind: str) -> None:
    """UserError, before a continued command touches anything, for a file where `kind` keeps a folder or a folder
    where it keeps a file (put there by hand): it would fail part-way, after rewriting its records."""
    for name, what in WRITES.get(kind, {}).items():
        path = folder / name
        if "*" in name or not (path.exists() or path.is_symlink()):
            continue
        folder_expected = not Path(name).suffix
        if path.is_dir() != folder_expected:
            found = "a folder" if path.is_dir() else "a file" if path.is_file() else "neither a file nor a folder"
            raise UserError(f"{path} is {found} where the {kind} in {folder} keeps {what} (a "
                            f"{'folder' if folder_expected else 'file'}): move it out of {folder}, then continue")
