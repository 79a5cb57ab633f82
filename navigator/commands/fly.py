"""Fly simulated episodes with a pilot and report how they went.

examples:
  navigator fly                                   # the shipped liquid policy: 5 fly-to-target episodes in summer
  navigator fly --pilot expert                    # the privileged expert instead
  navigator fly --pilot runs/NAME/best.pt         # a policy you trained
  navigator fly --pilot bundles/NAME              # an exported bundle, through ONNX Runtime as onboard
  navigator fly --task hike --preset winter+wind --episodes 20 --seed 300000
  navigator fly --video flight.mp4 --episodes 2   # onboard camera beside a chase view
  navigator fly --gui                             # PyBullet's window (needs a display)
  navigator fly --json > results.json
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from navigator.commands.common import (check_output_file, finite_or_none, output_console, print_json, print_warning,
                                       progress_bar)
from navigator.config import MAX_EPISODES, MAX_SEED, ConfigFlags, check_seed_span, check_settings, setting, to_dict
from navigator.errors import UserError
from navigator.scenario import HELD_OUT_SEED, ScenarioConfig, canonical_pilot, set_canonical


@dataclass(frozen=True)
class FlyConfig:
    # The command's flags that no file sets (config.from_dict names them for a file that tries).
    COMMAND_LINE_ONLY: ClassVar[dict[str, str]] = {"gui": "--gui", "video": "--video", "overwrite": "--overwrite",
                                                  "json": "--json"}
    scenario: ScenarioConfig = field(default_factory=ScenarioConfig)
    pilot: str = "pretrained"
    episodes: int = setting(5, ge=1, le=MAX_EPISODES)
    seed: int = setting(HELD_OUT_SEED, ge=0, le=MAX_SEED)  # worlds outside every training recipe's seeds

    def __post_init__(self) -> None:
        check_settings(self)
        check_seed_span(self.seed, self.episodes, "seed", "episodes")
        set_canonical(self, "pilot", canonical_pilot)


FLAGS = ConfigFlags(FlyConfig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", type=Path, help="YAML launch file (default: the built-in defaults, "
                                                    "the same as launch/fly.yaml)")
    FLAGS.add(parser, "--task", "scenario.task", "fly-to-target | hike | follow")
    FLAGS.add(parser, "--preset", "scenario.preset", "scenery preset, composable with +, e.g. winter+wind")
    FLAGS.add(parser, "--airframe", "scenario.airframe", "x500 | cf2x")
    FLAGS.add(parser, "--pilot", "pilot", "who flies: pretrained (the shipped policy) | expert | a checkpoint "
                                          "path (.pt) | an exported bundle (folder or its policy.json)")
    FLAGS.add(parser, "--episodes", "episodes", "number of episodes (seeds SEED, SEED+1, ...)", type=int)
    FLAGS.add(parser, "--seed", "seed", "seed of the first episode", type=int)
    FLAGS.add(parser, "--max-seconds", "scenario.max_seconds", "end each episode after this many simulated seconds",
              type=float, default_text="the task's own limit")
    parser.add_argument("--gui", action="store_true", help="watch in PyBullet's window, paced to real time")
    parser.add_argument("--video", type=Path, metavar="PATH", help="write an mp4 of the onboard camera beside a "
                                                                   "chase view")
    parser.add_argument("--overwrite", action="store_true", help="let --video replace an existing file")
    parser.add_argument("--json", action="store_true", help="print results as one JSON document on stdout")


def _warn_of_training_worlds(config: FlyConfig, pilot) -> None:
    """A warning (not a refusal: watching a policy on its own worlds is a fair thing to do) when the episodes would
    fly worlds the pilot was trained on, where eval, export and explain refuse them."""
    from navigator.evaluation.pipeline import pilot_training_seeds
    from navigator.evaluation.seeds import training_overlap

    seeds = pilot_training_seeds(config.pilot, pilot)
    overlap = None if seeds is None else training_overlap(
        f"pilot {config.pilot}", seeds, config.scenario.task, range(config.seed, config.seed + config.episodes),
        flights="this flight")
    if overlap is not None:
        print_warning(f"these are worlds the pilot trained on, so success on them says little about the others: "
                      f"{overlap}")
    elif seeds is not None and not seeds.complete:  # a bundle with source: null, a run on data of unknown seeds
        print_warning(f"pilot {config.pilot} does not record every world it was trained on, so whether these are "
                      f"among them is not known")


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from navigator.pilots import make_pilot, one_math_thread
    from navigator.rollout import run_episode, summarize
    from navigator.scenario import make_scenario_env
    from navigator.video import VideoWriter

    config = FLAGS.load(args, args.config)
    if args.overwrite and args.video is None:
        raise UserError("--overwrite lets --video replace an existing file, and no --video was given: add --video "
                        "FILE.mp4, or drop --overwrite")
    if args.video is not None:
        check_output_file(args.video, "--video", overwrite=args.overwrite, suffixes=(".mp4",))
    # With --json, stdout carries only the JSON document; progress and tables go to stderr.
    console = output_console(stderr=args.json)
    env = make_scenario_env(config.scenario, render_mode="human" if args.gui else None)
    rate_hz = env.unwrapped.description().camera.rate_hz
    video = VideoWriter(args.video, rate_hz, overwrite=args.overwrite) if args.video else None
    results = []
    try:
        pilot = make_pilot(config.pilot, env)
        _warn_of_training_worlds(config, pilot)
        with one_math_thread(), progress_bar(console, transient=True) as progress:
            bar = progress.add_task("flying", total=config.episodes, status="")
            for index in range(config.episodes):
                seed = config.seed + index
                hook = None
                if video is not None or args.gui:
                    hook = _frame_hook(env, video, seed, realtime=args.gui)
                result = run_episode(env, pilot, seed, on_step=hook)
                results.append(result)
                successes = sum(r.success for r in results)
                progress.update(bar, advance=1, status=f"success {successes}/{len(results)}")
        saved = video.close() if video is not None else None
    except BaseException:
        if video is not None:
            video.discard()
        raise
    finally:
        env.close()

    summary = summarize(results)
    if args.json:
        # The final distance is unknown (NaN) when an episode ends before there is one: null in JSON.
        episodes = [{**r.to_dict(), "final_distance": finite_or_none(r.final_distance)} for r in results]
        document = {"config": to_dict(config), "episodes": episodes, "summary": summary}
        if saved is not None:
            document["video"] = str(saved)
        print_json(document)
        return 0

    # The heading is a line of its own: a table's title wraps at the table's width, which would cut a long
    # pilot path in two.
    console.print(f"{config.scenario.task} · {config.scenario.preset} · {config.scenario.airframe} · pilot "
                  f"{config.pilot}", highlight=False, markup=False, soft_wrap=True)
    table = Table()
    for column in ("seed", "ending", "time (s)", "path (m)", "final distance (m)"):
        table.add_column(column, justify="right" if column != "ending" else "left")
    for r in results:
        style = "green" if r.success else "red"
        table.add_row(str(r.seed), f"[{style}]{r.ending}[/{style}]", f"{r.time:.1f}", f"{r.path_length:.1f}",
                      f"{r.final_distance:.2f}")
    console.print(table)
    endings = ", ".join(f"{name} {count}" for name, count in summary["endings"].items())
    console.print(f"success rate [bold]{summary['success_rate']:.0%}[/bold] of {summary['episodes']} · "
                  f"mean time {summary['mean_time']:.1f} s · mean path {summary['mean_path_length']:.1f} m · "
                  f"endings: {endings}")
    if saved is not None:
        console.print(f"video written to {saved}")
    return 0


def _frame_hook(env, video, seed: int, realtime: bool):
    """Per-step hook: record the side-by-side frame and/or pace the GUI to real time."""
    period = env.unwrapped.description().dt
    next_tick = time.monotonic()

    def hook(observation, action, info) -> None:
        nonlocal next_tick
        if video is not None:
            caption = f"seed {seed}  t {info['time']:5.1f}s  d {info['distance']:5.1f}m"
            video.write(env.unwrapped.side_by_side_frame(), caption)
        if realtime:
            next_tick += period
            time.sleep(max(0.0, next_tick - time.monotonic()))

    return hook
