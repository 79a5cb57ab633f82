"""Inspect, verify, preview and export recorded demonstration datasets (format: datasets/README.md).

examples:
  navigator data info datasets/summer                    # episodes, success, action statistics
  navigator data info datasets/summer datasets/winter    # several datasets together
  navigator data check datasets/summer                   # every checksum and array; exit 1 if unsound
  navigator data preview datasets/summer --out sheet.png # contact sheet with the actions drawn on
  navigator data preview datasets/summer --out demo.mp4 --episodes 2
  navigator data export datasets/summer --format robomimic --out summer.hdf5
"""

from __future__ import annotations

import argparse
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from navigator.config import MAX_SEED, ConfigFlags, DefaultsHelpFormatter, check_settings, setting
from navigator.errors import counted


@dataclass(frozen=True)
class PreviewOptions:
    episodes: int = setting(4, ge=1, le=1000)

    def __post_init__(self) -> None:
        check_settings(self)


@dataclass(frozen=True)
class ExportOptions:
    val_fraction: float = setting(0.1, ge=0.0, lt=1.0)
    split_seed: int = setting(0, ge=0, le=MAX_SEED)

    def __post_init__(self) -> None:
        check_settings(self)


PREVIEW_FLAGS = ConfigFlags(PreviewOptions)
EXPORT_FLAGS = ConfigFlags(ExportOptions)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)

    def action(name: str, help: str) -> argparse.ArgumentParser:
        sub = actions.add_parser(name, help=help, formatter_class=DefaultsHelpFormatter)
        sub.add_argument("datasets", nargs="+", type=Path, metavar="DATASET")
        return sub

    info = action("info", "episodes, frames, duration and success per task and preset; action statistics")
    info.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    check = action("check", "verify schema, manifest, checksums and every array; list all problems; exit 1 if any "
                            "is an error")
    check.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    preview = action("preview", "a contact sheet (.png) or a video (.mp4) with actions drawn on")
    preview.add_argument("--out", type=Path, required=True, metavar="FILE", help=".png or .mp4")
    PREVIEW_FLAGS.add(preview, "--episodes", "episodes", "episodes to show", type=int, metavar="N")
    preview.add_argument("--overwrite", action="store_true", help="let --out replace an existing file")
    export = action("export", "write the episodes in another layout")
    export.add_argument("--format", choices=("robomimic",), required=True, type=lambda name: name.strip().lower())
    export.add_argument("--out", type=Path, required=True, metavar="FILE", help=".hdf5 or .h5, e.g. demos.hdf5")
    EXPORT_FLAGS.add(export, "--val-fraction", "val_fraction", "share of episodes in mask/valid", type=float)
    EXPORT_FLAGS.add(export, "--split-seed", "split_seed", "seed of the train/validation split", type=int)
    export.add_argument("--overwrite", action="store_true", help="let --out replace an existing file")


def run(args: argparse.Namespace) -> int:
    return {"info": _info, "check": _check, "preview": _preview, "export": _export}[args.action](args)


def _info(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.table import Table

    from navigator.commands.common import output_console, print_json, print_warning
    from navigator.dataset.reader import open_datasets
    from navigator.dataset.summary import summarize

    summary = summarize(open_datasets(args.datasets))
    if args.json:
        print_json(summary.to_dict())
        return 0
    console = output_console()
    height, width = summary.image_size
    episodes = (f"{summary.episodes} of {counted(summary.expected_episodes, 'episode')} (incomplete)"
                if summary.incomplete else counted(summary.episodes, "episode"))
    console.print(f"[bold]{escape(', '.join(summary.datasets))}[/bold]: {episodes}, "
                  f"{counted(summary.frames, 'frame')}, {summary.duration_s / 60:.1f} min simulated, success "
                  f"{_percent(summary.success_rate)} of those flown · "
                  f"images {width}x{height} · actions {summary.action_convention}", soft_wrap=True)
    for dataset, warning in summary.incomplete.items():
        print_warning(f"{dataset}: {warning}")
    groups = Table(title="episodes by task and preset")
    # On a narrow terminal cells fold onto more lines: nothing is cut off.
    for name in ("task", "preset"):
        groups.add_column(name, overflow="fold")
    for column in ("episodes", "frames", "min", "success", "dropped"):
        groups.add_column(column, justify="right", overflow="fold")
    groups.add_column("endings", overflow="fold")
    for g in summary.groups:
        endings = ", ".join(f"{name} {count}" for name, count in sorted(g.endings.items()))
        groups.add_row(g.task, g.preset, str(g.episodes), str(g.frames), f"{g.duration_s / 60:.1f}",
                       _percent(g.success_rate), str(g.dropped), endings)
    console.print(groups)
    if summary.action_label:
        actions = Table(title="actions, normalised to [-1, 1]")
        for column in ("component", "source", "mean", "std", "min", "max"):
            actions.add_column(column, justify="left" if column in ("component", "source") else "right",
                               overflow="fold")
        for label, executed in zip(summary.action_label, summary.action_executed, strict=True):
            for source, stats in (("label", label), ("executed", executed)):
                actions.add_row(label.name if source == "label" else "", source,
                                f"{stats.mean:+.3f}", f"{stats.std:.3f}", f"{stats.min:+.3f}", f"{stats.max:+.3f}")
        console.print(actions)
    return 0


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.0%}"


