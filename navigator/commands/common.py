"""What every command shares: up-front checks of the files and folders it will write, the settings continued work
recorded, and `--json` output.

Outputs are checked before any work, so that a run that would fail to save its result fails at once and a file the
user owns is never replaced without `--overwrite`. With `--json`, stdout carries exactly one JSON document: while
the command runs, file descriptor 1 points at stderr, so that even C libraries' printf (pybullet's chatter under
`--gui`) cannot reach stdout, and the document is written to the saved original at the end.
"""

from __future__ import annotations

import argparse
import ctypes
import errno
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from navigator.config import RecordedSettings
from navigator.errors import UserError, refuse_if_denied
from navigator.folder_lock import refuse_if_in_use
from navigator.json_fields import without_checksum
from navigator.output_folders import BUNDLE_FILES, RECORDS, other_output, refuse_wrong_kinds, with_article, written_by

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress

_document_stream: TextIO | None = None  # the real stdout while a --json command runs


def _check_writable_folder(folder: Path, what: str) -> None:
    """`folder` must be an existing folder where a file can be created (tried, not inferred from permission bits,
    which say nothing on a read-only file system or to root)."""
    if not folder.exists():
        raise UserError(f"{what}: folder {folder} does not exist; create it first")
    if not folder.is_dir():
        raise UserError(f"{what}: {folder} is not a folder")
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UserError(f"{what}: cannot write in folder {folder}: {write_problem(error, folder)}") from None


def write_problem(error: OSError, folder: Path, new: str = "files") -> str:
    """Why nothing `new` ("files", "folders") can be made in `folder`, in plain words: a system folder such as /proc
    refuses with "No such file or directory", which names no problem a user knows."""
    if error.errno in (errno.EACCES, errno.EPERM):
        return f"this user may not write in {folder}"
    if error.errno == errno.EROFS:
        return f"{folder} is on a read-only file system"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        return f"the disk of {folder} is full"
    return f"{folder} does not take new {new} ({error.strerror or error})"


def check_output_file(path: Path, flag: str, *, overwrite: bool, suffixes: tuple[str, ...] = ()) -> Path:
    """Refuse, before any work, an output file that could not be written or would replace something unasked:
    a wrong extension, a folder, an existing file without --overwrite, a missing or unwritable parent folder."""
    if path == Path("."):  # also what an empty value becomes
        raise UserError(f"{flag} needs the name of a file to write (it was empty, or '.')")
    if path.is_dir():  # said first: a folder's name rarely has the file's extension, and that is not the problem
        raise UserError(f"{flag} {path} is a folder; give the name of a file to write")
    if suffixes and path.suffix.lower() not in suffixes:
        raise UserError(f"{flag} {path} must end in {' or '.join(suffixes)}")
    if path.exists() or path.is_symlink():
        if not overwrite:
            raise UserError(f"{flag} {path} already exists; pass --overwrite to replace it, or choose another name")
        if not path.is_file():
            raise UserError(f"{flag} {path} exists and is not a regular file; choose another name")
    _refuse_inside_output(path, flag)
    _check_writable_folder(path.parent, f"{flag} {path}")
    return path


