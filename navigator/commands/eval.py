"""Evaluate pilots in closed loop, in and out of distribution: every pilot flies the same held-out worlds in each
suite (a preset), and the report gives success rates with 95% intervals, time to target, path efficiency, collisions
and how episodes ended; success against the start distance; stress sweeps; training seeds of one recipe grouped.

examples:
  navigator eval --out reports/shipped                       # the shipped policy in summer, autumn, winter, night
  navigator eval --pilot pretrained --pilot expert --suites summer,night+wind,range --episodes 40 --out reports/cmp
  navigator eval --suites summer --sweep noise,wind --out reports/stress   # success as sensor noise and wind grow
  navigator eval --suites winter --sweep brightness --sweep-base winter --sweep-levels 1,0.5,0.25,0.1 --out reports/dusk
  navigator eval --pilot runs/s0/best.pt --pilot runs/s1/best.pt --pilot runs/s2/best.pt --videos 3 --out reports/seeds
  navigator eval --pilot bundles/NAME --pilot pretrained --out reports/onnx   # a bundle beside its checkpoint
  navigator eval --out reports/NAME --resume     # after an interruption: fly only the episodes still missing
  navigator eval --out reports/NAME --episodes 200 --extend   # more worlds per suite: every pilot flies the new ones
  navigator eval --pilot pretrained --suites summer,night --attention --out reports/attention   # where it looks
  navigator eval --attention --attention-method integrated-gradients --attention-every 10 --out reports/ig
  navigator eval --pilot runs/a/best.pt --episodes 500 --backend ray --address 10.0.0.1:6379 --out reports/big

OUT receives eval.json (the settings), episodes/ (one JSON per finished episode), results.json, report.md,
success.png, trajectories.png, distance.png (success against the start distance, per suite) and, per stress sweep,
sweep-KIND.png. --sweep KIND flies levels of one stress on top of --sweep-base (every level on the same worlds):
noise (sensor noise std, grey levels: 0,4,8,12,16,24), brightness (exposure factor: 1,0.6,0.35,0.2,0.1,0.05),
occlusion (black patches: 0-5), wind (steady m/s with gusts as the wind preset's: 0-5). Checkpoints trained by the
same recipe apart from their seed are grouped: the report gives the group's mean success with a hierarchical
bootstrap interval. --videos K films the first K failed episodes of each suite and pilot into OUT/videos/. With
--resume or --extend and no --config, the settings are those OUT/eval.json recorded: flags given on top must match
them (--extend: or raise --episodes, flying the worlds after the recorded ones and reporting on all).
--attention measures, every few camera steps while the target is in view, the share of each policy checkpoint's
saliency (VisualBackProp or integrated gradients) that falls on the target's pixels; the report gives its mean per
suite and pilot with a bootstrap 95% interval over episodes. The expert and exported bundles have no saliency: they
fly unmeasured, and an evaluation of only those refuses --attention.
--backend ray flies the episodes on Ray actors (pip install 'liquid-navigator[cluster]'; every node needs
liquid-navigator[sim], and [train] for checkpoints, which must be readable at the same path on every node): on the
cluster at --address (auto: the one `ray start` runs on this machine), or without it on a Ray instance started for
this run. Records come back to this process, which writes OUT; failures are filmed by local processes. The report
is the one the local backend gives.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from navigator.commands.common import (add_continuation_flags, check_output_folder, output_console, progress_bar,
                                       recorded_settings)
from navigator.config import ConfigFlags
from navigator.errors import UserError, counted
from navigator.evaluation.settings import EvalSettings
from navigator.explain.methods import DEFAULT_EVERY, METHODS


def _names(text: str) -> list[str]:
    """"summer, night+wind" -> ["summer", "night+wind"] (each name is checked by the settings)."""
    return [name.strip() for name in text.split(",")]


def _numbers(text: str) -> list[float]:
    """"0, 4, 8" -> [0.0, 4.0, 8.0] (the settings check each level against its sweep), each read as every flag's
    number is (navigator.cli.number: no `1_0`)."""
    from navigator.cli import number

    try:
        return [number(value) for value in _names(text)]
    except argparse.ArgumentTypeError as error:
        raise argparse.ArgumentTypeError(f"give comma-separated numbers such as 0,4,8, not {text!r}: {error}") from None


FLAGS = ConfigFlags(EvalSettings)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", type=Path, required=True, help="folder for the report (refused if it exists and is "
                                                                "not empty, unless --resume)")
    parser.add_argument("--config", type=Path, help="YAML file of evaluation settings (pilots, task, suites, "
                                                    "episodes, seed, airframe, camera, max_seconds, sweeps, "
                                                    "sweep_levels, sweep_base)")
    FLAGS.add(parser, "--pilot", "pilots", "who flies, repeatable: pretrained | expert | a policy checkpoint (.pt) | "
                                            "an exported bundle (folder or its policy.json)",
              action="append")
    FLAGS.add(parser, "--task", "task", "fly-to-target | hike | follow")
    FLAGS.add(parser, "--suites", "suites", "comma-separated presets, each composable with +, e.g. "
                                            "summer,autumn,night+wind,range", type=_names)
    FLAGS.add(parser, "--episodes", "episodes", "episodes per suite and pilot", type=int)
    FLAGS.add(parser, "--seed", "seed", "world seed of the first episode, far from training seeds", type=int)
    FLAGS.add(parser, "--airframe", "airframe", "x500 | cf2x")
    FLAGS.add(parser, "--max-seconds", "max_seconds", "end each episode after this many simulated seconds",
              type=float, default_text="the task's own limit")
    FLAGS.add(parser, "--sweep", "sweeps", "comma-separated stress sweeps flown on top of --sweep-base: noise | "
                                           "brightness | occlusion | wind", type=_names, default_text="none")
    FLAGS.add(parser, "--sweep-levels", "sweep_levels", "the levels of the one --sweep, comma-separated",
              type=_numbers, default_text="the sweep's own levels")
    FLAGS.add(parser, "--sweep-base", "sweep_base", "the suite (preset spec) the sweep levels are applied to")
    FLAGS.add(parser, "--attention", "attention", "measure each policy pilot's attention on target: the share of its "
                                                  "saliency on the target's pixels (not for the expert or bundles)",
              action="store_const", const=True)
    FLAGS.add(parser, "--attention-method", "attention_method", f"saliency for --attention: {' | '.join(METHODS)}")
    FLAGS.add(parser, "--attention-every", "attention_every", "camera steps between two attention measurements, "
                                                              "with --attention (each costs a saliency map)", type=int,
              default_text=", ".join(f"{every} for {method}" for method, every in DEFAULT_EVERY.items()) +
              ": eval about 30% slower at most")
    parser.add_argument("--videos", type=int, default=None, metavar="K",
                        help="film the first K failed episodes of each suite and pilot into OUT/videos/ (default 0; "
                             "--resume/--extend: as the evaluation recorded; fewer films none, keeping those made)")
    parser.add_argument("--workers", type=int, default=0, help="parallel processes; the results do not depend on it "
                                                               "(default: one per CPU core)")
    BACKEND_FLAGS.add(parser, "--backend", "kind", "local (processes on this machine) | ray (Ray actors)")
    BACKEND_FLAGS.add(parser, "--address", "address", "with --backend ray: auto or the Ray head's HOST:PORT",
                      default_text="start a local Ray instance")
    add_continuation_flags(
        parser, resume_help="continue the evaluation in OUT: fly only the episodes it is missing; without --config, "
                            "the settings are those OUT/eval.json recorded",
        extend_help="add worlds to the evaluation in OUT: its recorded settings with a larger --episodes; every "
                    "pilot flies the new worlds (to continue an interrupted --extend, use --resume)")


def _backend_class() -> type:
    from navigator.backends import Backend

    return Backend


BACKEND_FLAGS = ConfigFlags(_backend_class)


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from navigator.backends import check_reachable
    from navigator.workers import check_workers

    check_workers(args.workers)
    if args.videos is not None and args.videos < 0:
        raise UserError(f"--videos must be >= 0 (0: no videos), got {args.videos}")
    source = args.config
    continuing = args.resume or args.extend
    if continuing:  # nothing to continue (or a damaged record) is said before the record's settings import torch
        from navigator.evaluation.folder import check_folder

        check_output_folder(args.out, "--out", continuing=True, kind="evaluation")
        check_folder(args.out, resume=True, flag="--extend" if args.extend else "--resume")
    if source is None and continuing:
        source = recorded_settings(args.out / "eval.json", "settings")
    settings = FLAGS.load(args, source)
    backend = BACKEND_FLAGS.load(args, None)
    check_output_folder(args.out, "--out", continuing=continuing, kind="evaluation")
    check_reachable(backend)
    # Only now the pipeline (and torch, seconds to import): bad settings above are refused at once.
    from navigator.commands.display import EvaluationDisplay
    from navigator.evaluation.pipeline import evaluate

    console = output_console()
    with progress_bar(console, transient=True) as progress:
        results = evaluate(args.out, settings, args.workers, continuing, EvaluationDisplay(console, progress),
                           args.videos, backend, extend=args.extend, given_as=FLAGS.given_as(args))

    table = Table(title=f"{settings.task} · {counted(settings.episodes, 'episode')} per suite and pilot, seeds from "
                        f"{settings.seed}")
    for column in ("suite", "pilot", "success", "95% interval", "time (s)", "efficiency", "collisions"):
        table.add_column(column, justify="left" if column in ("suite", "pilot") else "right")
    if settings.attention:
        table.add_column("attention on target", justify="right")
    for s in results.summaries:
        table.add_row(s.suite, s.pilot, f"{s.successes}/{s.episodes}",
                      f"{s.success_interval[0]:.0%}-{s.success_interval[1]:.0%}",
                      "-" if s.mean_time_to_target is None else f"{s.mean_time_to_target:.1f}",
                      "-" if s.mean_path_efficiency is None else f"{s.mean_path_efficiency:.2f}",
                      f"{s.collision_rate:.0%}",
                      *([_attention_text(s.attention)] if settings.attention else []))
    console.print(table)
    console.print(f"report written to {args.out / 'report.md'}")
    return 0


def _attention_text(attention) -> str:
    """A summary's attention on target for the console: mean and interval, or why there is none."""
    from navigator.evaluation.report import attention_interval

    if attention is None:
        return "no saliency"
    if attention.mean is None:
        return "target never seen"
    return f"{attention.mean:.3f} ({attention_interval(attention)})"
