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
import json
import sys
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    info = actions.add_parser("info", help="episodes, frames, duration and success per task and preset; action "
                                           "statistics")
    info.add_argument("datasets", nargs="+", type=Path, metavar="DATASET")
    info.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    check = actions.add_parser("check", help="verify schema, manifest, checksums and every array; list all "
                                             "problems; exit 1 if any is an error")
    check.add_argument("datasets", nargs="+", type=Path, metavar="DATASET")
    check.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    preview = actions.add_parser("preview", help="a contact sheet (.png) or a video (.mp4) with actions drawn on")
    preview.add_argument("datasets", nargs="+", type=Path, metavar="DATASET")
    preview.add_argument("--out", type=Path, required=True, metavar="FILE", help=".png or .mp4")
    preview.add_argument("--episodes", type=int, default=4, metavar="N", help="episodes to show (default 4)")
    export = actions.add_parser("export", help="write the episodes in another layout")
    export.add_argument("datasets", nargs="+", type=Path, metavar="DATASET")
    export.add_argument("--format", choices=("robomimic",), required=True)
    export.add_argument("--out", type=Path, required=True, metavar="FILE", help="e.g. demos.hdf5")
    export.add_argument("--val-fraction", type=float, default=0.1, help="share of episodes in mask/valid "
                                                                        "(default 0.1)")
    export.add_argument("--split-seed", type=int, default=0, help="seed of the train/validation split (default 0)")


def run(args: argparse.Namespace) -> int:
    return {"info": _info, "check": _check, "preview": _preview, "export": _export}[args.action](args)


def _print_json(document: Any) -> None:
    json.dump(document, sys.stdout, indent=2)
    sys.stdout.write("\n")


def _info(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from navigator.dataset.reader import open_datasets
    from navigator.dataset.summary import summarize

    summary = summarize(open_datasets(args.datasets))
    if args.json:
        _print_json(summary.to_json())
        return 0
    console = Console()
    height, width = summary.image_size
    console.print(f"[bold]{escape(', '.join(summary.datasets))}[/bold]: {summary.episodes} episodes, {summary.frames} "
                  f"frames, {summary.duration_s / 60:.1f} min simulated, success {summary.success_rate:.0%} · "
                  f"images {width}x{height} · actions {summary.action_convention}", soft_wrap=True)
    groups = Table(title="episodes by task and preset")
    for name in ("task", "preset"):  # names stay whole; the endings column wraps instead
        groups.add_column(name, no_wrap=True, min_width=max(len(getattr(g, name)) for g in summary.groups))
    for column in ("episodes", "frames", "min", "success", "dropped"):
        groups.add_column(column, justify="right", no_wrap=True)
    groups.add_column("endings")
    for g in summary.groups:
        endings = ", ".join(f"{name} {count}" for name, count in sorted(g.endings.items()))
        groups.add_row(g.task, g.preset, str(g.episodes), str(g.frames), f"{g.duration_s / 60:.1f}",
                       f"{g.success_rate:.0%}", str(g.dropped), endings)
    console.print(groups)
    if summary.action_label:
        actions = Table(title="actions, normalised to [-1, 1]")
        for column in ("component", "source", "mean", "std", "min", "max"):
            actions.add_column(column, justify="left" if column in ("component", "source") else "right")
        for label, executed in zip(summary.action_label, summary.action_executed, strict=True):
            for source, stats in (("label", label), ("executed", executed)):
                actions.add_row(label.name if source == "label" else "", source,
                                f"{stats.mean:+.3f}", f"{stats.std:.3f}", f"{stats.min:+.3f}", f"{stats.max:+.3f}")
        console.print(actions)
    return 0


def _check(args: argparse.Namespace) -> int:
    from rich.console import Console
    from rich.markup import escape

    from navigator.dataset.check import check_dataset

    reports = [check_dataset(path) for path in args.datasets]
    if args.json:
        _print_json([{"dataset": str(r.dataset), "sound": r.sound, "episodes_checked": r.episodes_checked,
                      "problems": [vars(p) for p in r.problems]} for r in reports])
    else:
        console = Console(highlight=False)
        for report in reports:
            for problem in report.problems:
                style = "red" if problem.severity == "error" else "yellow"
                where = escape(str(report.dataset / problem.file))
                # One line per problem, never wrapped, so the output greps well.
                console.print(f"[{style}]{problem.severity:7}[/{style}] {where}: {escape(problem.message)}",
                              soft_wrap=True)
            verdict = "[green]sound[/green]" if report.sound else "[red]NOT sound[/red]"
            console.print(f"{escape(str(report.dataset))}: {report.episodes_checked} episodes checked, "
                          f"{len(report.errors)} errors, {len(report.warnings)} warnings: {verdict}", soft_wrap=True)
    return 0 if all(r.sound for r in reports) else 1


def _preview(args: argparse.Namespace) -> int:
    from navigator.dataset.preview import write_preview
    from navigator.dataset.reader import open_datasets

    out = write_preview(open_datasets(args.datasets), args.out, args.episodes)
    print(f"preview written to {out}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from navigator.dataset.export_robomimic import export_robomimic
    from navigator.dataset.reader import open_datasets

    demos = export_robomimic(open_datasets(args.datasets), args.out, val_fraction=args.val_fraction,
                             split_seed=args.split_seed)
    print(f"{demos} episodes exported to {args.out} ({args.format})")
    return 0