def _refuse_inside_output(path: Path, flag: str) -> None:
    """Refuse an output inside another command's output folder where that command writes itself: anywhere in a
    dataset (its own folder aside, which collect writes; a dataset holds only its manifest and episodes, and
    `navigator data check` calls anything else a problem) or an exported bundle (what deploy ships), and at the files
    and in the sub-folders a training run, evaluation, comparison or learning curve writes (a run's history.json or
    dagger/, an evaluation's episodes/, ...), written yet or not: an interrupted run writes them when it is
    continued. Other places inside them are the user's to use (runs/NAME/eval-night, say)."""
    absolute = path.absolute()
    for folder in absolute.parents:
        kind = next((name for name, record in RECORDS.items() if (folder / record).is_file()), None)
        if kind == "dataset":
            raise UserError(f"{flag} {path} is inside the dataset {folder}, which holds only its manifest and "
                            f"episodes (navigator data check flags anything else): choose a place outside it")
        if all((folder / name).is_file() for name in BUNDLE_FILES):
            raise UserError(f"{flag} {path} is inside the exported bundle {folder}, which holds only "
                            f"{' and '.join(BUNDLE_FILES)} (what deploy copies to the drone): choose a place outside "
                            f"it")
        part = absolute.relative_to(folder).parts[0]
        written = written_by(kind, part) if kind is not None else None
        if written is not None and absolute == folder / part:
            raise UserError(f"{flag} {path} is where the {kind} in {folder} writes {written} itself: choose a place "
                            f"outside {folder}, or a name of your own inside it")
        if written is not None:
            raise UserError(f"{flag} {path} is inside {folder / part}, which the {kind} in {folder} fills itself "
                            f"({written}): choose a place outside {folder / part}")


def add_continuation_flags(parser: argparse.ArgumentParser, resume_help: str, extend_help: str) -> None:
    """--resume and --extend, which exclude each other: one continues exactly what was started, the other
    continues it with larger counts."""
    continuing = parser.add_mutually_exclusive_group()
    continuing.add_argument("--resume", action="store_true", help=resume_help)
    continuing.add_argument("--extend", action="store_true", help=extend_help)


def check_output_folder(path: Path, flag: str, *, continuing: bool, kind: str | None = None) -> Path:
    """Refuse, before any work, an output folder that could not be written or holds files of the user's: a file in
    its place, an unwritable nearest existing folder, another command's output (a dataset given as a run's --out),
    or (unless `continuing` a run there) a folder that is not empty. Missing parent folders are fine: the run creates
    them. `kind` is what the command writes there: a key of RECORDS ("dataset", "training run", ...)."""
    if path.exists() and not path.is_dir():
        raise UserError(f"{flag} {path} is a file, not a folder; choose a folder to write into")
    _refuse_inside_output(path, flag)
    if path.is_dir() and kind is not None:
        other = other_output(path, kind)
        if other is not None:
            raise UserError(f"{flag} {path} holds {other}, not {with_article(kind)}: choose another folder")
        if continuing:
            refuse_wrong_kinds(path, kind)
    if path.is_dir():
        if not continuing and any(path.iterdir()):
            refuse_if_in_use(path, kind or "output")
            record = RECORDS.get(kind or "")
            if record is not None and not (path / record).exists():  # nothing --resume could continue
                raise UserError(f"{flag} {path} is not empty and holds no {kind} to continue (no {record}): choose a "
                                f"new or empty folder")
            raise UserError(f"{flag} {path} is not empty: pass --resume to continue what is there, or choose a new "
                            f"or empty folder")
        _check_writable_folder(path, f"{flag} {path}")
        return path
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    _check_writable_folder(ancestor, f"{flag} {path}")
    return path


def recorded_settings(record: Path, key: str, dropped: tuple[str, ...] = (),
                      check_format: Callable[[Any], object] | None = None) -> RecordedSettings | None:
    """The settings an earlier run recorded under `key` of JSON file `record` (a dataset manifest's "recipe", a
    training run's run.json "config", an evaluation's eval.json "settings"), less the bookkeeping keys `dropped`:
    what `--resume` without --config continues, so that no flag needs retyping. None when there is no readable
    record: the pipeline then refuses the folder with a message that says what is wrong with it. UserError when the
    record no longer matches its checksum (edited since navigator wrote it). `check_format(document)` raises UserError
    for a record this release does not read (a newer release's): checked first, since a newer format's checksum
    would read as an edit."""
    try:
        document = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as error:
        refuse_if_denied(error)
        return None
    if check_format is not None:
        check_format(document)
    try:
        document = without_checksum(document)
    except ValueError as error:  # its settings are no longer those the work was started with
        raise UserError(f"{record} cannot be continued from: {error}; restore it, or start over in another "
                        f"--out") from None
    settings = document.get(key) if isinstance(document, dict) else None
    if not isinstance(settings, dict):
        return None
    return RecordedSettings({name: value for name, value in settings.items() if name not in dropped},
                            f"{record}'s {key!r}")