def _recipe_reader() -> Callable[[dict[str, Any]], str | None] | None:
    """collect's reading of a recorded recipe (it needs the simulator, to know task and preset names), or None on an
    install without it: data check runs there too, and collect --resume cannot, so there is nothing to warn of."""
    if any(importlib.util.find_spec(name) is None for name in ("gymnasium", "pybullet")):
        return None
    from navigator.collect import recorded_recipe_problem

    return recorded_recipe_problem


def _refuse_other_output(path: Path) -> None:
    """UserError for a folder holding another command's output (a training run, an evaluation) and no manifest:
    it was given in place of a dataset."""
    from navigator.errors import UserError
    from navigator.output_folders import other_output

    other = other_output(path, "dataset")
    if other is not None and not (path / "manifest.json").exists():
        raise UserError(f"{path} holds {other}, not a dataset: give the folder of a dataset (one with a "
                        f"manifest.json)")


def _check(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from navigator.commands.common import output_console, print_json
    from navigator.dataset.check import check_dataset
    from navigator.dataset.reader import require_distinct

    require_distinct(args.datasets)
    for path in args.datasets:  # another command's output is a wrong argument (as info and preview say), not a verdict
        _refuse_other_output(Path(path))
    recipe_problem = _recipe_reader()
    reports = [check_dataset(path, recipe_problem) for path in args.datasets]
    if args.json:
        print_json([{"dataset": str(r.dataset), "sound": r.sound, "episodes_checked": r.episodes_checked,
                      "problems": [vars(p) for p in r.problems]} for r in reports])
    else:
        console = output_console(highlight=False)
        for report in reports:
            for problem in report.problems:
                style = "red" if problem.severity == "error" else "yellow"
                where = escape(str(report.dataset / problem.file))
                # One line per problem, never wrapped, so the output greps well.
                console.print(f"[{style}]{problem.severity:7}[/{style}] {where}: {escape(problem.message)}",
                              soft_wrap=True)
            verdict = "[green]sound[/green]" if report.sound else "[red]NOT sound[/red]"
            console.print(f"{escape(str(report.dataset))}: {counted(report.episodes_checked, 'episode')} checked, "
                          f"{counted(len(report.errors), 'error')}, {counted(len(report.warnings), 'warning')}: "
                          f"{verdict}", soft_wrap=True)
    return 0 if all(r.sound for r in reports) else 1


def _preview(args: argparse.Namespace) -> int:
    from navigator.commands.common import check_output_file
    from navigator.dataset.preview import SHEET_EXTENSIONS, VIDEO_EXTENSIONS, write_preview
    from navigator.dataset.reader import open_datasets

    options = PREVIEW_FLAGS.load(args, None)
    check_output_file(args.out, "--out", overwrite=args.overwrite, suffixes=SHEET_EXTENSIONS + VIDEO_EXTENSIONS)
    out, shown = write_preview(open_datasets(args.datasets), args.out, options.episodes, overwrite=args.overwrite)
    held = f" (every one there is; --episodes asked for {options.episodes})" if shown < options.episodes else ""
    print(f"preview of {counted(shown, 'episode')}{held} written to {out}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from navigator.commands.common import check_output_file, print_warning
    from navigator.dataset.completeness import completeness
    from navigator.dataset.export_robomimic import HDF5_SUFFIXES, export_robomimic
    from navigator.dataset.reader import open_datasets
    from navigator.dataset.split import split_keys

    options = EXPORT_FLAGS.load(args, None)
    check_output_file(args.out, "--out", overwrite=args.overwrite, suffixes=HDF5_SUFFIXES)
    datasets = open_datasets(args.datasets)
    # An interrupted collection is sound but partial: exporting it is allowed, silently doing so is not.
    for dataset in datasets:
        state = completeness(dataset.manifest)
        if not state.complete:
            print_warning(f"{dataset.path}: {state.message(dataset.path)}")
    demos = export_robomimic(datasets, args.out, val_fraction=options.val_fraction, split_seed=options.split_seed)
    _, validation = split_keys([entry.key for dataset in datasets for entry in dataset.entries], options.val_fraction,
                               options.split_seed)  # as the export split them
    if options.val_fraction > 0 and not validation:
        print_warning(f"{args.out}: mask/valid is empty: one episode cannot be split between training and "
                      f"validation (it is in mask/train); record more episodes to validate on")
    # The split in numbers: with few episodes the share held out is not --val-fraction (at least one, if any).
    print(f"{counted(demos, 'episode')} exported to {args.out} ({args.format}): {len(validation)} in mask/valid, "
          f"{demos - len(validation)} in mask/train")
    return 0