def _flush_c_stdio() -> None:
    """Flush the C library's stdio buffers, so that text C code printed goes where fd 1 points now."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError):  # no C library to reach: nothing buffered there
        pass


@contextmanager
def json_stdout(enabled: bool) -> Iterator[None]:
    """While the body runs, whatever is written to stdout (by Python or C code) goes to stderr; `print_json` writes
    to the real stdout. Does nothing unless `enabled`."""
    global _document_stream
    if not enabled:
        yield
        return
    original = sys.stdout
    original.flush()
    try:
        fd = original.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None  # Python's stdout is not a file (captured in-process)
    _flush_c_stdio()
    saved = os.dup(1)
    os.dup2(2, 1)
    # Python's stdout writes to fd 1, now stderr: the document goes to a copy of the saved descriptor instead.
    _document_stream = open(os.dup(saved), "w", encoding="utf-8") if fd == 1 else original
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stdout = original
        _flush_c_stdio()
        if fd == 1:
            _document_stream.close()
        os.dup2(saved, 1)
        os.close(saved)
        _document_stream = None


def print_json(document: Any, *, line: bool = False) -> None:
    """Write `document` as one JSON document on stdout (`line`: on one line, for commands that report events as
    they happen, one JSON object per line). NaN and infinities are refused (they are not JSON): values that can
    legitimately be unknown must be None before they get here."""
    text = json.dumps(document, indent=None if line else 2, allow_nan=False)
    stream = _document_stream if _document_stream is not None else sys.stdout
    stream.write(text + "\n")
    stream.flush()


def output_console(stderr: bool = False, **options: Any) -> Console:
    """A rich console for tables and reports (`options` go to rich's Console). A terminal keeps its width (tables
    fold long cells there); a file or pipe, which rich would cut at 80 columns, gets no practical limit, so that
    nothing written is truncated."""
    from rich.console import Console

    console = Console(stderr=stderr, **options)
    return console if console.is_terminal else Console(stderr=stderr, width=_UNLIMITED_WIDTH, **options)


_UNLIMITED_WIDTH = 10_000


def print_warning(message: str) -> None:
    """One warning line on stderr, whole however long (paths are not folded): apart from the results on stdout, which
    a user may redirect to a file or a pipe. Under a live progress bar it prints above the bar, as rich routes it."""
    from rich.markup import escape

    output_console(stderr=True).print(f"[yellow]warning[/yellow]: {escape(message)}", soft_wrap=True)


def finite_or_none(value: float) -> float | None:
    """A measurement that may be unknown (NaN/infinite) as JSON can carry it: the number, or None."""
    return value if math.isfinite(value) else None


def epoch_line(report: Any, indent: str = "  ") -> str:
    """One finished training epoch (a navigator.training.loop.EpochReport) as the line train, adapt and compare
    print: losses, throughput, learning rate, and `*` where it is the best so far; a second line where training
    stops early after it."""
    mark = " *" if report.best else ""
    stops = "" if report.stops_early is None else (
        f"\n{indent}stopped early: no better validation loss for {report.stops_early} "
        f"epoch{'s' if report.stops_early != 1 else ''} (patience); best.pt holds the best epoch")
    return (f"{indent}epoch {report.epoch:3d}  train {report.train_loss:.4f}  val {report.val_loss:.4f}"
            f"  {report.frames_per_second:,.0f} frames/s  lr {report.lr:.2e}{mark}{stops}")


def progress_bar(console: Console, *, transient: bool = False) -> Progress:
    """The one progress display every long command shows: `description  ━━━━  done/total  status  elapsed`; tasks
    carry a `status` field. Off when the console is no terminal (a log file gets the results, not redraws)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=console, transient=transient,
                    disable=not console.is_terminal)
